"""The ``backups:`` config section: mailboxes to read, rules, and the jobs expected to report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from custode.agent.config_refs import TenantKey, TenantRef
from custode.agent.cron_fields import Cron
from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.secrets import SecretRef
from custode.collectors.base import Regex

Priority = Literal["high", "normal", "none"]
"""How a job state becomes an incident: high = critical, normal = warning, none = no incident."""




class ImapMailbox(Strict):
    type: Literal["imap"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="default 993 (tls) or 143")
    security: Literal["tls", "starttls", "none"] = "tls"
    tls_verify: bool = True
    ca_file: Path | None = None
    username: str
    password: SecretRef
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    move_to: str | None = Field(default=None, description="folder for processed reports; never deletes")
    tenant: TenantRef | None = Field(default=None, description="tenant of reports that match no expected job, and of "
                               "the incident when the mailbox cannot be read (default: agent.tenant)")
    timeout: Duration = 30.0

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> "ImapMailbox":
        if self.security == "none" and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"security: none would send the password in clear to {self.host}; "
                             "use tls or starttls (plain IMAP is allowed only to localhost)")
        return self


class LocalMailbox(Strict):
    type: Literal["maildir", "mbox"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    path: Path
    tenant: TenantRef | None = Field(default=None, description="as for an IMAP mailbox")


Mailbox = Annotated[ImapMailbox | LocalMailbox, Field(discriminator="type")]


class MailRule(Strict):
    """A site rule for reports no built-in parser knows (a script's mail, a rare product).

    Patterns are case-insensitive regular expressions; keyword lists are
    phrases (several words allowed) matched case-insensitively on the subject
    and the body, failure words first, then warning, then success.
    """

    name: str
    software: str = Field(description="what to call the product in reports and tables")
    sender: Regex = None
    subject: Regex = None
    body: Regex = None
    job: Regex = Field(default=None, description="regex with a group (job) taken from subject or body, "
                                                "or a fixed job name when it has no group")
    host: Regex = Field(default=None, description="regex with a group (host), or a fixed name")
    failure: list[str] = Field(default_factory=lambda: ["failed", "failure", "error", "non riuscito", "errore",
                                                        "fallito"])
    warning: list[str] = Field(default_factory=lambda: ["warning", "avviso", "avvisi", "con avvisi"])
    success: list[str] = Field(default_factory=lambda: ["success", "succeeded", "completed", "ok",
                                                        "completato", "riuscito", "successo"])
    no_keyword: Literal["failure", "not_a_report"] = Field(
        default="not_a_report", description="what a matching mail with none of the keywords is")

    @model_validator(mode="after")
    def _selective(self) -> "MailRule":
        if not (self.sender or self.subject or self.body):
            raise ValueError("a rule needs at least one of sender, subject or body, or it would match every mail")
        return self


class Priorities(Strict):
    failed: Priority = "high"
    missing: Priority = "high"
    warning: Priority = "none"


class ExpectedJob(Strict):
    """A job that must report on a schedule; matched on the reports' fields."""

    name: str = Field(description="how Custode calls this job (tables, metrics, incidents)")
    job: str | None = Field(default=None, description="the job name as the software writes it (case-insensitive)")
    job_pattern: Regex = Field(default=None, description="or a regex matching the whole job name")
    software: str | None = Field(default=None, description="part of the product name, e.g. Veeam")
    host: str | None = None
    sender: Regex = None
    schedule: Cron = Field(description="cron expression in Europe/Rome time")
    grace: Duration | None = None
    priority: Priorities | None = None

    @model_validator(mode="after")
    def _something_to_match(self) -> "ExpectedJob":
        if not (self.job or self.job_pattern):
            self.job = self.name  # the common case: call it what the software calls it
        return self


class BackupsSection(Strict):
    enabled: bool = True
    poll_interval: Duration = 300.0
    grace: Duration = Field(default=6 * 3600.0, description="default grace after the scheduled time")
    early: Duration = Field(default=1800.0, description="a report this long before the scheduled time counts")
    unexpected_window: Duration = Field(default=8 * 86400.0, description="how far back unexpected reports count")
    retention: Duration = Field(default=400 * 86400.0, description="how long processed mail records are kept")
    priority: Priorities = Field(default_factory=Priorities)
    mailboxes: list[Mailbox] = Field(default_factory=list)
    rules: list[MailRule] = Field(default_factory=list)
    expected: dict[TenantKey, list[ExpectedJob]] = Field(default_factory=dict,
                                                         description="tenant id -> jobs that must report")

    @model_validator(mode="after")
    def _unique_names(self) -> "BackupsSection":
        names = [m.name for m in self.mailboxes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"mailbox names must be unique; repeated: {', '.join(duplicates)}")
        for tenant, jobs in self.expected.items():
            job_names = [j.name for j in jobs]
            repeated = sorted({n for n in job_names if job_names.count(n) > 1})
            if repeated:
                raise ValueError(f"expected.{tenant}: job names must be unique per tenant; repeated: "
                                 f"{', '.join(repeated)}")
        return self

    def priorities(self, job: ExpectedJob) -> Priorities:
        """The job's own priorities, falling back to the section's."""
        if job.priority is None:
            return self.priority
        merged = self.priority.model_dump()
        merged.update(job.priority.model_dump(exclude_unset=True))
        return Priorities(**merged)

    def grace_of(self, job: ExpectedJob) -> float:
        return job.grace if job.grace is not None else self.grace
