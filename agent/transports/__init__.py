"""One way to run a command on a host, whatever reaches it: SSH, WinRM or this machine.

Shared by the update playbooks and farm mode, so host keys, TLS and timeouts
are handled (and tested) in one place.
"""

from typing import Literal

from custode.agent.transports.base import CommandResult, Transport, TransportError
from custode.agent.transports.config import HostConfig, SshOptions, WinrmOptions


def shell_for(host: HostConfig) -> Literal["posix", "powershell"]:
    """The shell ``open_transport(host)`` hands commands to, known without connecting.

    Plans write a command's references to its secrets for that shell before
    anything runs, so a secret the shell could not read fails the plan.
    """
    if host.transport == "winrm":
        return "powershell"
    if host.transport == "ssh":
        return "posix"
    from custode.agent.transports.local import LocalTransport

    return LocalTransport.shell


def open_transport(name: str, host: HostConfig) -> Transport:
    """A connected-on-demand transport for ``host``; nothing touches the network until ``run``.

    An SNMP device has none: the config check refuses one named by a playbook or restore test, and farm
    mode polls devices without a transport."""
    if host.transport == "snmp":
        raise TransportError(name, "an SNMP device (transport: snmp) runs no commands")
    if host.transport == "local":
        from custode.agent.transports.local import LocalTransport

        return LocalTransport(name)
    if host.transport == "ssh":
        from custode.agent.transports.ssh import SshTransport

        return SshTransport(name, host.address, host.ssh or SshOptions())
    from custode.agent.transports.winrm import WinrmTransport

    assert host.winrm is not None  # HostConfig's validator requires it
    return WinrmTransport(name, host.address, host.winrm)


__all__ = ["CommandResult", "HostConfig", "SshOptions", "Transport", "TransportError", "WinrmOptions",
           "open_transport", "shell_for"]
