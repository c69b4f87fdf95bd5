"""Per-tenant OS patch policy: rounds (Vaiano: March and October) instead of the 45/90-day age limits.

Every judgement gets its ``now`` from the test: the dates below are judged at
their own time of year, never at the day the suite runs.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from farm_helpers import down, linux_snapshot, linux_target, up, windows_snapshot, windows_target

from custode.agent.calendar import ROME
from custode.agent.config import ChecksSection
from custode.agent.config_loader import ConfigError, load_text
from custode.agent.farm.checks import farm_evaluations
from custode.agent.farm.config import FarmChecks
from custode.agent.farm.service import FarmService
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache, samples
from custode.agent.patch_policy import DUE_METRIC, PatchPolicy, judge, next_round, round_due_families, summary
from custode.agent.state import State

DAY = 86400.0
VAIANO = PatchPolicy(months=[3, 10])
PENDING = "14 pending (3 security)"


def at(*parts: int) -> float:
    """A Europe/Rome wall time as Unix time: the contracts' months are Italian months."""
    return datetime(*parts, tzinfo=ROME).timestamp()


def level(now: float, last: float, policy: PatchPolicy = VAIANO, pending: int = 14) -> str:
    return judge(now, policy, last, pending).severity


# -- the rule -----------------------------------------------------------------------------------------------

def test_a_missed_round_is_a_warning_in_the_clerks_words() -> None:
    now, last = at(2026, 5, 15), at(2026, 1, 12)  # had October 2025, not March 2026
    verdict = judge(now, VAIANO, last, 14)
    assert verdict.severity == "warning" and verdict.missed == 1
    assert summary("srv1", VAIANO, verdict, last, PENDING) == (
        "OS patches are due twice a year (March, October); the March 2026 round was not installed on srv1 "
        "(last update 12/01/2026); 14 pending (3 security)")


def test_missing_two_rounds_in_a_row_is_critical() -> None:
    now, last = at(2026, 5, 15), at(2025, 6, 20)  # older than the October 2025 round too
    verdict = judge(now, VAIANO, last, 14)
    assert verdict.severity == "critical" and verdict.missed == 2
    assert summary("srv1", VAIANO, verdict, last, PENDING) == (
        "OS patches are due twice a year (March, October); neither the October 2025 nor the March 2026 round was "
        "installed on srv1 (last update 20/06/2025); 14 pending (3 security)")


def test_once_a_year_critical_after_two_missed_years() -> None:
    yearly = PatchPolicy(months=[3])
    now = at(2026, 6, 1)
    assert level(now, at(2026, 3, 20), yearly) == "ok"
    assert level(now, at(2025, 3, 20), yearly) == "warning"  # had 2025's, not 2026's
    verdict = judge(now, yearly, at(2024, 11, 1), 2)
    assert (verdict.severity, verdict.previous.name, verdict.judged.name) == ("critical", "March 2025", "March 2026")
    assert summary("srv1", yearly, verdict, at(2024, 11, 1), "2 pending").startswith(
        "OS patches are due once a year (March); neither the March 2025 nor the March 2026 round was installed")


def test_between_rounds_pending_updates_are_no_fault() -> None:
    last = at(2026, 3, 18)  # the March round done; 200 days later updates pile up until October's
    verdict = judge(at(2026, 10, 20), VAIANO, last, 40)
    assert verdict.severity == "ok"
    assert summary("srv1", VAIANO, verdict, last, "40 pending") == (
        "OS patches are due twice a year (March, October); srv1 has the March 2026 round (last update 18/03/2026); "
        "40 pending; next round October 2026, due by 30/11/2026")


def test_nothing_pending_is_fine_even_after_missed_rounds() -> None:
    last = at(2024, 1, 10)
    verdict = judge(at(2026, 5, 15), VAIANO, last, 0)
    assert verdict.severity == "ok" and verdict.missed == 2
    assert "srv1 is up to date (last update 10/01/2024); 0 pending" in summary("srv1", VAIANO, verdict, last,
                                                                            "0 pending")


def test_the_grace_edge() -> None:
    """March's round is due at the end of March plus 30 days: 1 May 00:00, Rome."""
    last = at(2025, 12, 1)  # has October 2025, not March 2026
    assert level(at(2026, 4, 30, 23, 59, 59), last) == "ok"
    assert level(at(2026, 5, 1), last) == "warning"
    short = PatchPolicy(months=[3, 10], grace="10d")
    assert level(at(2026, 4, 10, 23, 59), last, short) == "ok"
    assert level(at(2026, 4, 11), last, short) == "warning"


def test_patched_in_february_counts_for_the_march_round() -> None:
    """'About March': the work may start in late February, with February's cumulative update."""
    now = at(2026, 6, 1)
    assert level(now, at(2026, 2, 10)) == "ok"
    assert level(now, at(2026, 1, 30)) == "ok"  # 1 March minus early (30d) = 30 January 00:00
    assert level(now, at(2026, 1, 29, 23, 59)) == "warning"
    assert level(now, at(2026, 2, 20), PatchPolicy(months=[3, 10], early="7d")) == "warning"
    verdict = judge(now, VAIANO, at(2026, 2, 10), 3)
    assert "srv1 has the March 2026 round" in summary("srv1", VAIANO, verdict, at(2026, 2, 10), "3 pending")


def test_across_the_year_boundary() -> None:
    # January: the round judged is the October before, and the one before that is March of the same year
    verdict = judge(at(2027, 1, 10), VAIANO, at(2026, 3, 20), 5)
    assert (verdict.judged.name, verdict.previous.name, verdict.severity) == ("October 2026", "March 2026", "warning")
    assert level(at(2027, 1, 10), at(2026, 1, 20)) == "critical"
    # a December round is due in the new year: the end of December plus 30 days is 31 January 00:00
    winter = PatchPolicy(months=[6, 12])
    last = at(2026, 10, 5)  # has June 2026, not December 2026 (which counts from 1 November)
    assert level(at(2027, 1, 30, 23, 59), last, winter) == "ok"
    assert level(at(2027, 1, 31), last, winter) == "warning"
    assert next_round(winter, at(2027, 1, 10)).due_day == "30/01/2027"
    # an install in December counts for a January round (early tolerance over the new year)
    january = PatchPolicy(months=[1, 7])
    assert level(at(2027, 3, 10), at(2026, 12, 15), january) == "ok"  # January 2027 due 3 March
    assert level(at(2027, 3, 10), at(2026, 11, 15), january) == "warning"


def test_next_round_due_for_grafana() -> None:
    assert next_round(VAIANO, at(2026, 5, 15)).due == datetime(2026, 12, 1, tzinfo=ROME)  # October + 30 days
    assert next_round(VAIANO, at(2026, 4, 15)).due == datetime(2026, 5, 1, tzinfo=ROME)  # March, still running
    families = round_due_families({"vaiano": VAIANO, "crema": None, "cremona": PatchPolicy()}, at(2027, 1, 10))
    assert samples(families, DUE_METRIC) == [({"tenant": "vaiano"}, at(2027, 5, 1))]
    assert round_due_families({"crema": None}, at(2027, 1, 10)) == []  # no empty family without a policy


# -- the config ----------------------------------------------------------------------------------------------

def _tenant_policy(text: str) -> str:
    return f"tenants:\n  vaiano:\n    name: Comune di Vaiano Cremasco\n    patch_policy: {text}\n"


def test_months_are_sorted_and_durations_read() -> None:
    policy = load_text(_tenant_policy("{months: [10, 3], grace: 6w, early: 2w}")).model.tenants["vaiano"].patch_policy
    assert policy is not None
    assert (policy.months, policy.grace, policy.early) == ([3, 10], 42 * DAY, 14 * DAY)
    assert PatchPolicy().continuous and not policy.continuous


@pytest.mark.parametrize("text, place, message", [
    ("{months: [3, 13]}", "tenants.vaiano.patch_policy.months",
     "13 is not a month: write each patch month as a number from 1 (January) to 12 (December), "
     "e.g. months: [3, 10] for March and October"),
    ("{months: [0, 6]}", "tenants.vaiano.patch_policy.months", "0 is not a month"),
    ("{months: [3, 10, 3]}", "tenants.vaiano.patch_policy.months",
     "month 3 (March) is listed twice: list each patch month once"),
    ("{months: [3, 4]}", "tenants.vaiano.patch_policy",
     "the March and April rounds overlap"),
    ("{months: [3, 5], grace: 20d, early: 20d}", "tenants.vaiano.patch_policy",
     "lower early or grace, or list fewer months"),
    ("{months: [3, 10], every: 6}", "tenants.vaiano.patch_policy.every", "valid keys here: early, grace, months"),
])
def test_bad_policies_name_the_place_and_the_fix(text: str, place: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(_tenant_policy(text))
    assert f":4: {place}: " in str(caught.value) and message in str(caught.value)


def test_rounds_a_month_apart_fit_with_short_tolerances() -> None:
    assert PatchPolicy(months=[3, 5], grace="14d", early="14d").months == [3, 5]


# -- through the farm check ----------------------------------------------------------------------------------

def _os_updates(now: float, policy: PatchPolicy | None, last: float, pending: int = 14):
    snap = windows_snapshot(now=now, pending=pending, last_update_days=(now - last) / DAY)
    evaluations = farm_evaluations(ChecksSection(), FarmChecks(), up(windows_target("srv1", "vaiano"), snap, at=now),
                                   0, now, policy)
    return next(e for e in evaluations if e.check == "os_updates").results[0]


@pytest.mark.parametrize("policy", [None, PatchPolicy()])
def test_without_a_policy_the_age_limits_judge_unchanged(policy: PatchPolicy | None) -> None:
    now = at(2026, 5, 15, 12)
    assert _os_updates(now, policy, now - 30 * DAY).severity == "ok"
    assert _os_updates(now, policy, now - 60 * DAY).severity == "warning"
    result = _os_updates(now, policy, now - 120 * DAY)
    assert result.severity == "critical"
    assert result.summary == ("no update installed on srv1 for 120 days (last on 15/01/2026); 14 pending "
                              "(5 security)")
    assert _os_updates(now, policy, now - 200 * DAY, pending=0).severity == "ok"
    assert "patch_round" not in result.details


def test_the_farm_check_under_a_policy_keeps_its_details() -> None:
    now, last = at(2026, 5, 15), at(2026, 1, 12)
    result = _os_updates(now, VAIANO, last)
    assert result.severity == "warning"  # 123 days: critical by the age limits
    assert result.target == "srv1:updates"
    assert result.details == {"host": "srv1", "pending": 14, "security": 5, "last_installed": last,
                              "patch_months": [3, 10], "patch_round": "2026-03", "missed_rounds": 1,
                              "next_round": "2026-10", "next_round_due": at(2026, 12, 1)}


def test_titles_are_named_when_the_round_was_missed() -> None:
    now = at(2026, 5, 15)
    snap = linux_snapshot(now=now, pending=3, last_update_days=(now - at(2026, 1, 12)) / DAY)
    evaluations = farm_evaluations(ChecksSection(), FarmChecks(), up(linux_target("db1", "vaiano"), snap, at=now),
                                   0, now, VAIANO)
    text = next(e for e in evaluations if e.check == "os_updates").results[0].summary
    assert text.endswith("the March 2026 round was not installed on db1 (last update 12/01/2026); 3 pending, "
                         "e.g. pkg0; pkg1; pkg2")


# -- the real path: config, FarmService, incidents, metrics --------------------------------------------------

FARM = """
agent: {tenant: consorzio}
tenants:
  consorzio: {name: Consorzio.IT}
  vaiano:
    name: Comune di Vaiano Cremasco
    patch_policy: {months: [3, 10]}
  crema: {name: Comune di Crema}
hosts:
  srv1:
    address: srv1.vaiano.lan
    transport: winrm
    tenant: vaiano
    winrm: {user: custode, password: {env: CUSTODE_WINRM_PASSWORD}}
  srv2:
    address: srv2.crema.lan
    transport: winrm
    tenant: crema
    winrm: {user: custode, password: {env: CUSTODE_WINRM_PASSWORD}}
"""


def _farm_at(tmp_path, now: float):
    state = State(tmp_path / "state.db")
    service = FarmService(load_text(FARM).model, state, Incidents(state), MetricCache(), clock=lambda: now)
    return service, state


def _poll(service: FarmService, now: float, last: float, pending: int = 14) -> dict[str, tuple[str, str]]:
    snap = windows_snapshot(now=now, pending=pending, last_update_days=(now - last) / DAY)
    service.handle([up(t, snap, at=now) for t in service.targets])
    return {i.key: (i.severity, i.summary) for i in service.incidents.open_incidents() if i.check == "os_updates"}


def test_farm_service_judges_each_tenant_by_its_own_policy(tmp_path, pin_clock) -> None:
    now, last = at(2026, 5, 15, 9, 0), at(2026, 1, 12, 3, 0)
    pin_clock(now, running=False)
    service, state = _farm_at(tmp_path, now)
    try:
        opened = _poll(service, now, last)
        assert opened["vaiano/os_updates/srv1:updates"] == (
            "warning", "OS patches are due twice a year (March, October); the March 2026 round was not installed "
                       "on srv1 (last update 12/01/2026); 14 pending (5 security)")
        severity, text = opened["crema/os_updates/srv2:updates"]  # no policy: 123 days is past critical_age
        assert severity == "critical" and text.startswith("no update installed on srv2 for 123 days")
        due = samples(service.cache.families("os_patch_rounds"), DUE_METRIC)
        assert due == [({"tenant": "vaiano"}, at(2026, 12, 1))]
        assert DUE_METRIC in service.cache.exposition.plain.decode()
    finally:
        state.close()


def test_farm_service_lets_vaiano_wait_for_its_round(tmp_path, pin_clock) -> None:
    now = at(2026, 4, 20, 9, 0)  # March's round still running (grace until 30 April)
    pin_clock(now, running=False)
    service, state = _farm_at(tmp_path, now)
    try:
        opened = _poll(service, now, now - 100 * DAY)  # 10/01/2026: October 2025 done
        assert "vaiano/os_updates/srv1:updates" not in opened
        assert opened["crema/os_updates/srv2:updates"][0] == "critical"
        service.handle([down(t, at=now) for t in service.targets])  # an unreachable host changes nothing here
        assert "vaiano/os_updates/srv1:updates" not in {i.key for i in service.incidents.open_incidents()}
    finally:
        state.close()
