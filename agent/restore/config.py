"""The ``restore_tests:`` config section: backup sets to test, how often, how much to sample, what to cover."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.config_refs import HostRef, TenantRef
from custode.agent.cron_fields import Cron
from custode.agent.durations import Duration
from custode.agent.schema import Strict, check_names
from custode.agent.secrets import SecretRef
from custode.agent.sizes import ByteSize

DEFAULT_DATABASE_PATTERNS = ["*.mdf", "*.ndf", "*.ldf", "*.bak", "*.fdb", "*.gdb", "*.ibd", "*.sqlite", "*.db",
                             "*.accdb", "*.mdb"]


class SampleSettings(Strict):
    count: int = Field(default=50, ge=1, le=1000, description="files restored per test")
    max_bytes: ByteSize = Field(default=1024 ** 3, description="byte budget of one test, e.g. 2GiB")
    recent: int = Field(default=5, ge=0, le=100, description="most recently changed files always included")
    seed: int | None = Field(default=None, description="fixed seed (same files every time); default random")


class CommandTemplates(Strict):
    """Commands for a tool Custode does not know (wbadmin, Veeam PowerShell), run on the set's host.

    ``{{ placeholders }}`` are listed in the README ("Restore tests"); Custode samples, compares and
    certifies, the commands only find the backup and restore files into ``{{ target }}``.
    """

    snapshot: str = Field(description="prints JSON {id, time[, paths]} of the latest backup")
    restore: str = Field(description="restores {{ items }} / {{ items_json }} of {{ version }} into {{ target }}")
    restored_path: str = Field(default="{{ target }}/{{ relative }}",
                               description="where the tool puts each restored file")
    list: str | None = Field(default=None, description="prints JSON [{path, size, mtime}] of the backup's files")
    version: str | None = Field(default=None, description="first output line is the tool's version")
    items_separator: str = ","


class CoverageSettings(Strict):
    """What to look for on the host's data volumes that the backup should include."""

    volumes: list[str] = Field(default_factory=list, description="data roots, e.g. [/srv] or ['D:\\']")
    depth: int = Field(default=1, ge=1, le=4, description="folder level that counts as a data folder")
    include: list[str] | None = Field(
        default=None, description="what the backup includes, when the tool cannot say (mirror, command)")
    application_dirs: list[str] = Field(default_factory=list, description="globs of application folders")
    database_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_DATABASE_PATTERNS))
    exclude: list[str] = Field(default_factory=list, description="globs deliberately not backed up")
    max_depth: int = Field(default=6, ge=1, le=20)
    max_entries: int = Field(default=200_000, ge=100)


class RestoreSet(Strict):
    """One backup set of one tenant, tested with its own tool."""

    tenant: TenantRef | None = Field(default=None, description="default: the agent's tenant")
    backend: Literal["restic", "borg", "mirror", "command"]
    repository: str | None = Field(default=None, description="restic/borg repository, or the mirror folder")
    password: SecretRef | None = Field(default=None, description="repository password (restic, borg)")
    source: str = Field(description="the backed-up folder, as an absolute path on the host")
    path_in_backup: str | None = Field(default=None, description="where source lies inside the backup, if elsewhere")
    host: HostRef | None = Field(default=None, description="command backend: a host under hosts: "
                                                       "(default: this machine)")
    command: CommandTemplates | None = None
    binary: str | None = Field(default=None, description="path of restic/borg when not on PATH")
    env: dict[str, str] = Field(default_factory=dict, description="extra non-secret variables for the tool")
    sample: SampleSettings = Field(default_factory=SampleSettings)
    schedule: Cron | None = Field(default=None, description="cron, Europe/Rome; default restore_tests.schedule")
    max_age: Duration | None = Field(default=None, description="older last passed test = overdue incident")
    max_backup_age: Duration | None = Field(default=None, description="older latest backup fails the test")
    timeout: Duration = Field(default=3 * 3600.0, description="for each tool invocation")
    coverage: CoverageSettings | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _backend_needs(self) -> "RestoreSet":
        if self.backend in ("restic", "borg", "mirror") and not self.repository:
            raise ValueError(f"backend {self.backend} needs 'repository' "
                             + ("(the folder of the copy)" if self.backend == "mirror" else "(path or URL)"))
        if self.backend == "command" and self.command is None:
            raise ValueError("backend command needs 'command:' with at least snapshot and restore templates")
        if self.backend != "command" and (self.command is not None or self.host is not None):
            raise ValueError(f"'command' and 'host' are for backend command; backend {self.backend} runs on "
                             "this machine")
        if self.host is not None and self.coverage is not None:
            raise ValueError("coverage scans the volumes of the machine Custode runs on; for a set on a remote "
                             "host remove 'coverage' (a remote scan is not available yet) or run the check from a "
                             "Custode agent installed on that host")
        if self.backend == "mirror" and self.password is not None:
            raise ValueError("a mirror has no password; remove 'password'")
        if not (self.source.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", self.source)
                or self.source.startswith("\\\\")):
            raise ValueError(f"source {self.source!r} must be an absolute path (/srv/dati, D:\\Dati)")
        return self


class RestoreTestsSection(Strict):
    enabled: bool = True
    schedule: Cron = Field(default="30 2 1 * *", description="default: 02:30 on the 1st of every month")
    max_age: Duration = Field(default=365 * 86400.0, description="a set without a passed test this recent is "
                                                                 "overdue (the contracts ask for one a year)")
    max_backup_age: Duration | None = Field(default=8 * 86400.0, description="default for the sets")
    scratch_dir: Path | None = Field(default=None, description="where restores go; default <data_dir>/restore")
    certificates_dir: Path | None = Field(default=None, description="default <data_dir>/certificates")
    coverage_schedule: Cron = Field(default="0 6 * * 1", description="coverage check; default Mondays 06:00")
    sets: dict[str, RestoreSet] = Field(default_factory=dict)

    @field_validator("sets")
    @classmethod
    def _names(cls, value: dict) -> dict:
        return check_names(value, "set names")
