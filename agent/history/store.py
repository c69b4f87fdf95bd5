"""Every statement on ``host_daily`` (migrations 5 and 11 in :mod:`custode.agent.state`), and the read API.

One row per host and Europe/Rome day, primary key (host, day), written by
farm mode for the hosts it polls and by the agent for its own host
(``source``, a :class:`~custode.agent.history.model.HistorySource`). Callers
keep their transactions: a function taking a ``sqlite3.Connection`` runs
inside the caller's (farm mode folds its polls in the same transaction as it
records their state); a function taking a :data:`Source` reads either inside
one or on its own through ``State.query``. ``tests/test_feature_stores_own_sql.py``
holds the SQL on this table to this module.

:func:`host_days` and :class:`HostDay` are what the yearly report builder reads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias

from custode.agent.history.model import HistorySource
from custode.agent.state import State

Source: TypeAlias = State | sqlite3.Connection
"""Where a read runs: a ``State`` (one statement of its own) or the connection of an open transaction."""


@dataclass(frozen=True)
class HostDay:
    """One host's day: ``successes / polls`` is its availability, ``data`` the facts (see the model module).

    Farm rows: ``polls`` polls made, ``successes`` those the host answered.
    Agent rows: ``polls`` collection cycles due, ``successes`` those that ran
    (the agent cannot see itself down; see :mod:`custode.agent.history.cycles`)."""

    host: str
    day: date
    tenant: str
    source: str
    """A :class:`HistorySource` value (a plain ``str``: a row from a newer Custode must still load)."""
    polls: int
    successes: int
    data: dict[str, Any]


def _rows(source: Source, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    if isinstance(source, State):
        return source.query(sql, params)
    return source.execute(sql, params).fetchall()


def _host_day(row: sqlite3.Row) -> HostDay:
    return HostDay(host=row["host"], day=date.fromisoformat(row["day"]), tenant=row["tenant"], source=row["source"],
                   polls=int(row["polls"]), successes=int(row["successes"]), data=json.loads(row["data"]))


_COLUMNS = "host, day, tenant, source, polls, successes, data"


def host_days(source: Source, tenant: str, first: date, last: date) -> list[HostDay]:
    """Every host's days of ``tenant`` from ``first`` to ``last`` (both included), farm and agent rows,
    ordered by host and day."""
    return days_between(source, first, last, tenant=tenant)


def days_between(source: Source, first: date, last: date, *, tenant: str | None = None, host: str | None = None,
                 sources: Iterable[HistorySource] | None = None) -> list[HostDay]:
    """Rows from ``first`` to ``last`` (both included), ordered by host and day; each filter when given."""
    sql = f"SELECT {_COLUMNS} FROM host_daily WHERE day >= ? AND day <= ?"
    params: list[Any] = [first.isoformat(), last.isoformat()]
    if tenant is not None:
        sql += " AND tenant = ?"
        params.append(tenant)
    if host is not None:
        sql += " AND host = ?"
        params.append(host)
    if sources is not None:
        wanted = [str(s) for s in sources]
        sql += f" AND source IN ({', '.join('?' for _ in wanted)})"
        params += wanted
    return [_host_day(row) for row in _rows(source, sql + " ORDER BY host, day", tuple(params))]


def day_row(source: Source, host: str, day: date) -> HostDay | None:
    """The host's row of ``day``, if any."""
    rows = _rows(source, f"SELECT {_COLUMNS} FROM host_daily WHERE host = ? AND day = ?", (host, day.isoformat()))
    return _host_day(rows[0]) if rows else None


def latest_before(source: Source, host: str, day: date) -> HostDay | None:
    """The host's most recent row before ``day``: where an agent's previous run left off."""
    rows = _rows(source, f"SELECT {_COLUMNS} FROM host_daily WHERE host = ? AND day < ? ORDER BY day DESC LIMIT 1",
                 (host, day.isoformat()))
    return _host_day(rows[0]) if rows else None


def save(db: sqlite3.Connection, row: HostDay) -> bool:
    """Write ``row`` over the host's day (inside the caller's transaction).

    A row another source wrote is left alone (False): two watchers of one
    host name must not mix their counts in one row."""
    cursor = db.execute(
        f"INSERT INTO host_daily({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(host, day) DO UPDATE SET tenant = excluded.tenant, polls = excluded.polls, "
        "successes = excluded.successes, data = excluded.data WHERE host_daily.source = excluded.source",
        (row.host, row.day.isoformat(), row.tenant, str(row.source), row.polls, row.successes,
         json.dumps(row.data, separators=(",", ":"))))
    return cursor.rowcount > 0


def delete_before(db: sqlite3.Connection, cutoff: date) -> int:
    """Delete every row (any source) of a day before ``cutoff``; returns how many went."""
    return db.execute("DELETE FROM host_daily WHERE day < ?", (cutoff.isoformat(),)).rowcount
