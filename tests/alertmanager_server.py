"""Debian's real ``prometheus-alertmanager``, its webhook pointed at Custode's bridge.

Gossip is off (``--cluster.listen-address=``) so it notifies at once instead of
waiting for cluster peers to settle; the timers are seconds so a test sees a
firing and a resolved notification within a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import free_port, http_get, require_binary, stop_process, wait_until
from server_base import DaemonServer


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class AlertmanagerServer(DaemonServer):
    """``with AlertmanagerServer(tmp, webhook_url, token) as am: am.fire({...}); am.resolve({...})``."""

    config_name = "alertmanager.yml"
    log_name = "alertmanager.log"

    def __init__(self, base: Path, webhook_url: str, token: str, *, group_by: tuple[str, ...] = (
            "alertname", "tenant", "instance"), group_wait: str = "1s", group_interval: str = "1s",
            repeat_interval: str = "1h", start_timeout: float = 15.0) -> None:
        self._base = base
        self._port = free_port()
        self.webhook_url = webhook_url
        self.token = token
        self.group_by = group_by
        self.timers = (group_wait, group_interval, repeat_interval)
        self.start_timeout = start_timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def write_config(self) -> None:
        group_wait, group_interval, repeat_interval = self.timers
        self.config_path.write_text(
            "route:\n"
            "  receiver: custode\n"
            f"  group_by: {json.dumps(list(self.group_by))}\n"
            f"  group_wait: {group_wait}\n  group_interval: {group_interval}\n"
            f"  repeat_interval: {repeat_interval}\n"
            "receivers:\n"
            "  - name: custode\n"
            "    webhook_configs:\n"
            f"      - url: {json.dumps(self.webhook_url)}\n"
            "        send_resolved: true\n"
            "        http_config:\n"
            "          authorization:\n"
            "            type: Bearer\n"
            f"            credentials: {json.dumps(self.token)}\n", encoding="utf-8")

    def start(self) -> None:
        binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
        self._base.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self._process = subprocess.Popen(
            [binary, f"--config.file={self.config_path}", f"--storage.path={self._base / 'data'}",
             f"--web.listen-address=127.0.0.1:{self._port}", "--cluster.listen-address=",
             "--log.level=debug"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"))

        def ready() -> bool:
            if not self.running:
                return True  # stop polling; reported below
            try:
                return http_get(f"{self.url}/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(ready, self.start_timeout, step=0.1)
        if not self.running:
            raise RuntimeError(f"alertmanager exited at start: {self.log_tail()}")
        if http_get(f"{self.url}/-/ready", timeout=1)[0] != 200:
            raise RuntimeError(f"alertmanager not ready within {self.start_timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # --- API v2 ---

    def post_alerts(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts, as Prometheus does; raises with Alertmanager's reason on refusal."""
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200, response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"alertmanager refused the alerts: {exc.code} {exc.read()!r}") from None

    def fire(self, labels: dict[str, str], annotations: dict[str, str] | None = None,
             started: datetime | None = None) -> None:
        """A firing alert with no end (Alertmanager applies resolve_timeout, 5 min by default)."""
        started = started or datetime.now(timezone.utc) - timedelta(seconds=30)
        self.post_alerts([{"labels": labels, "annotations": annotations or {}, "startsAt": _iso(started),
                           "generatorURL": "http://prometheus.example.it:9090/graph?g0.expr=up"}])

    def resolve(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        """The same alert (same labels, same fingerprint) with endsAt in the past: resolved."""
        now = datetime.now(timezone.utc)
        self.post_alerts([{"labels": labels, "annotations": annotations or {},
                           "startsAt": _iso(now - timedelta(seconds=30)), "endsAt": _iso(now - timedelta(seconds=1)),
                           "generatorURL": "http://prometheus.example.it:9090/graph?g0.expr=up"}])

    def alerts(self) -> list[dict]:
        status, body = http_get(f"{self.url}/api/v2/alerts", timeout=5)
        assert status == 200, body
        return json.loads(body)
