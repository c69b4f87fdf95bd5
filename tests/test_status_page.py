"""The status page at / and /tenant/ID: what it shows per comune, in which words and times, to whom, and
that it never shows an all-clear it cannot back (issue 19).

Data is made with the real stores (mail polled from a Maildir by the backup monitor, incidents, the ticket
planner, the restore store) on a state DB in tmp_path, judged on Custode's clock pinned to the scenario's
morning. The per-user limit is checked through the real server with a web config file (TLS, basic auth);
the page itself in headless Chromium, as a phone shows it (the screenshot is kept).
"""

from __future__ import annotations

import base64
import html
import http.client
import importlib.util
import mailbox
import re
import shutil
import ssl
import struct
import sys
import time
from datetime import datetime
from pathlib import Path

import bcrypt
import pytest
from conftest import free_port, host_env, require_binary
from tls_material import Authority

from custode.agent.clock import ROME
from custode.agent.config_loader import ConfigError, load_text
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.services import Context, build_services
from custode.agent.services.status_page import StatusPages
from custode.agent.state import State
from custode.agent.web import Headers, Request, Response

_SCRIPT = Path(__file__).parent.parent / "scripts" / "status_page_screenshot.py"
_spec = importlib.util.spec_from_file_location("status_page_screenshot", _SCRIPT)
assert _spec is not None and _spec.loader is not None
shot = importlib.util.module_from_spec(_spec)
sys.modules["status_page_screenshot"] = shot
_spec.loader.exec_module(shot)

NOW = shot.NOW
PASSWORD = "referente-2026"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests, same code path
ARTIFACTS = Path(__file__).parent / "artifacts"
SMTP = "smtp:\n  host: smtp.provider.example.it\n  sender: Custode <custode@provider.example.it>\n"


def get(pages: StatusPages, path: str, user: str | None = None) -> Response:
    """What the route at ``path`` answers ``user`` (in this process, without the server)."""
    for route in pages.routes():
        if route.path == path:
            return route.handle(Request("GET", path, "", Headers({}), b"", user))
    raise AssertionError(f"no route at {path}: {[route.path for route in pages.routes()]}")


def page(pages: StatusPages, path: str = "/", user: str | None = None) -> str:
    response = get(pages, path, user)
    assert response.status == 200, response.body
    assert response.content_type == "text/html; charset=utf-8"
    return response.body.decode("utf-8")


def words(fragment: str) -> str:
    """The text a person reads: no head, no column titles, inline tags dropped, the others a space."""
    fragment = re.sub(r"<head>.*?</head>|<thead>.*?</thead>", " ", fragment, flags=re.S)
    fragment = re.sub(r"</?(?:time|span|a|code|small|b)\b[^>]*>", "", fragment)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def tenant_part(document: str, tenant: str) -> str:
    start = document.index(f'id="tenant-{tenant}"')
    return document[start:document.index("</section>", start)]


def section(document: str, tenant: str, title: str) -> str:
    """The text of one section (``<h3>title</h3>`` up to the next) of one tenant."""
    part = tenant_part(document, tenant)
    start = part.index(f"<h3>{title}</h3>") + len(f"<h3>{title}</h3>")
    end = part.find("<h3>", start)
    return words(part[start:end if end != -1 else len(part)])


@pytest.fixture
def scenario(tmp_path, pin_clock):
    """The README's morning (scripts/status_page_screenshot.py): Crema and Capannori at 09:30 on 7 Dec 2026."""
    built = shot.build_scenario(tmp_path / "scenario")
    pin_clock(NOW, running=False)
    yield built
    built.state.close()


# --- what the page says --------------------------------------------------------------------------


def test_the_embedded_default_shows_its_one_tenant_and_says_what_it_does_not_watch(tmp_path) -> None:
    loaded = load_text("")
    state = State(tmp_path / "state.db")
    try:
        built = build_services(Context(loaded, state, Incidents(state), MetricCache(), lambda *record: None))
        assert [service.name for service in built] == ["status_page"]  # the default config has a page too
        assert [route.path for route in built[0].routes()] == ["/", "/tenant/default"]
        document = page(StatusPages(loaded.model, state))
    finally:
        state.close()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in document
    assert '<meta http-equiv="refresh" content="60">' in document
    assert '<html lang="it">' in document and "<script" not in document and "<link" not in document
    assert section(document, "default", "Incidenti aperti") == "OK Nessun incidente aperto."
    assert section(document, "default", "Backup") == "NON CONFIGURATO Nessun backup atteso (backups.expected)."
    for title in ("Ticket aperti", "Prossime finestre di aggiornamento", "Ultimo test di ripristino"):
        assert section(document, "default", title).startswith("NON CONFIGURATO "), title
    for link in ("/metrics", "/healthz", "/ready"):  # what the old index page linked to
        assert f'<a href="{link}">{link}</a>' in document


def test_a_comune_morning_in_italian_with_rome_times_per_tenant(scenario) -> None:
    pages = StatusPages(scenario.loaded.model, scenario.state)
    crema = page(pages, "/tenant/crema")
    backups = section(crema, "crema", "Backup")
    assert "Copia cloud Synology Hyper Backup 07/12/2026 03:05 CET (fallito) FALLITO 07/12/2026 03:05 CET" in backups
    assert "Backup notturno Synology Hyper Backup 07/12/2026 02:31 CET (riuscito) OK" in backups
    assert backups.index("Copia cloud") < backups.index("Backup notturno")  # the failed job first
    assert '<time datetime="2026-12-07T03:05:00+01:00">07/12/2026 03:05 CET</time>' in crema
    incidents = section(crema, "crema", "Incidenti aperti")
    assert incidents.startswith("CRITICO backup 'Copia cloud' failed") and "07/12/2026 06:00 CET (da 3 h 30 min)" \
        in incidents
    tickets = section(crema, "crema", "Ticket aperti")
    # opened at 06:00, 8 working hours for "high": 08:30-12:30 and 14:00-18:00 the same Monday
    assert "Comune di Crema: il backup «Copia cloud» è fallito alta 07/12/2026 06:00 CET IN ATTESA " \
           "07/12/2026 18:00 CET (tra 8 h 30 min)" in tickets
    windows = section(crema, "crema", "Prossime finestre di aggiornamento")
    assert windows.startswith("Sicr@web (Maggioli) sicraweb-crema 10/12/2026 17:30 CET 10/12/2026 19:30 CET "
                              "PREVISTA (tra 3 giorni 8 h)")
    assert section(crema, "crema", "Ultimo test di ripristino") == \
        "crema-files restic 01/12/2026 02:30 CET SUPERATO 01/12/2026 02:30 CET"
    assert words(crema).count("PROBLEMI 1 backup fallito o mancante · 1 incidente critico") == 1
    assert "Capannori" not in words(tenant_part(crema, "crema")) and 'id="tenant-capannori"' not in crema
    assert "<title>Custode · Comune di Crema</title>" in crema

    capannori = page(pages, "/tenant/capannori")
    backups = section(capannori, "capannori", "Backup")
    assert backups.startswith("Backup SQL Tributi Veeam nessuno MANCANTE 07/12/2026 05:30 CET (da 4 h) "
                              "previsto 06/12/2026 23:30 CET, termine 07/12/2026 05:30 CET")
    assert section(capannori, "capannori", "Ultimo test di ripristino") == \
        "capannori-files borg mai MAI ESEGUITO mai"
    assert "Halley halley-capannori 11/12/2026 16:00 CET" in section(capannori, "capannori",
                                                                       "Prossime finestre di aggiornamento")

    both = page(pages, "/")
    assert words(both).startswith("Custode Stato dei servizi · Aggiornato 07/12/2026 09:30 CET · si aggiorna ogni "
                                  "60 s Comuni PROBLEMI Comune di Capannori PROBLEMI Comune di Crema")
    assert tenant_part(both, "crema") == tenant_part(crema, "crema")


def test_a_ticket_past_its_take_charge_time_says_so(scenario, pin_clock) -> None:
    pin_clock(NOW.replace(hour=19, minute=0), running=False)
    crema = page(StatusPages(scenario.loaded.model, scenario.state), "/tenant/crema")
    assert "SCADUTA 07/12/2026 18:00 CET (scaduta da 1 h)" in section(crema, "crema", "Ticket aperti")
    assert "1 ticket oltre la presa in carico" in words(crema)


def test_summer_time_is_cest_with_its_offset(tmp_path, pin_clock) -> None:
    july = datetime(2026, 7, 15, 10, 0, tzinfo=ROME)
    pin_clock(july, running=False)
    loaded = load_text("")
    state = State(tmp_path / "state.db")
    try:
        Incidents(state).observe(CheckResult("default", "filesystem", "srv01:/srv", "warning",
                                             "/srv on srv01 has 8% free"), now=july.timestamp() - 3600)
        document = page(StatusPages(loaded.model, state))
    finally:
        state.close()
    assert '<time datetime="2026-07-15T09:00:00+02:00">15/07/2026 09:00 CEST</time>' in document
    assert section(document, "default", "Incidenti aperti").startswith(
        "AVVISO /srv on srv01 has 8% free 15/07/2026 09:00 CEST (da 1 h)")
    assert "ATTENZIONE 1 avviso" in words(document)


def test_a_tenant_that_reads_english_gets_english(tmp_path, pin_clock) -> None:
    pin_clock(NOW, running=False)
    loaded = load_text("tenants:\n  lodi: {name: Comune di Lodi, language: en}\n"
                       "backups:\n  expected:\n    lodi:\n      - {name: NAS Lodi, schedule: '0 2 * * *'}\n")
    state = State(tmp_path / "state.db")
    try:
        document = page(StatusPages(loaded.model, state), "/tenant/lodi")
    finally:
        state.close()
    assert '<html lang="en">' in document
    assert section(document, "lodi", "Backups") == ("NAS Lodi none MISSING 2026-12-07 08:00 CET (for 1 h 30 min) "
                                                    "due 2026-12-07 02:00 CET, deadline 2026-12-07 08:00 CET")
    assert section(document, "lodi", "Open incidents") == "OK No open incidents."
    assert section(document, "lodi", "Open tickets").startswith("NOT CONFIGURED No ticket is opened")
    assert "PROBLEMS 1 backup failed or missing" in words(document)


def test_a_tenant_without_expected_jobs_is_never_a_green_backup_light(tmp_path, pin_clock) -> None:
    pin_clock(NOW, running=False)
    loaded = load_text("tenants:\n  crema: {name: Comune di Crema}\n  lodi: {name: Comune di Lodi}\n"
                       "agent: {tenant: crema}\n"
                       "backups:\n  expected:\n    crema:\n      - {name: NAS, schedule: '0 2 * * *'}\n")
    state = State(tmp_path / "state.db")
    try:
        document = page(StatusPages(loaded.model, state), "/tenant/lodi")
    finally:
        state.close()
    assert section(document, "lodi", "Backup") == "Nessun backup atteso per questo comune (backups.expected)."
    backups = tenant_part(document, "lodi").split("<h3>Backup</h3>")[1].split("<h3>")[0]
    assert "badge" not in backups  # no light at all, green least of all


def test_hostile_names_are_shown_as_text_never_as_markup(tmp_path, pin_clock) -> None:
    pin_clock(NOW, running=False)
    job = "<script>alert('job')</script>"
    loaded = load_text("tenants:\n  crema: {name: '<b onmouseover=\"x()\">Crema & Co</b>'}\n"
                       f"backups:\n  expected:\n    crema:\n      - {{name: \"{job}\", software: '\"><i>', "
                       "schedule: '0 2 * * *'}\n")
    state = State(tmp_path / "state.db")
    try:
        Incidents(state).observe(CheckResult("crema", "backup", job, "critical", f"backup {job} <img src=x "
                                             "onerror=alert(2)> failed"), now=NOW.timestamp())
        document = page(StatusPages(loaded.model, state), "/tenant/crema")
    finally:
        state.close()
    assert "<script" not in document and "<img" not in document and "<b " not in document and "<i>" not in document
    assert "&lt;script&gt;alert(&#x27;job&#x27;)&lt;/script&gt;" in document
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;Crema &amp; Co&lt;/b&gt;" in document
    assert f"backup {job} <img src=x onerror=alert(2)> failed" in section(document, "crema", "Incidenti aperti")


# --- never an all-clear it cannot back -------------------------------------------------------------


def _quiet_config(tmp_path: Path) -> str:
    """Every feature on, nothing wrong: a tickets helpdesk, an update window, a backup set, no expected job."""
    return (f"agent: {{data_dir: {tmp_path / 'data'}}}\n{SMTP}"
            "tickets:\n  default_backend: helpdesk\n  backends:\n"
            "    helpdesk: {type: email, to: [assistenza@provider.example.it]}\n"
            "updates:\n  windows:\n    gestionale: {application: Gestionale, days: [thursday], start: '17:30', "
            "playbook: p.yaml}\n"
            "restore_tests:\n  sets:\n    files: {backend: mirror, repository: /mnt/nas/copia, source: /srv/dati}\n")


def test_a_section_the_state_db_cannot_give_says_so_in_words(tmp_path, pin_clock) -> None:
    pin_clock(NOW, running=False)
    loaded = load_text(_quiet_config(tmp_path))
    state = State(tmp_path / "state.db")
    try:
        pages = StatusPages(loaded.model, state)
        before = page(pages)
        assert "NESSUN PROBLEMA RILEVATO" not in before  # the restore set was never tested: overdue
        with state.transaction() as db:
            db.execute("DROP TABLE ticket_outbox")
            db.execute("DROP TABLE tickets")
        document = page(pages)
    finally:
        state.close()
    tickets = section(document, "default", "Ticket aperti")
    assert tickets.startswith("NON LEGGIBILE Dati non leggibili dal database di stato: state database ")
    assert "no such table: tickets" in tickets
    assert "STATO INCOMPLETO alcuni dati non si possono leggere: la pagina non può dire che va tutto bene" \
        in words(document)
    assert section(document, "default", "Incidenti aperti") == "OK Nessun incidente aperto."  # that one was read


def test_a_state_db_that_cannot_be_read_at_all_leaves_no_green_anywhere(tmp_path, pin_clock) -> None:
    pin_clock(NOW, running=False)
    loaded = load_text(_quiet_config(tmp_path) + "backups:\n  expected:\n    default:\n"
                       "      - {name: NAS, schedule: '0 2 * * *'}\n")
    state = State(tmp_path / "state.db")
    pages = StatusPages(loaded.model, state)
    state.close()  # as good as a file gone bad under the agent: every read fails
    document = page(pages)
    for title in ("Backup", "Incidenti aperti", "Ticket aperti", "Ultimo test di ripristino"):
        assert section(document, "default", title).startswith("NON LEGGIBILE Dati non leggibili"), title
    assert "Gestionale" in section(document, "default", "Prossime finestre di aggiornamento")  # from the config
    assert 'class="badge ok"' not in document
    assert "Nessun incidente aperto" not in document and "NESSUN PROBLEMA" not in document
    assert "STATO INCOMPLETO" in words(document)


def test_a_backup_mailbox_that_cannot_be_read_taints_every_backup_table(tmp_path, pin_clock) -> None:
    maildir = tmp_path / "Maildir"
    box = mailbox.Maildir(str(maildir), create=True)
    night = NOW.replace(hour=0, minute=0)
    shot.deliver(box, shot.synology_report("NAS-CREMA", "Notturno", True, night.replace(hour=2, minute=30)),
                 night.replace(hour=2, minute=31))
    shot.deliver(box, shot.synology_report("NAS-LODI", "Giornaliero", True, night.replace(hour=1, minute=30)),
                 night.replace(hour=1, minute=31))
    loaded = load_text(f"agent: {{tenant: crema}}\ntenants:\n  crema: {{name: Comune di Crema}}\n"
                       "  lodi: {name: Comune di Lodi}\n"
                       f"backups:\n  mailboxes:\n    - {{type: maildir, name: posta-backup, path: {maildir}}}\n"
                       "  expected:\n    crema:\n      - {name: Notturno, schedule: '0 2 * * *'}\n"
                       "    lodi:\n      - {name: Giornaliero, schedule: '0 1 * * *'}\n")
    from custode.agent.backups.service import BackupMonitor

    state = State(tmp_path / "state.db")
    try:
        moment = [night.replace(hour=6).timestamp()]
        monitor = BackupMonitor(loaded.model.backups, state, Incidents(state), clock=lambda: moment[0],
                                default_tenant="crema")
        assert monitor.poll().reports == 2
        shutil.rmtree(maildir)  # the mailbox is gone: the next polls fail, the second one opens the incident
        for _ in range(2):
            moment[0] += 300
            assert monitor.poll().errors
        pin_clock(night.replace(hour=6, minute=15), running=False)
        pages = StatusPages(loaded.model, state)
        lodi, crema = page(pages, "/tenant/lodi"), page(pages, "/tenant/crema")
    finally:
        state.close()
    note = ("NON LEGGIBILE La casella dei report «posta-backup» non si può leggere dal 07/12/2026 06:10 CET: i report "
            "che porta non arrivano, quindi lo stato qui sotto può non essere aggiornato.")
    assert section(lodi, "lodi", "Backup").startswith(note + " Giornaliero")
    assert "cannot be read" not in section(lodi, "lodi", "Backup")  # the incident's details are Crema's
    assert words(lodi).count("STATO INCOMPLETO") == 1 and "NESSUN PROBLEMA" not in lodi
    assert "backup mailbox posta-backup cannot be read" in section(crema, "crema", "Backup")
    assert ("PROBLEMI alcuni dati non si possono leggere: la pagina non può dire che va tutto bene · "
            "1 incidente critico") in words(crema)


# --- who sees what ---------------------------------------------------------------------------------


def test_tenant_users_name_defined_tenants_and_at_least_one(tmp_path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_text("tenants:\n  crema: {name: Comune di Crema}\nstatus_page:\n  tenant_users:\n    ced: [crem]\n")
    assert any(problem.path == "status_page.tenant_users.ced.0" or "status_page.tenant_users.ced" in problem.path
               for problem in raised.value.problems), raised.value
    assert "tenant 'crem' is not defined under tenants; did you mean 'crema'?" in str(raised.value.problems[0])
    with pytest.raises(ConfigError, match="user 'ced' has no tenant"):
        load_text("status_page:\n  tenant_users:\n    ced: []\n")
    with pytest.raises(ConfigError, match="refresh"):
        load_text("status_page: {refresh: 2s}\n")
    loaded = load_text("status_page: {refresh: 2m, title: Provincia}\n")
    state = State(tmp_path / "state.db")
    try:
        document = page(StatusPages(loaded.model, state))
    finally:
        state.close()
    assert '<meta http-equiv="refresh" content="120">' in document and "<h1>Provincia</h1>" in document


def test_limits_without_basic_auth_let_nobody_in(tmp_path) -> None:
    loaded = load_text("status_page:\n  tenant_users:\n    ced: [default]\n")
    state = State(tmp_path / "state.db")
    try:
        pages = StatusPages(loaded.model, state)
        for path in ("/", "/tenant/default"):
            response = get(pages, path, user=None)
            assert response.status == 403
            assert "basic_auth_users" in words(response.body.decode())
        assert get(pages, "/", user="ced").status == 200  # with the user known, the limit applies
    finally:
        state.close()


def _web_config(folder: Path, ca: Authority) -> Path:
    server = ca.issue("server", "127.0.0.1", server=True)
    path = folder / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {server.cert.name}\n  key_file: {server.key.name}\n"
                    f"basic_auth_users:\n  ced-crema: '{HASH}'\n  provider: '{HASH}'\n")
    return path


def _ask(port: int, context: ssl.SSLContext, path: str, user: str | None) -> tuple[int, str, dict[str, str]]:
    headers = {} if user is None else {
        "Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()}
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8"), dict(response.getheaders())
    finally:
        connection.close()


def test_a_referent_sees_only_their_comune_through_the_real_server(tmp_path, pin_clock) -> None:
    built = shot.build_scenario(tmp_path / "scenario", "status_page:\n  tenant_users:\n    ced-crema: [crema]\n")
    pin_clock(NOW, running=False)
    ca = Authority(tmp_path, time.time())
    context = ssl.create_default_context(cafile=str(ca.pem))
    try:
        with shot.serve(built, _web_config(tmp_path, ca)) as url:
            port = int(url.rsplit(":", 1)[1])
            assert _ask(port, context, "/", None)[0] == 401
            assert _ask(port, context, "/tenant/crema", None)[0] == 401

            status, body, headers = _ask(port, context, "/", "ced-crema")
            assert status == 200 and headers["Cache-Control"] == "no-store"
            assert 'id="tenant-crema"' in body and "Capannori" not in body and "Tributi" not in body
            assert _ask(port, context, "/tenant/crema", "ced-crema")[0] == 200

            status, body, _ = _ask(port, context, "/tenant/capannori", "ced-crema")
            assert status == 403
            assert words(body).startswith("Custode ACCESSO NEGATO L'utente «ced-crema» può vedere solo: "
                                          "Comune di Crema")
            assert '<a href="/tenant/crema">' in body and "Tributi" not in body and "capannori" not in body

            status, body, _ = _ask(port, context, "/", "provider")  # not listed: every comune
            assert status == 200 and 'id="tenant-crema"' in body and 'id="tenant-capannori"' in body
            assert _ask(port, context, "/tenant/capannori", "provider")[0] == 200

            status, body, _ = _ask(port, context, "/tenant/nowhere", "provider")
            assert (status, body) == (404, "not found: try /metrics, /healthz, /ready, /\n")
    finally:
        built.state.close()


def test_the_agent_gives_root_to_the_status_page(tmp_path) -> None:
    from custode.agent.runtime import Agent

    agent = Agent(load_text(f"agent:\n  data_dir: {tmp_path}\n", source="c.yaml"), listen=f"127.0.0.1:{free_port()}")
    try:
        router = agent.router()
        assert router.owner("GET", "/") == "status_page" and router.owner("GET", "/tenant/default") == "status_page"
        assert router.owner("GET", "/metrics") == "core"
    finally:
        agent.state.close()


# --- in a real browser -----------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_the_page_in_headless_chromium_on_a_phone(tmp_path, pin_clock) -> None:
    binary = require_binary("chromium", "chromium")  # fails, never skips: scripts/test.sh installs it
    built = shot.build_scenario(tmp_path / "scenario")
    pin_clock(NOW, running=False)
    env = host_env()  # Chromium on the machine's own clock: the page's times come from the server
    try:
        with shot.serve(built) as url:
            dom = shot.dump_dom(url + "/", binary, env)
            picture = shot.screenshot(url + "/tenant/crema", tmp_path / "status-page.png", shot.PHONE, binary, env)
    finally:
        built.state.close()
    assert "<title>Custode</title>" in dom and 'name="viewport"' in dom
    text = words(dom)
    assert "PROBLEMI Comune di Capannori PROBLEMI Comune di Crema" in text
    assert "FALLITO" in text and "MANCANTE" in text and "MAI ESEGUITO" in text and "SUPERATO" in text
    assert "<script" not in dom
    assert _png_size(picture) == shot.PHONE
    assert picture.stat().st_size > 20_000  # a rendered page, not a blank screen
    if ARTIFACTS.is_dir():
        shutil.copyfile(picture, ARTIFACTS / "status-page.png")


def test_hostile_names_stay_text_in_the_browser(tmp_path, pin_clock) -> None:
    binary = require_binary("chromium", "chromium")
    pin_clock(NOW, running=False)
    loaded = load_text("tenants:\n  crema: {name: \"<img src=x onerror=\\\"document.title='pwned'\\\">\"}\n"
                       "backups:\n  expected:\n    crema:\n"
                       "      - {name: \"<script>document.title='pwned'</script>\", schedule: '0 2 * * *'}\n")
    state = State(tmp_path / "state.db")
    try:
        with shot.serve(shot.Scenario(loaded, state)) as url:
            dom = shot.dump_dom(url + "/tenant/crema", binary, host_env())
    finally:
        state.close()
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None  # the scripts would have set it to "pwned"; it still reads the tenant's name
    assert html.unescape(title.group(1)) == "Custode · <img src=x onerror=\"document.title='pwned'\">"
    assert "<script" not in dom and "<img" not in dom
    assert "<script>document.title='pwned'</script>" in words(dom)


def test_the_readme_picture_is_there_at_the_scripts_size() -> None:
    """docs/status-page.png is what ``scripts/status_page_screenshot.py`` makes (regenerate it with that)."""
    readme_picture = Path(__file__).parent.parent / "docs" / "status-page.png"
    assert _png_size(readme_picture) == shot.README
