"""Running an update window: plan, lock, steps, rollback, outcome, incident.

The order of things is the contract: everything is planned (playbook valid,
every variable and secret resolved, every command written for its host's
shell with secrets as references to environment variables, their values kept
beside it for the transport) before anything is touched; the lock, the
run record and the silence of the touched hosts are taken together; a step
that would end after the window closes is not started; a failure rolls back;
the outcome is recorded, the silence lifted and the lock released together;
only then is the incident judged, so the run's own silence cannot hide it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from custode.agent.calendar import ROME
from custode.agent.clock import Clock, current_time, now_rome
from custode.agent.config import Config
from custode.agent.config_loader import ConfigError
from custode.agent.durations import format_duration
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.secrets import SecretError
from custode.agent.state import State
from custode.agent.transports import HostConfig, Transport, open_transport, shell_for
from custode.agent.updates.notify import Notice, compose
from custode.agent.updates.playbook import (
    Playbook,
    SecretPlacementError,
    Step,
    Variables,
    bind_step,
    load_playbook,
    render_step,
    step_problem,
    unknown_variables,
)
from custode.agent.updates.states import Phase, RunStatus, RunTrigger, StepStatus
from custode.agent.updates.steps import StepExecutor, StepOutcome
from custode.agent.updates.store import NewRun, RunBusy, UpdateStore
from custode.agent.updates.windows import (
    WindowOccurrence,
    next_occurrence,
    occurrence_at,
    occurrences,
    tenants_concerned,
)

log = logging.getLogger(__name__)
CHECK = "update"


class RunRefused(Exception):
    """The run must not start (outside its window, a holiday, busy, no reason given); the message says why."""


@dataclass(frozen=True)
class PlannedStep:
    phase: Phase
    position: int
    title: str
    action: str
    host: str | None
    step: Step
    """Rendered for its host's shell, secrets as references to environment variables: what runs."""
    shown: Step
    """Rendered with placeholders: what is printed, stored and audited."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """The values ``step``'s command refers to, by variable name: handed to the transport beside it."""
    shell: str | None = None
    """The shell ``step``'s command is written for (None: no host)."""


@dataclass
class Plan:
    window: str
    application: str
    tenant: str | None
    occurrence: WindowOccurrence
    trigger: str
    """A :class:`RunTrigger` value."""
    reason: str | None
    playbook_path: Path
    playbook: Playbook
    hosts: dict[str, HostConfig]
    steps: list[PlannedStep]
    rollback: list[PlannedStep]
    notify: bool
    variables: dict[str | None, Variables] = field(default_factory=dict)

    def scrub(self, text: str) -> str:
        for variables in self.variables.values():
            text = variables.scrub(text)
        return text

    def describe(self) -> str:
        """The dry-run text: every step, on every host, with every variable resolved."""
        occ = self.occurrence
        lines = [f"Window {self.window} ({self.application}" + (f", tenant {self.tenant}" if self.tenant else "")
                 + f"): {occ.start:%Y-%m-%d %H:%M} – {occ.end:%H:%M} Europe/Rome, trigger {self.trigger}"
                 + (f", reason: {self.reason}" if self.reason else ""),
                 f"Playbook {self.playbook_path} ({self.playbook.name})",
                 "Hosts: " + (", ".join(f"{n} ({h.transport} {h.address})" for n, h in self.hosts.items()) or "none")]
        for phase, steps in (("Steps", self.steps), ("Rollback (when a step fails)", self.rollback)):
            lines.append(f"{phase}:")
            if phase == "Steps" and self.trigger == RunTrigger.NOW:
                lines.append("  0. urgent notice to the referents, with the reason and the expected return to "
                             "service; the run does not start if it cannot be sent")
            for planned in steps:
                where = f" on {planned.host}" if planned.host else ""
                if planned.action == "notify":
                    when = {"start": "replaced by the urgent notice" if self.trigger == RunTrigger.NOW else "now",
                            "outcome": "once the run has ended"}[str(planned.step.notify)]
                    lines.append(f"  {planned.position + 1}. notify referents ({planned.step.notify}: {when})")
                    continue
                lines.append(f"  {planned.position + 1}. {planned.title}{where} "
                             f"[timeout {format_duration(planned.step.timeout)}]: {_action_text(planned.shown)}")
            if not steps:
                lines.append("  (none)")
        return "\n".join(lines) + "\n"


def _action_text(step: Step) -> str:
    action = step.action
    value: Any = getattr(step, action)
    if action in ("run", "backup"):
        return f"{action}: {value.command}"
    if action == "notify":
        return f"notify referents ({value})"
    if action == "service":
        return f"{value.action} service {value.name}"
    data = value.model_dump(exclude_defaults=True)
    return f"{action}: " + ", ".join(f"{k}={v}" for k, v in data.items())


def playbooks_dir(config: Config, source: str) -> Path:
    base = Path(source).parent if source and Path(source).exists() else Path.cwd()
    folder = config.updates.playbooks_dir
    if folder is None:
        return (base / "playbooks").resolve()
    return folder if folder.is_absolute() else (base / folder).resolve()


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: RunStatus
    summary: str


class UpdateRunner:
    def __init__(self, config: Config, source: str, state: State | None = None,
                 incidents: Incidents | None = None, *,
                 audit: Callable[[str, str, dict], None] | None = None, mailer: Any = None,
                 transports: Callable[[str, HostConfig], Transport] = open_transport,
                 executor: StepExecutor | None = None, clock: Clock = current_time) -> None:
        self.config = config
        self.source = source
        self.store = UpdateStore(state) if state is not None else None
        self.incidents = incidents
        """Both None: a runner that can only plan (``--dry-run``)."""
        self.audit = audit or (lambda action, subject, details: None)
        self.mailer = mailer
        self.transports = transports
        self.executor = executor or StepExecutor()
        self.clock = clock

    # --- planning ----------------------------------------------------------------------

    def occurrence_for(self, name: str, trigger: str, reason: str | None) -> WindowOccurrence:
        window = self._window(name)
        now = datetime.fromtimestamp(self.clock(), ROME)
        if trigger == RunTrigger.NOW:
            if not reason or not reason.strip():
                raise RunRefused("an urgent update outside the window needs --reason \"…\": the referents are "
                                 "told why before it starts")
            return WindowOccurrence(name, window.application, window.tenant, now,
                                    now + timedelta(seconds=window.duration), False, None)
        occ = occurrence_at(self.config, name, now)
        if occ is None or occ.skipped:
            upcoming = next_occurrence(self.config, name, now)
            why = (f"today's window is skipped ({occ.reason})" if occ else
                   f"it is {now:%A %H:%M}, outside the window of {name}")
            nxt = f"; the next window opens {upcoming.start:%A %Y-%m-%d %H:%M}" if upcoming else ""
            raise RunRefused(f"{why}{nxt}. For an urgent update use: custode update run {name} --now "
                             "--reason \"…\" (the referents are notified first)")
        return occ

    def dry_run_occurrence(self, name: str, trigger: str, reason: str | None,
                           on: date | None = None) -> WindowOccurrence:
        """The occurrence a dry run shows: the one open now, else the next, else the one on ``on``.

        A dry run is how a sysadmin checks a playbook on Tuesday for Thursday's
        window, so unlike a run it is never refused for being outside the
        window; only a date with no occurrence, or a skipped one, is.
        """
        window = self._window(name)
        now = datetime.fromtimestamp(self.clock(), ROME)
        if trigger == RunTrigger.NOW:
            return self.occurrence_for(name, trigger, reason)
        if on is not None:
            found = [o for o in occurrences(self.config, on, 1, [name]) if o.start.date() == on]
            if not found:
                nxt = next_occurrence(self.config, name, datetime.combine(on, datetime.min.time(), ROME))
                hint = f"; the next one is {nxt.start:%A %Y-%m-%d %H:%M %Z}" if nxt else ""
                raise RunRefused(f"window {name} ({window.application}) has no occurrence on {on:%A %Y-%m-%d}{hint}")
            if found[0].skipped:
                raise RunRefused(f"window {name} on {on:%Y-%m-%d} is skipped ({found[0].reason})")
            return found[0]
        current = occurrence_at(self.config, name, now)
        if current is not None and not current.skipped:
            return current
        upcoming = next_occurrence(self.config, name, now)
        if upcoming is None:
            raise RunRefused(f"window {name} has no occurrence in the coming 400 days (every one is skipped, or its "
                             "days never come); check its days and the calendar's closures")
        return upcoming

    def plan(self, name: str, trigger: str = RunTrigger.MANUAL, reason: str | None = None,
             occurrence: WindowOccurrence | None = None, resolve_secrets: bool = True) -> Plan:
        window = self._window(name)
        occ = occurrence or self.occurrence_for(name, trigger, reason)
        path = playbooks_dir(self.config, self.source) / window.playbook
        playbook, lines = load_playbook(path)
        hosts = {h: self.config.hosts[h] for h in window.hosts}
        tenant = window.tenant
        planned: dict[Phase, list[PlannedStep]] = {phase: [] for phase in Phase}
        problems: list = []
        variables_by_host: dict[str | None, Variables] = {}
        for phase in Phase:
            for position, step in enumerate(getattr(playbook, phase)):
                strangers = [h for h in step.hosts or [] if h not in hosts]
                if strangers:
                    raise ConfigError([step_problem(path, lines, phase, position, step,
                                                f"host {strangers[0]!r} is not one of the window's hosts "
                                                f"({', '.join(hosts) or 'none'})")])
                targets: list[str | None] = [None] if step.action == "notify" else list(step.hosts or hosts)
                if not targets:
                    if not _from_node(step):
                        raise ConfigError([step_problem(path, lines, phase, position, step,
                                                    "this step runs on a host, but the window has no hosts")])
                    targets = [None]
                for host in targets:
                    variables = variables_by_host.get(host)
                    if variables is None:
                        variables = self._variables(name, occ, playbook, host, hosts.get(host) if host else None,
                                                    trigger, reason, resolve_secrets)
                        variables_by_host[host] = variables
                    unknown = [step_problem(path, lines, phase, position, step, text)
                               for text in unknown_variables(step, variables)]
                    if unknown:
                        problems += [p for p in unknown if p not in problems]
                        continue
                    shell = shell_for(hosts[host]) if host else None
                    try:
                        actual = bind_step(step, variables, shell)
                        shown = render_step(step, variables, shown=True)
                    except (SecretError, SecretPlacementError) as exc:
                        raise ConfigError([step_problem(path, lines, phase, position, step, str(exc))]) from None
                    planned[phase].append(PlannedStep(phase, position, shown.title(position), step.action, host,
                                                      actual.step, shown, actual.secrets, shell))
        if problems:
            raise ConfigError(problems)
        return Plan(window=name, application=window.application, tenant=tenant, occurrence=occ, trigger=trigger,
                    reason=reason, playbook_path=path, playbook=playbook, hosts=hosts, steps=planned[Phase.STEPS],
                    rollback=planned[Phase.ROLLBACK], notify=window.notify, variables=variables_by_host)

    def _variables(self, name: str, occ: WindowOccurrence, playbook: Playbook, host: str | None,
                   host_config: HostConfig | None, trigger: str, reason: str | None,
                   resolve_secrets: bool) -> Variables:
        window = self.config.updates.windows[name]
        tenant_id = window.tenant or (host_config.tenant if host_config else None) or self.config.agent.tenant
        tenant = self.config.tenants.get(tenant_id)
        values: dict[str, Any] = {**playbook.vars, **(tenant.vars if tenant else {}), **window.vars,
                                  **(host_config.vars if host_config else {})}
        values.update({
            "host": {"name": host or "", "address": host_config.address if host_config else ""},
            "tenant": {"id": tenant_id, "name": tenant.name if tenant else tenant_id},
            "window": {"name": name, "application": window.application, "start": f"{occ.start:%H:%M}",
                       "end": f"{occ.end:%H:%M}", "date": f"{occ.start:%Y-%m-%d}"},
            "run": {"trigger": trigger, "reason": reason or "", "stamp": f"{occ.start:%Y%m%d-%H%M}"},
            "secret": dict(playbook.secrets),
        })
        return Variables(values, resolve_secrets=resolve_secrets)

    def _window(self, name: str):
        windows = self.config.updates.windows
        if name not in windows:
            from custode.agent.suggest import did_you_mean

            hint = did_you_mean(name, windows)
            raise RunRefused(f"no update window named {name!r}" + (f"; did you mean {hint!r}?" if hint else
                             f"; configured: {', '.join(windows) or 'none (see README, Update windows)'}"))
        return windows[name]

    # --- running -----------------------------------------------------------------------

    def run(self, name: str, trigger: str = RunTrigger.MANUAL, reason: str | None = None,
            occurrence: WindowOccurrence | None = None) -> RunResult:
        if self.store is None or self.incidents is None:
            raise RuntimeError("this runner was built without a state DB: it can only plan")
        self.recover()
        plan = self.plan(name, trigger, reason, occurrence)
        now = self.clock()
        silence = sorted({(h.tenant, n) for n, h in plan.hosts.items()} |
                         {(h.tenant, h.address) for h in plan.hosts.values()}, key=str)
        silence_until = plan.occurrence.end.timestamp() + self.config.updates.silence_margin
        try:
            run_id = self.store.begin(NewRun(name, plan.application, plan.tenant, trigger, reason,
                                             str(plan.playbook_path), plan.occurrence.start.timestamp(),
                                             plan.occurrence.end.timestamp(), silence, silence_until), now)
        except RunBusy as exc:
            raise RunRefused(str(exc)) from None
        subject = f"update/{name}"
        self.audit("update.started", subject, {"run_id": run_id, "trigger": trigger, "reason": reason,
                                               "playbook": str(plan.playbook_path), "hosts": list(plan.hosts),
                                               "window_end": plan.occurrence.end.isoformat()})
        log.info("update started", extra={"window": name, "run_id": run_id, "trigger": trigger})
        transports: dict[str, Transport] = {}
        try:
            status, summary = self._execute(run_id, plan, transports)
        except Exception as exc:  # a bug must still release the lock and leave a record
            log.exception("update run crashed", extra={"window": name, "run_id": run_id})
            status, summary = RunStatus.FAILED, f"internal error: {exc}"
        finally:
            for transport in transports.values():
                try:
                    transport.close()
                except Exception:  # noqa: BLE001 - closing must not mask the outcome
                    log.debug("closing transport failed", exc_info=True)
        summary = plan.scrub(summary)
        self._send_outcome(run_id, plan, status, summary)
        self.store.finish(run_id, status, summary, self.clock())
        self.audit("update.finished", subject, {"run_id": run_id, "status": status, "summary": summary})
        log.log(logging.INFO if status == RunStatus.SUCCEEDED else logging.ERROR, "update finished",
                extra={"window": name, "run_id": run_id, "status": status, "summary": summary})
        self._judge(plan, run_id, status, summary)
        return RunResult(run_id, status, summary)

    def _execute(self, run_id: int, plan: Plan, transports: dict[str, Transport]) -> tuple[RunStatus, str]:
        if plan.trigger == RunTrigger.NOW:
            announced = self._notify_step(run_id, plan, "urgent", position=-1)
            if announced.status == StepStatus.FAILED:
                return RunStatus.FAILED, f"the urgent update was not started: {announced.detail}"
        deadline = plan.occurrence.end.timestamp()
        failure = None
        for planned in plan.steps:
            if planned.action == "notify":
                if planned.step.notify == "start" and plan.trigger != RunTrigger.NOW:
                    self._notify_step(run_id, plan, "start", planned.position)
                continue  # outcome notices are sent once the outcome is known
            if self.clock() + planned.step.timeout > deadline:
                end = plan.occurrence.end
                failure = (f"stopped before step '{planned.title}': with its timeout of "
                           f"{format_duration(planned.step.timeout)} it could end after the window closes at "
                           f"{end:%H:%M}")
                break
            outcome = self._run_step(run_id, plan, planned, transports)
            if not outcome.ok:
                where = f" on {planned.host}" if planned.host else ""
                failure = f"step '{planned.title}'{where} failed: {outcome.detail}"
                break
        if failure is None:
            return RunStatus.SUCCEEDED, f"all {len(plan.steps)} steps passed"
        if not plan.rollback:
            return RunStatus.FAILED, failure + "; the playbook has no rollback"
        rollback_failures = []
        for planned in plan.rollback:
            if planned.action == "notify":
                continue
            outcome = self._run_step(run_id, plan, planned, transports)
            if not outcome.ok:
                rollback_failures.append(f"'{planned.title}'" + (f" on {planned.host}" if planned.host else ""))
        if rollback_failures:
            return RunStatus.FAILED, f"{failure}; rollback steps failed too: {', '.join(rollback_failures)}"
        return RunStatus.ROLLED_BACK, f"{failure}; rolled back"

    def _run_step(self, run_id: int, plan: Plan, planned: PlannedStep,
                  transports: dict[str, Transport]) -> StepOutcome:
        step_id = self._begin_step(run_id, plan, planned)
        transport = None
        if planned.host is not None:
            transport = transports.get(planned.host)
            if transport is None:
                transport = transports[planned.host] = self.transports(planned.host, plan.hosts[planned.host])
        if transport is not None and planned.secrets and transport.shell != planned.shell:
            outcome = StepOutcome(StepStatus.FAILED, f"the command was written for {planned.shell}, but the "
                                                     f"transport to {planned.host} runs {transport.shell}: not run")
        else:
            outcome = self.executor.execute(planned.step, transport, planned.secrets)
        self._record(run_id, step_id, plan, planned, outcome)
        return outcome

    def _begin_step(self, run_id: int, plan: Plan, planned: PlannedStep) -> int:
        step_id = self.store.start_step(run_id, planned.phase, planned.position, planned.title, planned.action,
                                        planned.host, self.clock())
        self.audit("update.step.started", f"update/{plan.window}",
                   {"run_id": run_id, "phase": planned.phase, "step": planned.title, "host": planned.host,
                    "action": _action_text(planned.shown)})
        return step_id

    def _record(self, run_id: int, step_id: int, plan: Plan, planned: PlannedStep, outcome: StepOutcome) -> None:
        detail = plan.scrub(outcome.detail)
        self.store.end_step(step_id, outcome.status, detail, outcome.exit_code, plan.scrub(outcome.stdout),
                            plan.scrub(outcome.stderr), self.clock())
        self.audit("update.step.finished", f"update/{plan.window}",
                   {"run_id": run_id, "phase": planned.phase, "step": planned.title, "host": planned.host,
                    "status": outcome.status, "detail": detail, "exit_code": outcome.exit_code})

    # --- notifications -------------------------------------------------------------------

    def _recipients(self, plan: Plan) -> tuple[list[str], str, str]:
        tenants = tenants_concerned(plan.tenant, plan.hosts.values())
        addresses: list[str] = []
        for tenant_id in tenants:
            tenant = self.config.tenants.get(tenant_id)
            if tenant:
                addresses += [a for a in tenant.referents if a not in addresses]
        first = self.config.tenants.get(tenants[0]) if tenants else None
        return addresses, (first.name if first else "Comune"), (first.language if first else "it")

    def _notify_step(self, run_id: int, plan: Plan, kind: str, position: int, status: RunStatus | None = None,
                     detail: str = "") -> StepOutcome:
        step = Step(notify="outcome" if kind == "outcome" else "start")
        planned = PlannedStep(Phase.STEPS, position, f"notify {kind}", "notify", None, step, step)
        step_id = self._begin_step(run_id, plan, planned)
        outcome = self._notify(plan, kind, status, detail)
        self._record(run_id, step_id, plan, planned, outcome)
        return outcome

    def _notify(self, plan: Plan, kind: str, status: RunStatus | None, detail: str) -> StepOutcome:
        if not plan.notify:
            return StepOutcome(StepStatus.OK, f"notices are off for window {plan.window} (notify: false)")
        recipients, tenant_name, language = self._recipients(plan)
        if not recipients:
            return StepOutcome(StepStatus.WARNING, "no referents to notify: add tenants.<id>.referents")
        if self.mailer is None:
            failed = StepStatus.FAILED if kind == "urgent" else StepStatus.WARNING
            return StepOutcome(failed, "cannot notify the referents: no smtp section in the config")
        notice = Notice(kind, plan.application, tenant_name, list(plan.hosts), plan.occurrence.start,
                        plan.occurrence.end, plan.reason, status, plan.scrub(detail))
        subject, text = compose(notice, language)
        from custode.agent.mailer import MailerError, OutgoingMail

        try:
            message_id = self.mailer.send(OutgoingMail(to=recipients, subject=subject, text=text,
                                                       headers={"X-Custode-Window": plan.window}))
        except MailerError as exc:
            return StepOutcome(StepStatus.FAILED if kind == "urgent" else StepStatus.WARNING,
                               f"notice not sent: {exc}")
        return StepOutcome(StepStatus.OK, f"{kind} notice sent to {', '.join(recipients)} ({message_id})")

    def _send_outcome(self, run_id: int, plan: Plan, status: RunStatus, summary: str) -> None:
        wants = [p for p in plan.steps + plan.rollback if p.action == "notify" and p.step.notify == "outcome"]
        if plan.trigger == RunTrigger.NOW or wants:
            position = wants[0].position if wants else len(plan.steps)
            self._notify_step(run_id, plan, "outcome", position, status,
                              "" if status == RunStatus.SUCCEEDED else summary)

    # --- outcome -------------------------------------------------------------------------

    def _judge(self, plan: Plan, run_id: int, status: RunStatus, summary: str) -> None:
        tenant = plan.tenant or self.config.agent.tenant
        severity = {RunStatus.SUCCEEDED: "ok", RunStatus.ROLLED_BACK: "warning"}.get(status, "critical")
        text = (f"update of {plan.application} ({plan.window}) {status.replace('_', ' ')}: {summary}"
                if severity != "ok" else f"update of {plan.application} ({plan.window}) succeeded")
        self.incidents.observe(CheckResult(tenant, CHECK, plan.window, severity, text,  # type: ignore[arg-type]
                                           {"run_id": run_id, "status": status}), occurrence=True)

    def recover(self) -> list[int]:
        """Runs whose process died mid-run: recorded as interrupted, lock and silence released, incident opened."""
        if self.store is None or self.incidents is None:
            raise RuntimeError("this runner was built without a state DB: it can only plan")
        recovered = []
        for row in self.store.orphaned():
            run_id = row["run_id"]
            summary = (f"the run started {datetime.fromtimestamp(row['started_at'], ROME):%Y-%m-%d %H:%M} stopped "
                       f"without finishing (process {row['owner_pid']} ended: crash, kill or reboot); the hosts may "
                       "be half-updated: check them")
            self.store.finish(run_id, RunStatus.INTERRUPTED, summary, self.clock())
            self.audit("update.interrupted", f"update/{row['window']}", {"run_id": run_id, "summary": summary})
            log.error("update run interrupted", extra={"window": row["window"], "run_id": run_id})
            tenant = row["tenant"] or self.config.agent.tenant
            self.incidents.observe(CheckResult(tenant, CHECK, row["window"], "critical",
                                               f"update of {row['application']} ({row['window']}) interrupted: "
                                               f"{summary}", {"run_id": run_id, "status": RunStatus.INTERRUPTED}),
                                   occurrence=True)
            recovered.append(run_id)
        return recovered


def _from_node(step: Step) -> bool:
    """wait_for/check on http or tcp are made from the Custode node, so they need no host."""
    probe = step.wait_for or step.check
    return probe is not None and (probe.http is not None or probe.tcp is not None)


def check_playbooks(config: Config, source: str) -> list:
    """Every problem of every window's playbook (schema, steps, variables), without touching a host.

    ``custode config check`` and the agent's start call it, so a broken
    playbook is found on Monday, not at Thursday's window.
    """
    planner = UpdateRunner(config, source)
    problems = []
    for name, window in config.updates.windows.items():
        if not window.enabled:
            continue
        now = now_rome()
        occurrence = WindowOccurrence(name, window.application, window.tenant, now,
                                      now + timedelta(seconds=window.duration), False, None)
        try:
            planner.plan(name, RunTrigger.MANUAL, None, occurrence, resolve_secrets=False)
        except ConfigError as exc:
            problems += [p for p in exc.problems if p not in problems]
    return problems

