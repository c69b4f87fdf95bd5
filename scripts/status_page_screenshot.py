"""Regenerate docs/status-page.png: the status page of a realistic morning, photographed by headless Chromium.

    .venv/bin/python scripts/status_page_screenshot.py                  # docs/status-page.png
    .venv/bin/python scripts/status_page_screenshot.py --out /tmp/p.png --size 390x844   # a phone's screen

The scenario is built with the real stores, as the agent would have left
them: two comuni (Crema, Capannori) whose backup NAS mail their reports to
a Maildir; at 06:00 the backup poll reads it (one job failed, one never
reported), the incidents open and the ticket planner files a ticket for
each; a restore test of Crema's files passed last week, Capannori's was
never run; Sicr@web's window is on Thursday. The page is then rendered by
the status page service at 09:30 on Monday 7 December 2026 (the clock is
pinned there, so the picture is the same on any day) and served on
127.0.0.1 for Chromium (Debian's ``chromium``; ``bash scripts/test.sh``
installs it). ``tests/test_status_page.py`` runs this same scenario in the
browser, so the script cannot rot unnoticed.
"""

from __future__ import annotations

import argparse
import contextlib
import mailbox
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from custode.agent.clock import ROME, pinned
from custode.agent.config_loader import LoadedConfig, load_text
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.state import State

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=ROME)
"""Monday morning; Tuesday is the Immacolata (a holiday the SLA clock skips), Thursday has Sicr@web's window."""
POLL = datetime(2026, 12, 7, 6, 0, tzinfo=ROME)
PHONE = (390, 844)
"""A phone's screen in CSS pixels (iPhone 12-14): what the test photographs."""
README = (1000, 2330)
"""A desktop browser's width, tall enough for the whole page of this scenario: the README's picture."""

CONFIG = """\
agent:
  tenant: crema
  data_dir: {data}
tenants:
  crema:
    name: Comune di Crema
    referents: [ced@comune.crema.cr.it]
    calendar: {{patron: {{day: "06-10", name: San Pantaleone}}}}
  capannori:
    name: Comune di Capannori
backups:
  mailboxes:
    - {{type: maildir, name: backup, path: {maildir}}}
  expected:
    crema:
      - {{name: Backup notturno, software: Synology, schedule: "0 2 * * *"}}
      - {{name: Copia cloud, software: Synology, schedule: "0 3 * * *"}}
    capannori:
      - {{name: Backup giornaliero, software: Synology, schedule: "0 1 * * *"}}
      - {{name: Backup SQL Tributi, software: Veeam, schedule: "30 23 * * *"}}
smtp:
  host: smtp.provider.example.it
  sender: Custode <custode@provider.example.it>
tickets:
  default_backend: helpdesk
  backends:
    helpdesk: {{type: email, to: [assistenza@provider.example.it]}}
  check_priorities: {{backup: high}}
updates:
  windows:
    sicraweb-crema: {{application: Sicr@web (Maggioli), tenant: crema, days: [thursday], start: "17:30",
                     duration: 2h, playbook: sicraweb-update.yaml}}
    halley-capannori: {{application: Halley, tenant: capannori, days: [friday], start: "16:00", duration: 2h,
                       playbook: halley-update.yaml}}
restore_tests:
  sets:
    crema-files: {{tenant: crema, backend: restic, repository: /srv/backup/restic-crema,
                  password: {{env: RESTIC_PASSWORD_CREMA}}, source: /srv/dati}}
    capannori-files: {{tenant: capannori, backend: borg, repository: /srv/backup/borg-capannori,
                      password: {{env: BORG_PASSPHRASE_CAPANNORI}}, source: /srv/dati}}
"""


def synology_report(nas: str, task: str, ok: bool, finished: datetime, reason: str = "") -> bytes:
    """A Synology Hyper Backup notification in Italian, as DSM writes it."""
    message = EmailMessage()
    message["From"] = f"{nas} <{nas.lower()}@comune.example.it>"
    message["To"] = "backup@provider.example.it"
    outcome = "completata" if ok else "non riuscita"
    message["Subject"] = f"[{nas}] Attività di backup dei dati su {nas} {outcome}"
    message["Date"] = format_datetime(finished)
    verb = "è stata completata" if ok else "non è riuscita"
    body = (f"Gentile utente,\n\nL'attività di backup [{task}] su {nas} {verb}.\n\nNome attività: {task}\n"
            f"Ora di inizio: {finished - timedelta(minutes=30):%Y/%m/%d %H:%M:%S}\n")
    body += f"Ora di fine: {finished:%Y/%m/%d %H:%M:%S}\n" if ok else f"Motivo: {reason}\n"
    message.set_content(body + f"\nCordiali saluti,\nSynology {nas}\n")
    return message.as_bytes()


def deliver(box: mailbox.Maildir, raw: bytes, arrived: datetime) -> None:
    """Into the Maildir as the MDA would have put it: the file's mtime is when the mail arrived."""
    key = box.add(raw)
    path = os.path.join(box._path, box._lookup(key))  # mailbox has no public path of a message
    os.utime(path, (arrived.timestamp(), arrived.timestamp()))


def certificate(set_name: str, backend: str, finished: datetime, passed: bool) -> dict[str, object]:
    """The figures of a restore-test certificate that the restore store keeps."""
    started = finished - timedelta(minutes=7)
    return {"id": f"{set_name}-{finished:%Y%m%d%H%M}", "set": set_name, "backend": backend,
            "run_by": {"trigger": "scheduled"}, "started_at": started.isoformat(), "finished_at": finished.isoformat(),
            "passed": passed, "files_checked": 50, "files_verified": 50 if passed else 47, "errors": [],
            "mismatches": [] if passed else [{"path": "/srv/dati/protocollo.mdb"}] * 3,
            "restore": {"bytes": 1_350_000_000, "seconds": 312.0},
            "snapshot": {"time": (started - timedelta(hours=4)).isoformat()}, "sha256": "0" * 64}


@dataclass
class Scenario:
    loaded: LoadedConfig
    state: State


def build_scenario(folder: Path, extra: str = "") -> Scenario:
    """The morning of :data:`NOW`, with the real stores: mail polled, incidents, tickets, a restore test.

    ``extra`` is YAML appended to the config (a ``status_page:`` section, for a test)."""
    from custode.agent.backups.service import BackupMonitor
    from custode.agent.restore.store import RestoreStore
    from custode.agent.tickets.planner import TicketPlanner

    folder.mkdir(parents=True, exist_ok=True)
    maildir = folder / "Maildir"
    box = mailbox.Maildir(str(maildir), create=True)
    night = NOW.replace(hour=0, minute=0)
    deliver(box, synology_report("NAS-CREMA", "Backup notturno", True, night.replace(hour=2, minute=31)),
            night.replace(hour=2, minute=32))
    deliver(box, synology_report("NAS-CREMA", "Copia cloud", False, night.replace(hour=3, minute=5),
                                 "Spazio insufficiente sulla destinazione."), night.replace(hour=3, minute=6))
    deliver(box, synology_report("NAS-CAPANNORI", "Backup giornaliero", True, night.replace(hour=1, minute=44)),
            night.replace(hour=1, minute=45))
    # Backup SQL Tributi (Veeam, due 23:30 on Sunday, 6 h of grace) never reports: missing at 05:30.
    loaded = load_text(CONFIG.format(data=folder / "data", maildir=maildir) + extra,
                       source=str(folder / "custode.yaml"))
    config = loaded.model
    state = State(folder / "data" / "state.db")
    poll = POLL.timestamp()
    incidents = Incidents(state, clock=lambda: poll)
    summary = BackupMonitor(config.backups, state, incidents, clock=lambda: poll,
                            default_tenant=config.agent.tenant).poll()
    if summary.errors or summary.reports != 3:
        raise RuntimeError(f"the scenario's mail was not read as 3 reports: {summary}")
    TicketPlanner(config, state, clock=lambda: poll).plan()
    RestoreStore(state).record_test("crema", certificate("crema-files", "restic", NOW - timedelta(days=6, hours=7),
                                                         True), None)
    return Scenario(loaded, state)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(scenario: Scenario, web_config: Path | None = None) -> Iterator[str]:
    """The agent's HTTP routes (core and status page) on 127.0.0.1; yields the base URL."""
    from custode.agent.services import Context
    from custode.agent.services.status_page import build
    from custode.agent.web import Router, make_server
    from custode.agent.web.core import core_routes
    from custode.agent.web.webconfig import WebConfigSource

    router = Router()
    for route in core_routes(MetricCache(), lambda: (True, "ready"), lambda: (True, "ok"), router):
        router.add(route, "core")
    context = Context(scenario.loaded, scenario.state, Incidents(scenario.state), MetricCache(),
                      lambda *record: None)
    for route in build(context).routes():
        router.add(route, "status_page")
    server = make_server("127.0.0.1", free_port(), router, WebConfigSource(web_config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SystemExit("chromium is not installed: apt-get install chromium (bash scripts/test.sh installs it)")
    return found


def _chromium(arguments: list[str], binary: str, env: dict[str, str] | None = None) -> str:
    """Run headless Chromium with a throw-away profile; its stdout (the DOM, for --dump-dom)."""
    with tempfile.TemporaryDirectory(prefix="custode-chromium-") as profile:
        done = subprocess.run([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *arguments],
                              capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(url: str, out: Path, size: tuple[int, int], binary: str, env: dict[str, str] | None = None) -> Path:
    """A PNG of ``url`` as a browser of ``size`` (width, height in CSS pixels) shows it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", url], binary, env)
    if not out.is_file() or out.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"chromium wrote no PNG at {out}")
    return out


def dump_dom(url: str, binary: str, env: dict[str, str] | None = None) -> str:
    """The DOM after Chromium has parsed and laid out the page."""
    return _chromium(["--dump-dom", url], binary, env)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "status-page.png")
    parser.add_argument("--size", type=_size, default=README,
                        help=f"WIDTHxHEIGHT in CSS pixels (default {README[0]}x{README[1]})")
    args = parser.parse_args(argv)
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="custode-status-") as folder, pinned(NOW, running=False):
        scenario = build_scenario(Path(folder))
        try:
            with serve(scenario) as url:
                screenshot(url + "/", args.out, args.size, binary)
        finally:
            scenario.state.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
