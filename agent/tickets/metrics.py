"""Ticket metrics, read from the state DB: SLA due times, breaches, and the outbox's health.

Everything is derived from the tickets and outbox tables, so the figures are
the same after a restart and agree with ``custode tickets``.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from custode.agent.clock import current_time
from custode.agent.state import State
from custode.agent.tickets import store
from custode.agent.tickets.model import OpState


def ticket_families(state: State, backends: list[str], now: float | None = None) -> list:
    now = current_time() if now is None else now
    due = GaugeMetricFamily("custode_ticket_sla_due_timestamp_seconds",
                            "When the open ticket must be taken in charge (working time by the tenant's calendar).",
                            labels=["tenant", "backend", "key", "ticket", "priority"])
    resolve = GaugeMetricFamily("custode_ticket_sla_resolve_due_timestamp_seconds",
                                "When the open ticket must be resolved, where a resolution target is configured.",
                                labels=["tenant", "backend", "key", "ticket", "priority"])
    open_tickets = GaugeMetricFamily("custode_tickets_open", "Tickets whose failure persists, by tenant.",
                                     labels=["tenant", "backend", "priority"])
    for row in store.open_ticket_sla_rows(state):
        labels = [row["tenant"], row["backend"], row["key"], row["ref"] or "", row["priority"]]
        if row["due_at"] is not None:
            due.add_metric(labels, row["due_at"])
        if row["resolve_due_at"] is not None:
            resolve.add_metric(labels, row["resolve_due_at"])
    for row in store.open_ticket_counts(state):
        open_tickets.add_metric([row["tenant"], row["backend"], row["priority"]], row["n"])

    breaches = CounterMetricFamily("custode_ticket_sla_breaches_total",
                                   "Tickets not taken in charge (or not resolved) within their SLA target.",
                                   labels=["tenant", "priority", "target"])
    for row in store.sla_breach_counts(state):
        breaches.add_metric([row["tenant"], row["priority"], "take_charge"], row["tc"] or 0)
        breaches.add_metric([row["tenant"], row["priority"], "resolve"], row["rs"] or 0)

    pending = GaugeMetricFamily("custode_ticket_outbox_pending", "Ticket operations waiting to be delivered.",
                                labels=["backend"])
    dead = GaugeMetricFamily("custode_ticket_outbox_undeliverable",
                             "Ticket operations the helpdesk refused for good; see 'custode tickets outbox'.",
                             labels=["backend"])
    oldest = GaugeMetricFamily("custode_ticket_outbox_oldest_pending_age_seconds",
                               "Age of the oldest operation still waiting for delivery.", labels=["backend"])
    delivered = CounterMetricFamily("custode_ticket_operations_delivered_total",
                                    "Ticket operations delivered to the helpdesk.", labels=["backend", "op"])
    counts = {name: _no_undelivered() for name in backends}
    for row in store.undelivered_counts_by_backend(state):
        entry = counts.setdefault(row["backend"], _no_undelivered())
        entry[row["state"]] = row["n"]
        if row["state"] == OpState.PENDING:
            entry["oldest"] = max(0.0, now - row["first"])
    for name, entry in sorted(counts.items()):
        pending.add_metric([name], entry[OpState.PENDING])
        dead.add_metric([name], entry[OpState.DEAD])
        oldest.add_metric([name], entry["oldest"])
    for row in store.delivered_counts(state):
        delivered.add_metric([row["backend"], row["op"]], row["n"])
    return [due, resolve, open_tickets, breaches, pending, dead, oldest, delivered]


def _no_undelivered() -> dict[str, float]:
    """One backend's outbox figures before counting: operations by undelivered state, and the oldest's age."""
    return {OpState.PENDING: 0, OpState.DEAD: 0, "oldest": 0.0}
