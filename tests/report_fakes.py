"""A report builder and renderer for the delivery tests, standing in for agent/reports/data.py and render.py.

Delivery only moves what they produce, so its tests must not depend on the
figures or on WeasyPrint: the builder writes a small report by hand (one
tenant with data, and ``EMPTY_TENANTS`` with nothing recorded, as the real
builder marks them), the renderer a few bytes that start like a PDF, plus two
CSV tables (none for an empty report, as the real renderer does). Both count
their calls, so a test sees that a report is rendered once however many times
it is sent. A child process (the kill tests) imports this module too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from custode.agent.reports.document import (
    BackupSection,
    Light,
    Report,
    ServersSection,
    SummaryLight,
    TicketsSection,
    UpdatesSection,
)
from custode.agent.reports.schedule import parse_period

EMPTY_TENANTS = frozenset({"capannori"})
CALLS: dict[str, list[tuple[str, str, str]]] = {"build": [], "render": []}


def reset() -> None:
    for calls in CALLS.values():
        calls.clear()


def build(config, state, tenant: str, kind: str, period: str, now: datetime) -> Report:
    """A report of ``tenant`` as the builder would give it: summary lights, or ``empty`` for a tenant with no data."""
    CALLS["build"].append((tenant, kind, period))
    found = parse_period(kind, period)
    spec = config.tenants[tenant]
    empty = tenant in EMPTY_TENANTS
    summary = () if empty else (
        SummaryLight("backups", Light.GREEN, {"jobs": 3}), SummaryLight("availability", Light.YELLOW),
        SummaryLight("security", Light.RED), SummaryLight("service_levels", Light.NONE))
    return Report(kind=kind, period=found.label, period_start=found.start, period_end=found.end, tenant=tenant,
                  tenant_name=spec.name, provider_name="Consorzio.IT", language=spec.language, generated_at=now,
                  features=("monitoring",), summary=summary, backups=BackupSection(), servers=ServersSection(),
                  updates=UpdatesSection(), tickets=TicketsSection(), empty=empty)


@dataclass(frozen=True)
class Rendered:
    filename: str
    content: bytes
    media_type: str
    attachments: dict[str, bytes] = field(default_factory=dict)


def pdf_bytes(report: Report) -> bytes:
    digest = hashlib.sha256(f"{report.tenant}{report.period}".encode()).hexdigest()
    return f"%PDF-1.7\n% fake report of {report.tenant} {report.period} {digest}\n%%EOF\n".encode()


def render(report: Report, fmt: str) -> Rendered:
    CALLS["render"].append((report.tenant, report.kind, report.period))
    assert fmt == "pdf"
    tables = {} if report.empty else {"backup_days.csv": b"job;day;outcome\nAnagrafe;2026-10-01;success\n",
                                      "servers.csv": b"host;availability\nsrv01;99.5\n"}
    word = {"quarterly": "rapporto-trimestrale", "yearly": "rapporto-annuale"}[report.kind]
    return Rendered(f"{word}-{report.tenant}-{report.period}.pdf", pdf_bytes(report), "application/pdf", tables)
