"""Every host's day in host_daily: the agent's own cycles and farm polls in one model, the migration from
farm_daily, retention at 400 days, and the read API the yearly report builder uses.

Every time here is the scenario's own (March 2026, Europe/Rome), on Custode's pinned clock: nothing is
judged against the day the suite runs."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import date, datetime, timedelta

import pytest
from conftest import free_port
from farm_helpers import GIB, down, linux_snapshot, up, windows_snapshot

from custode.agent.clock import ROME
from custode.agent.config_loader import load_text
from custode.agent.farm.report import render, summarise
from custode.agent.farm.service import FarmService
from custode.agent.history import store
from custode.agent.history.cycles import gap_shares, not_running
from custode.agent.history.model import HistorySource, Observation, day_start
from custode.agent.history.service import AgentHistory, keep_days, prune, record_cycles
from custode.agent.history.store import HostDay, host_days
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.runtime import Agent
from custode.agent.state import MIGRATIONS, State, _statements
from custode.collectors.base import Collector, gauge

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=ROME).timestamp()
DAY = date(2026, 3, 10)
HOST = "srv-crema"


class Disks(Collector):
    """The filesystem collector's names with figures the test chooses (the real one reads this machine)."""

    name = "filesystem"

    def __init__(self) -> None:
        super().__init__()
        self.avail = {"/": 40 * GIB, "/srv": 9 * GIB}

    def collect(self):
        size = gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", ["mountpoint"])
        avail = gauge("node_filesystem_avail_bytes", "Filesystem space available.", ["mountpoint"])
        for mount, value in self.avail.items():
            size.add_metric([mount], 100 * GIB)
            avail.add_metric([mount], value)
        return [size, avail]


class Memory(Collector):
    name = "memory"

    def collect(self):
        total = gauge("node_memory_MemTotal_bytes", "MemTotal.")
        total.add_metric([], 8 * GIB)
        available = gauge("node_memory_MemAvailable_bytes", "MemAvailable.")
        available.add_metric([], 2 * GIB)
        return [total, available]


class Cpu(Collector):
    name = "cpu"

    def __init__(self) -> None:
        super().__init__()
        self.busy = [0.2, 0.6]

    def collect(self):
        ratio = gauge("custode_cpu_utilisation_ratio", "Busy fraction.")
        ratio.add_metric([], self.busy.pop(0) if len(self.busy) > 1 else self.busy[0])
        return [ratio]


class Services(Collector):
    name = "services"

    def collect(self):
        total = gauge("custode_services_failed", "Number of failed services.", ["manager"])
        total.add_metric(["systemd"], 2)
        return [total]


class Smart(Collector):
    """A slower cycle of its own (5 minutes), failing: its errors reach the next observation."""

    name = "smart"

    def collect(self):
        raise RuntimeError("smartctl is not installed")


FAKED = ("filesystem", "memory", "cpu", "services", "smart")


def _config(tmp_path, extra: str = "") -> str:
    off = "".join(f"  {name}: {{enabled: false}}\n" for name in FAKED)
    return (f"agent: {{tenant: crema, hostname: {HOST}, data_dir: '{tmp_path / 'data'}'}}\n"
            "tenants:\n  crema: {name: Comune di Crema}\n  cremona: {name: Comune di Cremona}\n"
            f"collectors:\n{off}" + extra)


def _agent(tmp_path, extra: str = "") -> Agent:
    collectors = [(Disks(), 15.0, 5.0), (Memory(), 15.0, 5.0), (Cpu(), 15.0, 5.0), (Services(), 15.0, 5.0),
                  (Smart(), 300.0, 5.0)]
    return Agent(load_text(_config(tmp_path, extra), source="custode.yaml"), listen=f"127.0.0.1:{free_port()}",
                 extra_collectors=collectors)


def _cycle(agent: Agent, pin_clock, at: float, *, slow: bool = False) -> None:
    """The agent's collection jobs as the scheduler runs them, at ``at`` on the pinned clock."""
    pin_clock(at, running=False)
    jobs = agent.collection_jobs()
    assert [job.id for job in jobs] == ["collectors:15s", "collectors:300s"]
    jobs[0].run()
    if slow:
        jobs[1].run()


def _days(state: State, tenant: str = "crema", first: date = DAY - timedelta(days=500),
          last: date = DAY + timedelta(days=5)) -> list[HostDay]:
    return host_days(state, tenant, first, last)


# -- the agent's own host, through its real collection cycle ---------------------------------------------------

def test_the_agent_folds_its_own_cycles_into_its_hosts_day(tmp_path, pin_clock) -> None:
    agent = _agent(tmp_path)
    try:
        _cycle(agent, pin_clock, NOON, slow=True)
        disks = next(r.collector for r in agent.runners if r.name == "filesystem")
        disks.avail["/srv"] = 4 * GIB  # type: ignore[attr-defined]
        _cycle(agent, pin_clock, NOON + 15)
        assert agent.history.pending() == 2 and _days(agent.state) == [], "nothing written before the flush"
        assert agent.history.flush() == 2
        (row,) = _days(agent.state)
    finally:
        agent.stop()
    assert (row.host, row.day, row.tenant, row.source) == (HOST, DAY, "crema", HistorySource.AGENT)
    assert (row.polls, row.successes) == (2, 2)
    data = row.data
    assert data["cpu"] == {"sum": 80.0, "n": 2, "max": 60.0}
    assert data["memory"] == {"sum": 150.0, "n": 2, "max": 75.0} and data["memory_total_bytes"] == 8 * GIB
    assert data["filesystems"]["/srv"] == {"min_free_percent": 4.0, "avail_bytes": 4 * GIB, "size_bytes": 100 * GIB}
    assert data["filesystems"]["/"]["min_free_percent"] == 40.0
    assert data["failed_services_max"] == 2
    assert data["errors"] == {"collector smart: RuntimeError: smartctl is not installed": 1}
    assert data["os"], "the OS name, read once at start"
    assert data["cycles"] == {"interval": 15.0, "first": NOON, "last": NOON + 15,
                              "longest_gap": {"seconds": 15.0, "from": NOON, "to": NOON + 15}}
    assert "antivirus_active_polls" not in data and "updates_pending_max" not in data, "not measured, not zero"


def test_the_real_collectors_give_the_same_keys(tmp_path, pin_clock) -> None:
    """No stand-ins: this machine's own filesystem, memory and CPU collectors."""
    agent = Agent(load_text(f"agent: {{hostname: {HOST}, data_dir: '{tmp_path / 'data'}'}}\n", source="c.yaml"),
                  listen=f"127.0.0.1:{free_port()}")
    try:
        for at in (NOON, NOON + 15):
            pin_clock(at, running=False)
            agent.collection_jobs()[0].run()
    finally:
        agent.stop()
    state = State(tmp_path / "data" / "state.db")
    try:
        (row,) = host_days(state, "default", DAY, DAY)
    finally:
        state.close()
    assert (row.source, row.polls, row.successes) == ("agent", 2, 2), "stop() wrote what the flush had not"
    assert row.data["memory_total_bytes"] > 0 and 0 <= row.data["memory"]["max"] <= 100
    assert row.data["filesystems"] and all(0 <= slot["min_free_percent"] <= 100
                                           for slot in row.data["filesystems"].values())


def test_a_stopped_agent_is_a_gap_that_counts_against_availability(tmp_path, pin_clock) -> None:
    agent = _agent(tmp_path)
    _cycle(agent, pin_clock, NOON)
    _cycle(agent, pin_clock, NOON + 15)
    agent.stop()  # flushes
    agent = _agent(tmp_path)  # started again ten minutes later, the same day
    try:
        _cycle(agent, pin_clock, NOON + 615)
        agent.history.flush()
        (row,) = _days(agent.state)
    finally:
        agent.stop()
    assert (row.polls, row.successes) == (2 + 40, 3), "39 cycles missed in 10 minutes, then one ran"
    assert row.data["cycles"]["longest_gap"] == {"seconds": 600.0, "from": NOON + 15, "to": NOON + 615}
    assert not_running(row.data) == {"seconds": 600.0, "from": NOON + 15, "to": NOON + 615}
    assert round(100 * row.successes / row.polls, 1) == 7.1


def test_a_gap_over_midnight_and_whole_days_is_spread_over_the_days_it_covers(tmp_path) -> None:
    evening = datetime(2026, 3, 27, 23, 50, tzinfo=ROME).timestamp()
    back = datetime(2026, 3, 30, 0, 10, tzinfo=ROME).timestamp()  # the 29th is 23 hours long (DST)
    state = State(tmp_path / "state.db")
    try:
        with state.transaction() as db:
            record_cycles(db, HOST, "crema", 15.0, [Observation(at=evening), Observation(at=back)])
        rows = {row.day.isoformat(): row for row in _days(state, last=date(2026, 3, 31))}
    finally:
        state.close()
    assert {day: (r.polls, r.successes) for day, r in rows.items()} == {
        "2026-03-27": (1 + 39, 1), "2026-03-28": (24 * 240, 0), "2026-03-29": (23 * 240, 0),
        "2026-03-30": (40 + 1, 1)}
    assert rows["2026-03-28"].data["cycles"]["longest_gap"]["seconds"] == 86400.0
    assert rows["2026-03-29"].data["cycles"]["longest_gap"]["seconds"] == 23 * 3600.0
    assert rows["2026-03-30"].data["cycles"]["first"] == back
    assert "first" not in rows["2026-03-28"].data["cycles"], "no cycle ran that day"


def test_gap_shares_count_each_missed_cycle_once() -> None:
    last = day_start(DAY) - 600
    shares = gap_shares(last, last + 1200, 15.0)
    assert [(s.day, s.missed) for s in shares] == [(DAY - timedelta(days=1), 39), (DAY, 40)]
    assert gap_shares(NOON, NOON + 20, 15.0)[0].missed == 0, "a cycle a few seconds late is not one missed"
    assert gap_shares(NOON, NOON + 23, 15.0)[0].missed == 1
    assert gap_shares(NOON, NOON - 5, 15.0) == [], "a clock set back is no gap"
    oldest = DAY - timedelta(days=3)
    assert gap_shares(NOON - 30 * 86400, NOON, 15.0, oldest)[0].day == oldest


def test_observations_a_flush_could_not_write_are_kept_for_the_next(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    history = AgentHistory(state, MetricCache(), HOST, "crema", 15.0, keep=400, clock=lambda: NOON)
    history.cycle_finished(NOON, [], counted=True)
    history.cycle_finished(NOON + 15, [], counted=True)
    real = state.transaction

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    state.transaction = full  # type: ignore[method-assign]
    with pytest.raises(sqlite3.OperationalError):
        history.flush()
    assert history.pending() == 2
    state.transaction = real  # type: ignore[method-assign]
    try:
        assert history.flush() == 2 and history.pending() == 0
        assert [(r.polls, r.successes) for r in _days(state)] == [(2, 2)]
    finally:
        state.close()


# -- farm rows, through the farm path ----------------------------------------------------------------------

FARM = """
agent: {tenant: crema, hostname: srv-crema}
tenants: {crema: {name: Comune di Crema}, cremona: {name: Comune di Cremona}}
hosts:
  web1: {address: web1.farm.lan, tenant: crema}
  win1:
    address: win1.cremona.lan
    transport: winrm
    tenant: cremona
    winrm: {user: custode, password: {env: CUSTODE_WINRM_PASSWORD}}
  srv-crema: {address: srv-crema.lan, tenant: crema}
"""


def _farm(state: State) -> FarmService:
    return FarmService(load_text(FARM).model, state, Incidents(state))


def test_farm_polls_write_the_same_keys_with_source_farm(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    try:
        farm = _farm(state)
        web1, win1 = (next(t for t in farm.targets if t.name == name) for name in ("web1", "win1"))
        farm.handle([up(web1, linux_snapshot(now=NOON, root_avail=20 * GIB), busy=0.5, at=NOON),
                     up(win1, windows_snapshot(now=NOON), at=NOON)])
        farm.handle([down(web1, "nothing listens on web1:22 (connection refused)", at=NOON + 300)])
        (web,) = _days(state)
        (win,) = _days(state, "cremona")
    finally:
        state.close()
    assert (web.host, web.source, web.polls, web.successes) == ("web1", "farm", 2, 1)
    assert web.data["cpu"] == {"sum": 50.0, "n": 1, "max": 50.0}
    assert web.data["filesystems"]["/"]["min_free_percent"] == 20.0
    assert web.data["errors"] == {"nothing listens on web1:22 (connection refused)": 1}
    assert (win.source, win.data["antivirus_active_polls"], win.data["updates_pending_max"]) == ("farm", 1, 0)
    assert "events_error_max" not in win.data, "the snapshot has no event log: not measured, not zero"
    assert "cycles" not in web.data


def test_one_host_name_watched_twice_does_not_mix_its_rows(tmp_path) -> None:
    """srv-crema is polled by farm mode and is the agent's own hostname: the farm's row stays the farm's."""
    state = State(tmp_path / "state.db")
    try:
        farm = _farm(state)
        target = next(t for t in farm.targets if t.name == HOST)
        farm.handle([up(target, linux_snapshot(now=NOON), at=NOON)])
        history = AgentHistory(state, MetricCache(), HOST, "crema", 15.0, keep=400, clock=lambda: NOON)
        history.cycle_finished(NOON + 15, [], counted=True)
        history.flush()
        (row,) = _days(state)
        with state.transaction() as db:
            assert not store.save(db, dataclasses.replace(row, source=HistorySource.AGENT, polls=99))
        (again,) = _days(state)
    finally:
        state.close()
    assert (row.source, row.polls) == ("farm", 1) and again == row


# -- the migration ---------------------------------------------------------------------------------------

def _migration() -> int:
    """The position of the migration that made host_daily (later ones may follow it)."""
    return next(i for i, script in enumerate(MIGRATIONS) if "RENAME TO host_daily" in script)


def test_the_migration_keeps_every_farm_daily_row(tmp_path) -> None:
    path = tmp_path / "state.db"
    before = _migration()
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:before]:
        for statement in _statements(script):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {before}")
    old = [("web1", "2025-11-02", "crema", 288, 280, '{"os":"Debian GNU/Linux 12","cpu":{"sum":10,"n":2,"max":7}}'),
           ("web1", "2025-11-03", "crema", 288, 288, '{"filesystems":{"/":{"min_free_percent":12.5}}}'),
           ("db1", "2025-11-02", "cremona", 100, 0, '{"errors":{"refused":100}}')]
    db.executemany("INSERT INTO farm_daily(host, day, tenant, polls, successes, data) VALUES (?, ?, ?, ?, ?, ?)", old)
    db.commit()
    db.close()
    state = State(path)
    try:
        assert state.schema_version == len(MIGRATIONS)
        tables = {r["name"] for r in state.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        assert "farm_daily" not in tables and {"host_daily", "host_daily_by_tenant"} <= tables
        rows = host_days(state, "crema", date(2025, 11, 1), date(2025, 11, 30))
        cremona = host_days(state, "cremona", date(2025, 11, 1), date(2025, 11, 30))
    finally:
        state.close()
    assert [(r.host, r.day.isoformat(), r.source, r.polls, r.successes) for r in rows] == [
        ("web1", "2025-11-02", "farm", 288, 280), ("web1", "2025-11-03", "farm", 288, 288)]
    assert rows[0].data["cpu"] == {"sum": 10, "n": 2, "max": 7}
    assert [(r.host, r.data) for r in cremona] == [("db1", {"errors": {"refused": 100}})]


# -- retention -------------------------------------------------------------------------------------------

def _row(host: str, day: date, source: HistorySource = HistorySource.FARM) -> HostDay:
    return HostDay(host, day, "crema", source, 1, 1, {})


def test_rows_older_than_400_days_go_once_a_day_whoever_wrote_them(tmp_path, pin_clock) -> None:
    agent = _agent(tmp_path)
    try:
        with agent.state.transaction() as db:
            for back in (401, 400, 399, 0):
                store.save(db, _row("web1", DAY - timedelta(days=back)))
                store.save(db, _row(HOST, DAY - timedelta(days=back), HistorySource.AGENT))
        pin_clock(NOON, running=False)
        agent.prune_history()  # the agent's daily job
        kept = sorted({(r.day, r.source) for r in _days(agent.state, first=date(2020, 1, 1))})
    finally:
        agent.stop()
    assert kept == [(DAY - timedelta(days=back), source) for back in (400, 399, 0) for source in ("agent", "farm")]


def test_retention_is_the_longer_of_history_days_and_farm_history_days(tmp_path) -> None:
    assert keep_days(load_text("").model) == 400
    assert keep_days(load_text("farm: {history_days: 500}\n").model) == 500
    assert keep_days(load_text("history: {days: 730}\nfarm: {history_days: 500}\n").model) == 730
    state = State(tmp_path / "state.db")
    try:
        with state.transaction() as db:
            store.save(db, _row("web1", DAY - timedelta(days=450)))
        assert prune(state, 500, NOON) == 0 and prune(state, 400, NOON) == 1
    finally:
        state.close()


# -- the read API ----------------------------------------------------------------------------------------

def test_host_days_reads_one_tenant_by_host_and_day_from_a_state_or_a_transaction(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    try:
        with state.transaction() as db:
            for host, back in (("web2", 0), ("web1", 1), ("web1", 0), ("web1", 5), (HOST, 0)):
                store.save(db, HostDay(host, DAY - timedelta(days=back), "crema",
                                       HistorySource.AGENT if host == HOST else HistorySource.FARM, 10, 9,
                                       {"os": host}))
            store.save(db, HostDay("db1", DAY, "cremona", HistorySource.FARM, 1, 0, {}))
            inside = host_days(db, "crema", DAY - timedelta(days=1), DAY)
        outside = host_days(state, "crema", DAY - timedelta(days=1), DAY)
    finally:
        state.close()
    assert inside == outside
    assert [(r.host, r.day, r.source) for r in outside] == [
        ("srv-crema", DAY, "agent"), ("web1", DAY - timedelta(days=1), "farm"), ("web1", DAY, "farm"),
        ("web2", DAY, "farm")]
    assert outside[0] == HostDay("srv-crema", DAY, "crema", "agent", 10, 9, {"os": "srv-crema"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        outside[0].polls = 1  # type: ignore[misc]


# -- custode farm report -----------------------------------------------------------------------------------

def test_the_farm_report_shows_agent_hosts_when_asked(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    try:
        with state.transaction() as db:
            record_cycles(db, HOST, "crema", 15.0, [Observation(at=NOON), Observation(at=NOON + 3615)])
        farm = _farm(state)
        farm.handle([up(next(t for t in farm.targets if t.name == "web1"), linux_snapshot(now=NOON), at=NOON)])
        default = summarise(state, DAY, DAY)
        both = summarise(state, DAY, DAY, sources=tuple(HistorySource))
    finally:
        state.close()
    assert [y.host for y in default] == ["web1"], "the polled hosts, as before"
    agent_year = next(y for y in both if y.source == "agent")
    assert (agent_year.host, agent_year.agent_not_running_hours) == (HOST, 1.0)
    assert agent_year.agent_longest_gap == "1.0h from 2026-03-10 12:00"
    assert agent_year.availability_percent == round(100 * 2 / 242, 2)
    text = render(both, "table")
    assert "AGENT NOT RUNNING" in text and "1h (longest 1.0h from 2026-03-10 12:00)" in text
    assert "AGENT NOT RUNNING" not in render(default, "table")
    assert render(both, "csv").splitlines()[0].endswith(",source,agent_not_running_hours,agent_longest_gap")
