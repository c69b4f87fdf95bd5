"""Failed services: systemd units on Linux, stopped automatic services on Windows.

A failed unit is often the first visible sign of trouble (a backup that did
not run, a certificate renewal that broke), and it is invisible in resource
metrics. Hosts without a service manager report the collector unavailable,
which is not a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import psutil
from prometheus_client.core import Metric
from pydantic import Field

from custode.collectors._common import matches, run_command
from custode.collectors.base import Collector, CollectorSettings, CollectorUnavailable, Regex, compile_pattern, gauge
from custode.collectors.registry import register

SYSTEMD_RUNTIME_DIR = "/run/systemd/system"  # what sd_booted() checks
_BULLETS = {"●", "×", "*"}  # some systemd versions mark failed units even with --plain
_WINDOWS_SERVICES_KEY = r"SYSTEM\CurrentControlSet\Services"


def parse_systemctl_json(text: str) -> list[str]:
    """Failed unit names from ``systemctl list-units --output=json``."""
    data = json.loads(text) if text.strip() else []
    if not isinstance(data, list):
        raise ValueError("systemctl --output=json did not return a list")
    return [item["unit"] for item in data
            if isinstance(item, dict) and item.get("unit")
            and "failed" in (item.get("active"), item.get("sub"))]


def parse_systemctl_plain(text: str) -> list[str]:
    """Failed unit names from ``systemctl list-units --plain --no-legend``.

    Columns are UNIT LOAD ACTIVE SUB DESCRIPTION...; the description may
    contain spaces, so only the first four are looked at.
    """
    names: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in _BULLETS:
            fields = fields[1:]
        if len(fields) >= 4 and "failed" in (fields[2], fields[3]):
            names.append(fields[0])
    return names


def systemd_booted() -> bool:
    """True when PID 1 is systemd (not merely installed, as in many containers)."""
    return os.path.isdir(SYSTEMD_RUNTIME_DIR)


def _windows_start_is_deferred(name: str) -> bool:
    """Delayed or trigger-start services are legitimately stopped much of the time.

    psutil does not expose these flags, so they are read from the registry.
    """
    import winreg  # Windows only; imported here so the module loads everywhere

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, rf"{_WINDOWS_SERVICES_KEY}\{name}") as key:
            try:
                if winreg.QueryValueEx(key, "DelayedAutostart")[0] == 1:
                    return True
            except OSError:
                pass
            try:
                winreg.OpenKey(key, "TriggerInfo").Close()
                return True
            except OSError:
                return False
    except OSError:
        return False


class ServicesSettings(CollectorSettings):
    # Not "timeout": that key is the runner's per-collection timeout in the config.
    command_timeout: float = Field(5.0, gt=0, description="Seconds one systemctl call may take.")
    systemctl_path: str = "systemctl"
    exclude: Regex = Field(None, description="Service/unit names to ignore even when failed.")


@register
class ServicesCollector(Collector):
    name = "services"
    description = "Failed systemd units (Linux) or stopped automatic services (Windows)."
    Settings = ServicesSettings
    settings: ServicesSettings

    def collect(self) -> list[Metric]:
        if sys.platform == "win32":
            manager, failed = "windows", self._windows_failed()
        elif sys.platform.startswith("linux"):
            manager, failed = "systemd", self._systemd_failed()
        else:
            raise CollectorUnavailable(f"no supported service manager on {sys.platform}")

        exclude = compile_pattern(self.settings.exclude)
        names = sorted({name for name in failed if not matches(exclude, name)})
        per_service = gauge("custode_service_failed",
                            "1 for each failed unit or stopped automatic-start service.", ["name", "manager"])
        for name in names:
            per_service.add_metric([name, manager], 1.0)
        total = gauge("custode_services_failed", "Number of failed services.", ["manager"])
        total.add_metric([manager], float(len(names)))
        return [per_service, total] if names else [total]

    def _systemd_failed(self) -> list[str]:
        if not systemd_booted():
            raise CollectorUnavailable("systemd is not running (PID 1 is another init)")
        systemctl = shutil.which(self.settings.systemctl_path)
        if systemctl is None:
            raise CollectorUnavailable(f"{self.settings.systemctl_path!r} not found: no systemd")
        argv = [systemctl, "list-units", "--state=failed", "--all", "--no-legend", "--plain", "--no-pager"]
        result = run_command([*argv, "--output=json"], self.settings.command_timeout)
        if result.returncode != 0:  # a systemctl that rejects --output=json
            result = run_command(argv, self.settings.command_timeout)
        if result.returncode != 0:
            if "not been booted with systemd" in result.stderr:
                raise CollectorUnavailable("systemd is not running (PID 1 is another init)")
            raise RuntimeError(f"systemctl exited with {result.returncode}: {result.stderr.strip()[:500]}")
        # systemd before v246 ignores --output for list-units and prints the table.
        if result.stdout.lstrip().startswith("["):
            return parse_systemctl_json(result.stdout)
        return parse_systemctl_plain(result.stdout)

    @staticmethod
    def _windows_failed() -> list[str]:
        failed: list[str] = []
        for service in psutil.win_service_iter():
            try:
                info = service.as_dict()
            except psutil.Error:  # removed meanwhile, or not queryable by this account
                continue
            if info.get("start_type") != "automatic" or info.get("status") != "stopped":
                continue
            if not _windows_start_is_deferred(info["name"]):
                failed.append(info["name"])
        return failed
