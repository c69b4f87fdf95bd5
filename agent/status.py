"""``custode status``: what is wrong right now, in plain words.

It reads the state database that the running agent keeps, so it works from
any shell while the service runs. Its first lines say which config and state
DB it read and whether an agent writes that DB now (the heartbeat): with no
agent running it says so and exits 1, rather than showing stale calm. A state
database that cannot be read is a :class:`StateError` naming the file and
the fix (restore, ``.recover``, free space), never a traceback.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from custode.agent.calendar import ROME
from custode.agent.cli_output import sources_line
from custode.agent.clock import current_time
from custode.agent.config_loader import LoadedConfig
from custode.agent.heartbeat import AgentSeen, last_seen, other_agents
from custode.agent.incidents import Incidents
from custode.agent.paths import state_path
from custode.agent.state import State, StateError
from custode.agent.storage_errors import classify, explain_state
from custode.agent.table import human_age


@dataclass
class StatusReport:
    text: str
    problems: int


def _when(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def agent_lines(seen: AgentSeen | None, loaded: LoadedConfig, now: float) -> tuple[list[str], bool]:
    """Whether an agent writes this state DB now, and in which words; (lines, running)."""
    hostname = loaded.model.agent.hostname
    if seen is not None and seen.running(now, hostname):
        line = (f"Agent: running (pid {seen.pid} on {seen.hostname}, since {_when(seen.started_at)}, "
                f"listening on {seen.listen}, version {seen.version})")
        lines = [line]
        if seen.config != loaded.source:
            lines.append(f"  note: the agent runs with config {seen.config}, this command read {loaded.source}")
        return lines, True
    if seen is None:
        lines = ["Agent: NOT RUNNING: no agent has ever run with this state DB, so what follows is not "
                 "a view of this host now."]
    elif seen.stopped_at is not None:
        lines = [f"Agent: NOT RUNNING: stopped {_when(seen.stopped_at)} ({human_age(now - seen.stopped_at)} ago); "
                 "what follows is its state at that time."]
    else:
        lines = [f"Agent: NOT RUNNING: last seen {_when(seen.seen_at)} ({human_age(now - seen.seen_at)} ago), "
                 "without stopping (killed, crashed or the host went down); what follows is its state then."]
    others = other_agents(loaded.source)
    for pid, config in others:
        lines.append(f"  an agent runs here with another config (pid {pid}, --config {config}): "
                     f"use 'custode status --config {config}' or set CUSTODE_CONFIG")
    if not others:
        lines.append("  start it: systemctl start custode (or 'custode run')")
    return lines, False


def build_status(loaded: LoadedConfig, now: float | None = None) -> StatusReport:
    now = current_time() if now is None else now
    path = state_path(loaded.model)
    if not path.exists():
        others = "".join(f"\nAn agent runs here with another config (pid {pid}, --config {config}): use "
                         f"'custode status --config {config}' or set CUSTODE_CONFIG."
                         for pid, config in other_agents(loaded.source))
        return StatusReport(f"{sources_line(loaded)}\nAgent: NOT RUNNING: no state yet at {path}: Custode has not "
                            f"run with this config. Start it with 'custode run' (or the systemd service).{others}\n",
                            1)
    state = State(path)  # StateError: says what is wrong with the file and what to do
    try:
        model = Incidents(state)
        incidents, pending = model.open_incidents(), model.pending()
        collectors = state.collector_statuses()
        held = state.held_audit_summary()
        seen = last_seen(state)
        farm = farm_lines(state, loaded.model, now)
        farm += ticket_lines(state, loaded.model, now)
    except sqlite3.DatabaseError as exc:
        raise StateError(explain_state(exc, path), classify(exc, path)) from None
    finally:
        state.close()

    lines = [sources_line(loaded)]
    running_lines, running = agent_lines(seen, loaded, now)
    lines += running_lines + [""]
    if incidents:
        lines.append(f"{len(incidents)} problem{'s' if len(incidents) != 1 else ''} right now:")
        for incident in incidents:
            lines.append(f"  {incident.severity.upper():8}  {incident.summary}")
            lines.append(f"            since {_when(incident.opened_at)} ({human_age(now - incident.opened_at)}), "
                         f"seen {incident.occurrences} times, tenant {incident.tenant}")
    elif running:
        lines.append("No open incidents: nothing is wrong right now.")
    else:
        lines.append("No open incidents were recorded; with no agent running, that says nothing about now.")
    for row in pending:
        lines.append(f"  watching  {row['summary']} (for {human_age(now - row['pending_since'])}, "
                     f"not yet long enough to count)")

    if collectors:
        failing = [c for c in collectors if not c["success"]]
        newest = max(c["last_run_at"] for c in collectors)
        lines.append("")
        lines.append(f"Collectors: {len(collectors) - len(failing)} of {len(collectors)} worked in their "
                     f"last run; the latest run finished {human_age(now - newest)} ago.")
        for c in failing:
            since = (f"failing since {_when(c['last_success_at'])}" if c["last_success_at"]
                     else "has never worked")
            lines.append(f"  {c['name']}: {since} ({c['consecutive_failures']} runs): {c['error']}")
        if now - newest > 600:
            lines.append(f"Warning: no collector ran for {human_age(now - newest)}. Is the agent running? "
                         "Check 'systemctl status custode'.")
    else:
        lines.append("")
        lines.append("No collector has run yet with this state database.")
    lines += farm
    lines += held_lines(*held)
    return StatusReport("\n".join(lines) + "\n", len(incidents) + (1 if held[0] else 0) + (0 if running else 1))


def held_lines(count: int, first: str | None, reason: str | None) -> list[str]:
    """Audit records the log could not take: how many, since when, why (they go in once it is fixed)."""
    if not count:
        return []
    return ["", f"Audit log: {count} record{'s' if count != 1 else ''} held in the state database since {first} "
                f"(UTC), waiting for the log to take them: {reason}"]


def farm_lines(state: State, config, now: float) -> list[str]:
    """Farm mode's part: how many hosts answered, and each one that did not, with why."""
    polled = config.polled_hosts()
    if not polled:
        return []
    rows = {r["host"]: r for r in state.query("SELECT * FROM farm_targets") if r["host"] in polled}
    down = [r for r in rows.values() if not r["up"]]
    never = sorted(set(polled) - set(rows))
    lines = ["", f"Farm: {len(rows) - len(down)} of {len(polled)} hosts answered their last poll"
             + (f"; {len(never)} not polled yet" if never else "") + "."]
    tenants: dict[str, list[int]] = {}
    for name, host in polled.items():
        row = rows.get(name)
        counts = tenants.setdefault(host.tenant or config.agent.tenant, [0, 0])
        counts[0] += 1
        counts[1] += 1 if row is not None and row["up"] else 0
    lines += [f"  {tenant}: {hosts} host{'s' if hosts != 1 else ''}, {answering} answering"
              for tenant, (hosts, answering) in sorted(tenants.items())]
    for row in sorted(down, key=lambda r: r["host"]):
        since = (f"last answered {_when(row['last_success_at'])}" if row["last_success_at"] else "never answered")
        lines.append(f"  {row['host']} ({row['tenant']}): down for {row['consecutive_failures']} polls, {since}: "
                     f"{row['last_error']}")
    return lines


def ticket_lines(state: State, config, now: float) -> list[str]:
    """Tickets: how many are live, how many are late, and whether the outbox is stuck."""
    if not config.tickets.enabled or not config.tickets.backends:
        return []
    from custode.agent.tickets import store
    from custode.agent.tickets.model import OpState

    live = store.open_ticket_totals(state)
    outbox = {r["state"]: r for r in store.undelivered_counts(state)}
    lines = ["", f"Tickets: {live['n']} open" + (f", {live['late']} past the take-charge time"
                                                   if live["late"] else "") + "."]
    if OpState.PENDING in outbox:
        row = outbox[OpState.PENDING]
        lines.append(f"  outbox: {row['n']} operation(s) waiting, the oldest for {human_age(now - row['first'])}")
    if OpState.DEAD in outbox:
        lines.append(f"  outbox: {outbox[OpState.DEAD]['n']} operation(s) UNDELIVERABLE; see 'custode tickets outbox'")
    return lines
