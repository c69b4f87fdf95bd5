"""What a backup report says, independent of the product that wrote it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["success", "warning", "failure"]
STATUSES: tuple[Status, ...] = ("success", "warning", "failure")
_RANK = {"success": 0, "warning": 1, "failure": 2}


def worst(statuses: list[Status] | tuple[Status, ...]) -> Status:
    """The overall status of several items (a multi-VM job fails if one VM failed)."""
    return max(statuses, key=_RANK.__getitem__) if statuses else "success"


@dataclass
class ItemResult:
    """One VM, client, task or share inside a report."""

    name: str
    status: Status
    error: str | None = None
    size_bytes: int | None = None


@dataclass
class BackupReport:
    software: str  # the product, as it names itself ("Veeam Backup & Replication")
    job: str | None  # the job (or client) name, as the software writes it
    status: Status
    host: str | None = None  # the machine that was backed up, or that runs the job
    started_at: datetime | None = None
    finished_at: datetime | None = None
    size_bytes: int | None = None  # data processed/read; the figure the report gives
    transferred_bytes: int | None = None
    error: str | None = None  # the error/warning text, when the report states one
    items: list[ItemResult] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


@dataclass
class Classification:
    """The verdict on one message: a report, or not a report (and why)."""

    kind: Literal["report", "not_a_report"]
    report: BackupReport | None = None
    parser: str | None = None  # module or rule that recognised it
    reason: str = ""

    @property
    def status(self) -> str:
        return self.report.status if self.report else "not_a_report"
