"""One way to run a command on a host, whatever reaches it: SSH, WinRM or this machine.

Shared by the update playbooks and farm mode, so host keys, TLS and timeouts
are handled (and tested) in one place.
"""

from custode.agent.transports.base import CommandResult, Transport, TransportError
from custode.agent.transports.config import HostConfig, SshOptions, WinrmOptions


def open_transport(name: str, host: HostConfig) -> Transport:
    """A connected-on-demand transport for ``host``; nothing touches the network until ``run``."""
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
           "open_transport"]
