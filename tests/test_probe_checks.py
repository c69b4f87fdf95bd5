"""Probes judged into incidents (down after N, slow, certificate), recorded per day, surviving a restart."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ManualClock, wait_until
from probe_servers import PortalServer, SilentServer, closed_port
from store_sql import without_migrations

from custode.agent.blackbox import store
from custode.agent.blackbox.checks import when
from custode.agent.blackbox.probers import run_probe
from custode.agent.blackbox.service import ProbeService
from custode.agent.blackbox.target import targets_of
from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.state import State

ROOT = Path(__file__).resolve().parents[1]
WHEN = r"\d\d/\d\d/\d{4} \d\d:\d\d [+-]\d\d:\d\d"
DAY = 86400.0


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with PortalServer(tmp_path_factory.mktemp("portal"), days=10) as server:
        yield server


def config_text(portal: PortalServer, extra: str = "", tenant_extra: str = "") -> str:
    return f"""
tenants:
  sassuolo: {{name: Comune di Sassuolo{tenant_extra}}}
profiles:
  MINIMAL: {{features: [backup_control]}}
probes:
  slow: 0.1s
  targets:
    portale:
      tenant: sassuolo
      url: {portal.url()}
      labels: {{service: portale}}
      http: {{ca_file: {portal.ca_file}, body: Comune di Sassuolo}}
    errore:
      tenant: sassuolo
      url: {portal.url('/error')}
      http: {{ca_file: {portal.ca_file}}}
    lento:
      tenant: sassuolo
      url: {portal.url('/slow')}
      http: {{ca_file: {portal.ca_file}}}
{extra}"""


class World:
    """A state DB, incidents and a cache on a manual clock, and the service built from a config."""

    def __init__(self, folder: Path, text: str) -> None:
        self.folder = folder
        self.clock = ManualClock(time.time())
        self.state = State(folder / "state.db")
        self.incidents = Incidents(self.state, clock=self.clock)
        self.cache = MetricCache()
        self.reload(text)

    def reload(self, text: str) -> None:
        self.config = load_text(text).model
        self.service = ProbeService(self.config, self.state, self.incidents, self.cache, clock=self.clock)
        self.targets = {t.name: t for t in self.service.targets}

    def probe(self, *names: str, minutes: float = 1.0) -> None:
        results = [run_probe(self.targets[name], self.clock) for name in names]
        self.service.handle(results)
        self.clock.now += minutes * 60

    def open(self, check: str | None = None) -> dict[str, object]:
        return {i.key: i for i in self.incidents.open_incidents() if check is None or i.check == check}

    def close(self) -> None:
        self.service.close()
        self.state.close()


@pytest.fixture
def world(tmp_path, portal):
    made = World(tmp_path, config_text(portal))
    yield made
    made.close()


def test_down_after_three_failures_in_a_row_with_a_summary_a_clerk_reads(world, portal) -> None:
    first = world.clock.now
    world.probe("errore")
    world.probe("errore")
    assert "sassuolo/probe/errore" not in world.open()
    pending = world.state.query("SELECT summary FROM check_states WHERE key = 'sassuolo/probe/errore'")[0]["summary"]
    assert pending == (f"{portal.url('/error')} failed 2 probes in a row (3 in a row make it down): status 500 not in "
                       f"200-299 (since {when(first)})")
    world.probe("errore")
    incident = world.open()["sassuolo/probe/errore"]
    assert incident.severity == "critical" and incident.target == "errore"
    assert incident.summary == (f"{portal.url('/error')} is down: status 500 not in 200-299 "
                                f"(3 probes in a row since {when(first)})")
    assert re.fullmatch(WHEN, when(first))
    assert when(datetime(2026, 12, 7, 10, 2, tzinfo=ROME).timestamp()) == "07/12/2026 10:02 +01:00"
    assert when(datetime(2026, 7, 7, 10, 2, tzinfo=ROME).timestamp()) == "07/07/2026 10:02 +02:00"
    assert incident.details["failures"] == 3 and incident.details["url"] == portal.url("/error")


def test_a_success_resolves_the_outage_and_restarts_the_count(world, portal) -> None:
    for _ in range(3):
        world.probe("errore")
    assert "sassuolo/probe/errore" in world.open()
    fixed = world.targets["errore"]
    from dataclasses import replace

    world.targets["errore"] = replace(fixed, where=replace(fixed.where, url=portal.url("/")))
    world.probe("errore")
    assert "sassuolo/probe/errore" not in world.open()
    assert world.service.states["errore"].consecutive_failures == 0
    assert world.service.states["errore"].failing_since is None


def test_a_restart_keeps_the_failures_in_a_row(tmp_path, portal) -> None:
    made = World(tmp_path, config_text(portal))
    try:
        made.probe("errore")
        made.probe("errore")
        made.reload(config_text(portal))  # a new service on the same state DB: the agent restarted
        assert made.service.states["errore"].consecutive_failures == 2
        since = made.service.states["errore"].failing_since
        made.probe("errore")
        assert since is not None and made.service.states["errore"].failing_since == since
        assert made.open()["sassuolo/probe/errore"].summary.endswith(f"(3 probes in a row since {when(since)})")
    finally:
        made.close()


def test_slow_three_times_in_a_row_is_a_warning(world, portal) -> None:
    world.probe("lento")
    world.probe("lento")
    assert not world.open("probe_latency")
    world.probe("lento")
    incident = world.open("probe_latency")["sassuolo/probe_latency/lento"]
    assert incident.severity == "warning"
    assert re.fullmatch(re.escape(portal.url("/slow")) + r" is slow: 3 probes in a row took over 0\.1 s since "
                        + WHEN + r", the last 0\.3\d* s", incident.summary), incident.summary
    assert "sassuolo/probe/lento" not in world.open()


def test_a_certificate_ending_in_ten_days_is_a_warning(world, portal) -> None:
    world.probe("portale")
    incident = world.open("certificate")["sassuolo/certificate/portale"]
    assert incident.severity == "warning"
    assert incident.summary == (f"the certificate of 127.0.0.1 ends on {when(portal.not_after)}, in 10 days "
                                f"({portal.url()}): renew it before 7 days are left")
    world.clock.now = portal.not_after - 3 * DAY  # the same certificate three days before its end
    world.probe("portale")
    assert world.open("certificate")["sassuolo/certificate/portale"].severity == "critical"
    assert "in 3 days" in world.open("certificate")["sassuolo/certificate/portale"].summary
    assert "sassuolo/probe/portale" not in world.open()


def test_a_tenant_without_monitoring_gets_no_probe_incidents(tmp_path, portal) -> None:
    made = World(tmp_path, config_text(portal, tenant_extra=", profile: MINIMAL"))
    try:
        for _ in range(3):
            made.probe("errore", "portale")
        assert not made.open()
        summary = made.state.query("SELECT summary FROM check_states WHERE key = 'sassuolo/probe/errore'")[0]
        assert summary["summary"] == (f"{portal.url('/error')} is not judged: the service profile MINIMAL of "
                                      "sassuolo has no monitoring")
        assert made.service.states["errore"].consecutive_failures == 3  # still recorded
    finally:
        made.close()


def test_daily_rows_count_probes_successes_slow_and_errors_by_reason(world, portal) -> None:
    day = store.day_of(world.clock.now)
    world.probe("errore", "portale", "lento")
    world.probe("errore", "portale")
    rows = {row.probe: row for row in store.probe_days(world.state, "sassuolo", day, day + timedelta(days=1))}
    assert rows["errore"].probes == 2 and rows["errore"].successes == 0
    assert rows["errore"].errors == {"status 500 not in 200-299": 2}
    assert rows["errore"].availability == 0.0
    assert rows["portale"].availability == 1.0 and rows["portale"].cert_expiry == pytest.approx(portal.not_after, abs=1)
    assert rows["lento"].slow == 1 and rows["lento"].duration_max >= 0.3
    assert rows["portale"].target == portal.url() and rows["portale"].kind == "http"
    assert rows["portale"].first_at is not None and rows["portale"].last_at >= rows["portale"].first_at
    assert store.probe_days(world.state, "capannori", day, day) == []
    assert len(store.probe_days(world.state, None, day, day)) == 3


def test_prune_forgets_removed_probes_resolves_their_incidents_and_drops_old_days(world, portal) -> None:
    for _ in range(3):
        world.probe("errore")
    assert "sassuolo/probe/errore" in world.open()
    with world.state.transaction() as db:  # a row older than history.days (400)
        db.execute("INSERT INTO probe_daily (day, probe, tenant, kind, target) VALUES (?, 'vecchio', 'sassuolo', "
                   "'http', 'https://x/')", ((store.day_of(world.clock.now) - timedelta(days=401)).isoformat(),))
    text = config_text(portal).replace("    errore:\n", "    errore:\n      enabled: false\n")
    world.reload(text)
    world.service.prune()
    assert "sassuolo/probe/errore" not in world.open()
    assert "errore" not in store.probe_states(world.state)
    assert [d.probe for d in store.probe_days(world.state, "sassuolo", date(2000, 1, 1), date(2100, 1, 1))] == \
        ["errore"]  # today's row stays; the 401-day-old one went


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def test_metrics_are_published_with_blackbox_names_and_the_targets_labels(world, portal) -> None:
    for _ in range(3):
        world.probe("errore", "portale")
    text = world.cache.exposition.plain.decode()
    found = samples(text)

    def value(name: str, **labels: str) -> float:
        hits = [v for n, got, v in found if n == name and all(got.get(k) == w for k, w in labels.items())]
        assert len(hits) == 1, (name, labels, hits)
        return hits[0]

    portale = {"tenant": "sassuolo", "probe": "portale", "target": portal.url(), "kind": "http", "service": "portale"}
    assert value("probe_success", **portale) == 1
    assert value("probe_http_duration_seconds", phase="tls", **portale) > 0
    assert value("probe_ssl_earliest_cert_expiry", **portale) == pytest.approx(portal.not_after, abs=1)
    assert value("probe_tls_version_info", version="TLS 1.3", **portale) == 1
    assert value("custode_probe_last_success_timestamp_seconds", **portale) > 0
    errore = {"tenant": "sassuolo", "probe": "errore", "target": portal.url("/error"), "kind": "http"}
    assert value("probe_success", **errore) == 0
    assert value("probe_http_status_code", **errore) == 500
    assert value("custode_probe_consecutive_failures", **errore) == 3
    assert value("custode_probe_last_error_info", error="status 500 not in 200-299", **errore) == 1
    assert not [labels for name, labels, _ in found
                if name == "custode_probe_last_success_timestamp_seconds" and labels["probe"] == "errore"]
    assert text.count("# TYPE probe_success gauge") == 1


def test_the_tick_runs_due_probes_on_a_bounded_pool_and_a_hanging_one_blocks_nobody(tmp_path, portal) -> None:
    with SilentServer() as silent:
        extra = f"""    muto:
      tenant: sassuolo
      url: http://127.0.0.1:{silent.port}/
      timeout: 1s
      interval: 5s
    chiuso:
      tenant: sassuolo
      url: tcp://127.0.0.1:{closed_port()}
"""
        made = World(tmp_path, config_text(portal, extra).replace("  slow: 0.1s\n", "  slow: 0.1s\n  workers: 2\n"))
        try:
            handled = []
            assert wait_until(lambda: handled.extend(made.service.tick()) or {r.target.name for r in handled}
                              >= {"portale", "errore", "chiuso", "lento"}, 5)
            assert "muto" not in {r.target.name for r in handled}  # the others came while it still hung on its worker
            assert wait_until(lambda: handled.extend(made.service.tick()) or "muto" in {r.target.name for r in handled},
                              3)
            muto = next(r for r in handled if r.target.name == "muto")
            assert muto.error == "no answer within 1 s"
            assert not made.service.tick()  # nothing due again before its interval (the manual clock stood still)
            made.clock.now += 61
            again: list = []
            assert wait_until(lambda: again.extend(made.service.tick()) or len(again) == 5, 5)
            assert made.service.states["portale"].last_probe_at == made.clock.now
        finally:
            made.close()


def test_the_probe_tables_are_queried_by_the_probe_store_only() -> None:
    pattern = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(?:probe_targets|probe_daily)\b")
    offenders = []
    for path in sorted([*(ROOT / "agent").rglob("*.py"), *(ROOT / "collectors").rglob("*.py")]):
        if path == ROOT / "agent/blackbox/store.py":
            continue
        source = without_migrations(path) if path == ROOT / "agent/state.py" else path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(source)]
    assert not offenders
    found = {m.group(0).split()[-1] for m in pattern.finditer((ROOT / "agent/blackbox/store.py").read_text())}
    assert found == {"probe_targets", "probe_daily"}


def test_the_service_is_built_only_for_a_config_with_targets(tmp_path, portal) -> None:
    from custode.agent.services import Context, build_services

    def names(text: str) -> list[str]:
        state = State(tmp_path / f"s{len(text)}.db")
        try:
            return [s.name for s in build_services(Context(load_text(text), state, Incidents(state), MetricCache(),
                                                           lambda *record: None))]
        finally:
            state.close()

    assert "probes" not in names("")
    assert "probes" in names(config_text(portal))
    assert "probes" not in names(config_text(portal) + "  enabled: false\n")
    assert [t.name for t in targets_of(load_text(config_text(portal)).model)] == ["errore", "lento", "portale"]


def test_an_update_window_on_the_host_a_probe_runs_on_opens_no_incident(tmp_path, portal) -> None:
    from custode.agent.updates.store import NewRun, UpdateStore

    host = """hosts:
  web-sassuolo: {address: 10.20.0.5, transport: ssh, tenant: sassuolo, ssh: {user: custode}}
"""
    text = config_text(portal).replace("      url: " + portal.url('/error') + "\n",
                                       "      url: " + portal.url('/error') + "\n      runs_on: [web-sassuolo]\n")
    made = World(tmp_path, host + text)
    try:
        assert made.targets["errore"].runs_on == ("web-sassuolo",)
        updates = UpdateStore(made.state)
        now = made.clock.now
        run_id = updates.begin(NewRun("portale", "Portale", "sassuolo", "scheduled", None, "x", now, now + 3600,
                                      [("sassuolo", "web-sassuolo"), ("sassuolo", "10.20.0.5")], now + 4500), now)
        for _ in range(4):
            made.probe("errore", "lento")
        assert "sassuolo/probe/errore" not in made.open(), "the vendor's update took the portal down on purpose"
        assert made.service.states["errore"].consecutive_failures == 4, "the failures are still counted"
        updates.finish(run_id, "succeeded", "ok", made.clock.now)
        made.probe("errore")
        assert made.open()["sassuolo/probe/errore"].severity == "critical", "after the window it is an outage"
    finally:
        made.close()
