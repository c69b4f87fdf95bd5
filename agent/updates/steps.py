"""Running one playbook step on one host, and judging it.

A step never raises: a failed command, a service that does not stop, a check
that does not pass and an unreachable host are all a ``StepOutcome`` the runner
records and acts on (roll back). Commands are written per shell, so one
playbook can drive a Linux host over SSH and a Windows one over WinRM. The
secrets a command refers to are given to the transport beside it, never in it.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from custode.agent.transports.base import CommandResult, Transport, TransportError
from custode.agent.transports.quoting import quote_posix, quote_powershell
from custode.agent.updates.playbook import Probe, Step
from custode.agent.updates.states import StepStatus


@dataclass(frozen=True)
class StepOutcome:
    status: StepStatus
    """``ok``, ``failed`` or ``warning`` (running and interrupted are the store's)."""
    detail: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status != StepStatus.FAILED

    @classmethod
    def from_command(cls, result: CommandResult, expect: list[int], what: str,
                     warn: list[int] | None = None) -> "StepOutcome":
        """Judge a command by its exit code: ``expect`` passes, ``warn`` passes with a warning, the rest fails.

        A warning's detail ends with the command's last line of output, so
        what needs a look ("reboot required: linux-image-…") is in the run's
        history, not only in its stored stdout.
        """
        if not result.timed_out and result.exit_code in (warn or []):
            tail = (result.stdout.strip() or result.stderr.strip()).splitlines()[-1:] or [""]
            return cls(StepStatus.WARNING, f"{what}: exit code {result.exit_code}" + (f": {tail[0][:200]}"
                                                                                       if tail[0] else ""),
                       result.exit_code, result.stdout, result.stderr)
        passed = not result.timed_out and result.exit_code in expect
        return cls(StepStatus.OK if passed else StepStatus.FAILED, f"{what}: {result.describe()}", result.exit_code,
                   result.stdout, result.stderr)


def service_command(shell: str, name: str, action: str) -> str:
    """Stop/start/restart a service: systemd where it runs, else the init script; Windows' service manager."""
    if shell == "powershell":
        verb = {"stop": "Stop-Service", "start": "Start-Service", "restart": "Restart-Service"}[action]
        force = "" if action == "start" else " -Force"
        return f"{verb} -Name {quote_powershell(name)}{force} -ErrorAction Stop"
    unit = quote_posix(name)
    return (f"if [ -d /run/systemd/system ]; then systemctl {action} {unit}; "
            f"else service {unit} {action}; fi")


def service_state_command(shell: str, name: str) -> str:
    """Exit 0 when the service runs, non-zero when it does not."""
    if shell == "powershell":
        return (f"$s = Get-Service -Name {quote_powershell(name)} -ErrorAction Stop; "
                "if ($s.Status -eq 'Running') { exit 0 } else { exit 3 }")
    unit = quote_posix(name)
    return (f"if [ -d /run/systemd/system ]; then systemctl is-active --quiet {unit}; "
            f"else service {unit} status >/dev/null 2>&1; fi")


def process_command(shell: str, name: str) -> str:
    if shell == "powershell":
        return (f"if (Get-Process -Name {quote_powershell(name)} -ErrorAction SilentlyContinue) "
                "{ exit 0 } else { exit 1 }")
    return f"pgrep -x -- {quote_posix(name)} >/dev/null"


def _split_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class StepExecutor:
    """Runs the non-notify steps. Clock and sleep are injectable so waits are testable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock = clock
        self.sleep = sleep

    def execute(self, step: Step, transport: Transport | None,
                secrets: Mapping[str, str] | None = None) -> StepOutcome:
        """Run ``step``; ``secrets`` are the variables its command refers to (``playbook.bind_step``)."""
        try:
            return self._execute(step, transport, secrets or {})
        except TransportError as exc:
            return StepOutcome(StepStatus.FAILED, f"cannot reach {exc.host}: {exc.cause}")

    def _execute(self, step: Step, transport: Transport | None, secrets: Mapping[str, str]) -> StepOutcome:
        handler = HANDLERS.get(step.action)
        if handler is None:  # tests/test_update_steps.py keeps HANDLERS and playbook.ACTIONS in step
            return StepOutcome(StepStatus.FAILED, f"Custode has no handler for {step.action!r} steps")
        return handler(self, step, transport, self.clock() + step.timeout, secrets)

    def _wait(self, probe: Probe, transport: Transport | None, deadline: float, interval: float) -> StepOutcome:
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline - self.clock()
            passed, detail = self.probe(probe, transport, max(1.0, min(remaining, 30.0)))
            if passed:
                return StepOutcome(StepStatus.OK, f"{detail} (after {attempts} attempt{'s' if attempts > 1 else ''})")
            if self.clock() + interval >= deadline:
                return StepOutcome(StepStatus.FAILED,
                                   f"still not so at the deadline after {attempts} attempts: {detail}")
            self.sleep(interval)

    def probe(self, probe: Probe, transport: Transport | None, timeout: float) -> tuple[bool, str]:
        """One attempt: (passed, what was seen)."""
        if probe.http:
            return _http(probe, timeout)
        if probe.tcp:
            host, port = _split_host_port(probe.tcp)
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    return True, f"{probe.tcp} accepts connections"
            except OSError as exc:
                return False, f"{probe.tcp}: {exc.strerror or exc}"
        if transport is None:
            return False, f"{probe.kind} {getattr(probe, probe.kind)}: this check needs a host, and the step has none"
        if probe.service:
            result = transport.run(service_state_command(transport.shell, probe.service), timeout)
            running = result.ok
            passed = running == (probe.state == "running")
            return passed, f"service {probe.service} is {'running' if running else 'not running'}"
        process = probe.process or ""
        result = transport.run(process_command(transport.shell, process), timeout)
        return result.ok, f"process {process} is {'running' if result.ok else 'not running'}"


# -- one handler per step action (playbook.ACTIONS; "notify" is the runner's own: it mails, on no host) --------

Handler = Callable[[StepExecutor, Step, "Transport | None", float, Mapping[str, str]], StepOutcome]
"""(executor, step, transport, deadline, secrets its command refers to) → outcome."""
_NO_HOST = StepOutcome(StepStatus.FAILED, "this step runs on a host, and none was given to it")
_NO_ACTION = StepOutcome(StepStatus.FAILED, "this step has no action (the playbook model lets none through)")


def _command(executor: StepExecutor, step: Step, transport: Transport | None, deadline: float,
             secrets: Mapping[str, str]) -> StepOutcome:
    command = step.run or step.backup
    if command is None:
        return _NO_ACTION
    if transport is None:
        return _NO_HOST
    if secrets:  # beside the command, never in it: see transports/secret_env.py
        result = transport.run(command.command, step.timeout, secrets=secrets)
    else:
        result = transport.run(command.command, step.timeout)
    return StepOutcome.from_command(result, command.expect, "command", command.warn)


def _service(executor: StepExecutor, step: Step, transport: Transport | None, deadline: float,
             secrets: Mapping[str, str]) -> StepOutcome:
    service = step.service
    if service is None:
        return _NO_ACTION
    if transport is None:
        return _NO_HOST
    result = transport.run(service_command(transport.shell, service.name, service.action), step.timeout)
    if not result.ok:
        return StepOutcome.from_command(result, [0], f"{service.action} {service.name}")
    want = "stopped" if service.action == "stop" else "running"
    return executor._wait(Probe(service=service.name, state=want), transport, deadline, step.interval)


def _wait_for(executor: StepExecutor, step: Step, transport: Transport | None, deadline: float,
              secrets: Mapping[str, str]) -> StepOutcome:
    probe = step.wait_for
    if probe is None:
        return _NO_ACTION
    return executor._wait(probe, transport, deadline, step.interval)


def _check(executor: StepExecutor, step: Step, transport: Transport | None, deadline: float,
           secrets: Mapping[str, str]) -> StepOutcome:
    probe = step.check
    if probe is None:
        return _NO_ACTION
    passed, detail = executor.probe(probe, transport, step.timeout)
    return StepOutcome(StepStatus.OK if passed else StepStatus.FAILED, detail)


HANDLERS: dict[str, Handler] = {"run": _command, "backup": _command, "service": _service,
                                "wait_for": _wait_for, "check": _check}


def _http(probe: Probe, timeout: float) -> tuple[bool, str]:
    import requests

    url = probe.http or ""
    try:
        response = requests.get(url, timeout=timeout, verify=probe.tls_verify, allow_redirects=True)
    except requests.exceptions.SSLError as exc:
        return False, f"{url}: TLS certificate not trusted ({exc.__class__.__name__})"
    except requests.RequestException as exc:
        reason = exc.__class__.__name__
        return False, f"{url}: no answer ({reason})"
    if response.status_code != probe.status:
        return False, f"{url} answered HTTP {response.status_code}, expected {probe.status}"
    if probe.body and not re.search(probe.body, response.text[:1_000_000]):
        return False, f"{url} answered HTTP {response.status_code} but the body does not match /{probe.body}/"
    matching = f" matching /{probe.body}/" if probe.body else ""
    return True, f"{url} answered HTTP {response.status_code}{matching}"
