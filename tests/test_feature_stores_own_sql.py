"""Update windows, restore tests and host history: each feature's tables are queried by its store only, and its
states are StrEnums.

The ticket tables have their own test (test_ticket_store_owns_sql.py). ``silences``
is left out: the update store writes it, but it is the incidents' silence list
and agent/incidents.py reads it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest
from store_sql import without_migrations

from custode.agent.history.model import HistorySource
from custode.agent.reports.store import ErrorStage, OutboxStatus, ReportKind, ReportTrigger
from custode.agent.restore.model import (
    CHECKED_RESULTS,
    FAILED_RESULTS,
    VERIFIED_RESULTS,
    CoverageKind,
    FileResult,
    RestoreTrigger,
)
from custode.agent.state import State
from custode.agent.updates.states import (
    FINISHED_RUN_STATUSES,
    NoticeKind,
    NoticeStatus,
    Phase,
    RunStatus,
    RunTrigger,
    StepStatus,
)

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "agent" / "state.py"
STORES = {
    "agent/updates/store.py": ("update_runs", "update_steps", "update_locks"),
    "agent/updates/notice_store.py": ("update_notices",),
    "agent/restore/store.py": ("restore_tests", "coverage_items", "coverage_runs"),
    "agent/history/store.py": ("host_daily",),
    "agent/reports/store.py": ("report_outbox",),
    "agent/blackbox/store.py": ("probe_targets", "probe_daily"),
    "agent/snmp/store.py": ("snmp_devices",),
}
CHECKED_COLUMNS = {("update_runs", "trigger"): RunTrigger, ("update_runs", "status"): RunStatus,
                   ("update_steps", "phase"): Phase, ("update_steps", "status"): StepStatus,
                   ("update_notices", "kind"): NoticeKind, ("update_notices", "status"): NoticeStatus}


def _sql_on(tables: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(?:" + "|".join(tables) + r")\b")



@pytest.mark.parametrize("store", sorted(STORES))
def test_only_the_feature_store_has_sql_on_its_tables(store: str) -> None:
    pattern = _sql_on(STORES[store])
    offenders = []
    for path in sorted([*(ROOT / "agent").rglob("*.py"), *(ROOT / "collectors").rglob("*.py")]):
        if path == ROOT / store:
            continue
        source = without_migrations(path) if path == STATE else path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                      for m in pattern.finditer(source)]
    assert not offenders, f"SQL on {', '.join(STORES[store])} outside {store}:\n" + "\n".join(offenders)
    found = {m.group(0).split()[-1] for m in pattern.finditer((ROOT / store).read_text(encoding="utf-8"))}
    assert found == set(STORES[store]), "the pattern no longer finds the store's own statements"


@pytest.mark.parametrize("store", ["agent/updates/store.py", "agent/updates/notice_store.py",
                                   "agent/reports/store.py"])
def test_the_update_stores_bind_their_states(store: str) -> None:
    """States reach the update stores' SQL as parameters (the StrEnums), never as quoted words."""
    source = (ROOT / store).read_text(encoding="utf-8")
    assert not re.findall(r"\b(?:status|phase|trigger|kind)\s*(?:=|!=|<>|IN)\s*\(?\s*'", source)
    assert not re.findall(r"VALUES\s*\([^)]*'", source)


def _values(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def test_the_update_check_constraints_allow_exactly_the_enum_values(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    try:
        schema = {row["name"]: row["sql"] for row in state.query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('update_runs', 'update_steps', "
            "'update_notices')")}
    finally:
        state.close()
    for (table, column), enum in CHECKED_COLUMNS.items():
        checks = re.findall(rf"\b{column}\b[^,]*?CHECK\s*\(\s*{column}\s+IN\s*\(([^)]*)\)\s*\)", schema[table])
        assert len(checks) == 1, f"{table}.{column}: expected one CHECK ({column} IN (...)) constraint"
        assert set(re.findall(r"'([^']*)'", checks[0])) == _values(enum), f"{table}.{column} vs {enum.__name__}"
    assert set(FINISHED_RUN_STATUSES) == _values(RunStatus) - {RunStatus.RUNNING}


def test_the_host_history_source_constraint_allows_exactly_the_enum_values(tmp_path) -> None:
    """``host_daily.source`` (migration 11, an added column) holds the HistorySource words and no other."""
    state = State(tmp_path / "state.db")
    try:
        schema = state.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'host_daily'")[0]["sql"]
    finally:
        state.close()
    checks = re.findall(r"\bsource\b[^,]*?CHECK\s*\(\s*source\s+IN\s*\(([^)]*)\)\s*\)", schema)
    assert len(checks) == 1 and set(re.findall(r"'([^']*)'", checks[0])) == _values(HistorySource)


def test_the_report_outbox_check_constraints_allow_exactly_the_enum_values(tmp_path) -> None:
    """``report_outbox`` (migration 12): kind, trigger, status and error_stage hold the store's StrEnum words."""
    state = State(tmp_path / "state.db")
    try:
        schema = state.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'report_outbox'")[0]["sql"]
    finally:
        state.close()
    for column, enum in (("kind", ReportKind), ("trigger", ReportTrigger), ("status", OutboxStatus),
                         ("error_stage", ErrorStage)):
        checks = re.findall(rf"\b{column}\b[^,]*?CHECK\s*\(\s*{column}\s+IN\s*\(([^)]*)\)\s*\)", schema)
        assert len(checks) == 1, f"report_outbox.{column}: expected one CHECK ({column} IN (...)) constraint"
        assert set(re.findall(r"'([^']*)'", checks[0])) == _values(enum), f"report_outbox.{column} vs {enum.__name__}"
    assert set(ReportKind) == {"quarterly", "yearly"}, "the kinds of custode.agent.reports.document.ReportKind"


def test_the_restore_enums_are_the_words_certificates_already_hold() -> None:
    """No CHECK constraint here: the values are pinned, so certificates and rows written before still read."""
    assert _values(FileResult) == {"ok", "ok_manifest", "mismatch", "not_restored", "missing", "skipped"}
    assert set(CHECKED_RESULTS) == _values(FileResult) - {FileResult.SKIPPED}
    assert set(VERIFIED_RESULTS) | set(FAILED_RESULTS) == set(CHECKED_RESULTS)
    assert not set(VERIFIED_RESULTS) & set(FAILED_RESULTS)
    assert _values(RestoreTrigger) == {"scheduled", "manual"}
    assert _values(CoverageKind) == {"folder", "application", "database"}
