"""The report's network section: SNMP devices and service probes, figures against the hand-worked scenario.

The scenario (tests/network_scenario.py) adds Vaiano's switch, firewall, UPS
and three probes to the report scenario's quarter, written through the farm
history, the incidents and the probe store; these tests build the report from
the state DB and compare every figure, check that the devices left the
servers section, test the light's rules on hand-made records, and render the
section in HTML, CSV and PDF.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import zipfile
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from network_scenario import PERIOD_END, fill_network, load_network_config, network_config
from report_scenario import NOW, fill_quarter

from custode.agent.blackbox.store import ProbeState, add_to_day
from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.reports import data
from custode.agent.reports.csvfiles import FILES, NETWORK_FILES
from custode.agent.reports.data import build_report
from custode.agent.reports.document import DeviceRecord, Light, NetworkEvent, NetworkSection, ProbeRecord, Report
from custode.agent.reports.mail import Attached, compose
from custode.agent.reports.pdf import weasyprint_installed
from custode.agent.reports.render import html_text, render
from custode.agent.state import State

VAIANO = "vaiano"
SWITCH, FIREWALL, UPS = "vaiano-sw-core", "vaiano-fw01", "vaiano-ups01"
PORTAL, INTERNET, HALLEY = "vaiano-portale", "vaiano-internet", "vaiano-halley-cloud"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    """The report scenario's quarter and the network's, in one state DB the reports only read."""
    config = load_network_config()
    state = State(tmp_path_factory.mktemp("network") / "state.db")
    servers = fill_quarter(state, config)
    expected = fill_network(state, config)
    yield config, state, servers, expected
    state.close()


@pytest.fixture(scope="module")
def report(scenario) -> Report:
    config, state, _, _ = scenario
    return build_report(config, state, VAIANO, "quarterly", "2026Q4", NOW)


@pytest.fixture
def expected(scenario) -> dict[str, Any]:
    return scenario[3]


def _events(events: tuple[NetworkEvent, ...]) -> list[tuple[Any, ...]]:
    return [(e.start, e.end, e.seconds) for e in events]


# --- the builder ----------------------------------------------------------------------------------------

def test_devices_leave_the_servers_section_and_its_lights(report: Report, scenario) -> None:
    _, _, servers, _ = scenario
    assert [s.host for s in report.servers.servers] == ["vaiano-lnx01", "vaiano-srv01"]
    assert [(o.host, o.start) for o in report.servers.outages] == \
           [(o["host"], o["start"]) for o in servers["servers"]["outages"]], "the firewall's outage is the network's"
    lights = {light.area: light for light in report.summary}
    assert lights["availability"].values["outages"] == 2 and lights["availability"].values["servers"] == 2
    assert [light.area for light in report.summary][-1] == "network"
    assert {area: str(light.light) for area, light in lights.items() if area != "network"} == servers["lights"]


def test_every_device_figure(report: Report, expected: dict) -> None:
    want = expected["devices"]
    devices = {d.host: d for d in report.network.devices}
    assert list(devices) == [FIREWALL, SWITCH, UPS]
    for host, device in devices.items():
        assert (device.role, device.site) == want["labels"][host], host
        assert device.description == want["descriptions"][host], host
        assert device.availability_percent == pytest.approx(want["availability"][host], abs=1e-3), host
        assert device.days_with_data == 92, host
        assert _events(device.outages) == want["outages"].get(host, []), host
        assert _events(device.interface_downs) == want["interface_downs"].get(host, []), host
        assert list(device.reboots) == want["reboots"].get(host, []), host
        assert [(e.start, e.end, e.seconds, e.detail) for e in device.ups_events] == want["ups_events"].get(host, [])
    switch, ups = devices[SWITCH], devices[UPS]
    assert len(switch.description or "") == 80 and "\n" not in (switch.description or "")
    assert switch.interface_down_seconds == want["interface_total_minutes"] * 60
    assert switch.interface_down_longest_seconds == want["interface_longest_minutes"] * 60
    assert {e.detail for e in switch.interface_downs} == {"Gi1/0/48 (uplink fibra)"}, "not the missing Gi1/0/52"
    assert switch.interface_downs[-1].end is None, "still down at midnight of 31 December"
    assert ups.ups_seconds == want["ups_total_minutes"] * 60 and devices[FIREWALL].outage_seconds == 12 * 3600
    assert devices[FIREWALL].availability_percent == pytest.approx(99.457, abs=1e-3)  # 366 of 368 polls


def test_every_probe_figure(report: Report, expected: dict) -> None:
    probes = {p.name: p for p in report.network.probes}
    assert list(probes) == [HALLEY, INTERNET, PORTAL]
    for name, probe in probes.items():
        want = expected["probes"][name]
        assert (probe.kind, probe.target, probe.probes, probe.successes) == \
               (want["kind"], want["target"], want["probes"], want["successes"]), name
        assert probe.availability_percent == pytest.approx(want["availability"], abs=1e-3), name
        assert probe.latency_avg_seconds == pytest.approx(want["latency_avg"], abs=1e-4), name
        assert probe.latency_median_seconds == pytest.approx(want["latency_median"]), name
        assert probe.latency_max_seconds == pytest.approx(want["latency_max"]), name
        assert probe.slow_days == want["slow_days"], name
        assert probe.cert_expires_at == want["cert_expires_at"], name
        assert probe.cert_days_left == want["cert_days_left"], name
        assert probe.errors == want["errors"], name
        assert _events(probe.downs) == want["downs"], name
    portal = probes[PORTAL]
    assert portal.latency_avg_seconds == pytest.approx(0.2239, abs=1e-4)  # 494.4 s over 2,208 probes
    assert len(portal.days) == 92 and len(probes[HALLEY].days) == 61, "the platform is probed from 1 November"
    renewed = [d for d in portal.days if d.day == date(2026, 10, 30)][0]
    assert renewed.cert_expires_at == datetime(2026, 11, 5, tzinfo=ROME), "the old certificate before 31 October"
    assert (PERIOD_END + timedelta(days=9)).date() == date(2027, 1, 10)


def test_the_network_light_and_its_figures(report: Report, expected: dict) -> None:
    light = next(s for s in report.summary if s.area == "network")
    want = dict(expected["light"])
    assert str(light.light) == want.pop("light")
    assert light.values == want
    assert report.network.watched is True and report.empty is False


def test_the_json_form_has_the_network_as_plain_data(report: Report) -> None:
    document = json.loads(json.dumps(report.as_json()))
    firewall = document["network"]["devices"][0]
    assert firewall["host"] == FIREWALL and firewall["outages"][0]["start"] == "2026-11-18T06:00:00+01:00"
    assert document["network"]["probes"][0]["cert_expires_at"] == "2026-12-28T12:00:00+01:00"


def test_a_period_still_running_is_judged_up_to_now(scenario) -> None:
    config, state, _, _ = scenario
    now = datetime(2026, 12, 1, 9, 30, tzinfo=ROME)
    report = build_report(config, state, VAIANO, "quarterly", "2026Q4", now)
    devices = {d.host: d for d in report.network.devices}
    assert [e.end for e in devices[SWITCH].interface_downs][-1] == datetime(2026, 11, 30, 11, 10, tzinfo=ROME)
    assert len(devices[UPS].ups_events) == 2
    probes = {p.name: p for p in report.network.probes}
    assert probes[HALLEY].cert_days_left == pytest.approx(27 + 2.5 / 24, abs=0.01), "from now to 28 December 12:00"
    [_, open_now] = probes[INTERNET].downs
    assert open_now.end is None and open_now.seconds == 30 * 60, "down since 09:00, judged at 09:30"
    assert probes[PORTAL].cert_days_left == pytest.approx(39 + 14.5 / 24, abs=0.01)


def test_a_profile_without_monitoring_says_the_section_is_not_bought(scenario) -> None:
    _, state, _, _ = scenario
    text = network_config().replace("    profile: ENTERPRISE\n", "    profile: BACKUPS\n").replace(
        "  MINIMAL:", "  BACKUPS: {features: [backup_control]}\n  MINIMAL:")
    config = load_text(text).model
    report = build_report(config, state, VAIANO, "quarterly", "2026Q4", NOW)
    assert report.network == NetworkSection(watched=True)
    light = next(s for s in report.summary if s.area == "network")
    assert light.light is Light.NONE
    html = html_text(report)
    assert 'id="network"' in html and html.count("Questo servizio non è compreso nel contratto del comune") >= 2


def test_a_comune_without_devices_or_probes_has_no_network_light(scenario) -> None:
    config, state, _, _ = scenario
    report = build_report(config, state, "vuoto", "quarterly", "2026Q4", NOW)
    assert report.network == NetworkSection() and report.empty is True
    assert [light.area for light in report.summary] == ["backups", "availability", "security", "service_levels",
                                                        "updates", "capacity"]
    assert 'id="network"' not in html_text(report)


def test_probe_days_alone_make_the_report_not_empty(tmp_path) -> None:
    """A comune whose only data is a probe (a hosted platform it pays for) gets figures, not "no data"."""
    config = load_network_config()
    state = State(tmp_path / "state.db")
    with state.transaction() as db:
        add_to_day(db, ProbeState("solo", "vuoto", "http", "https://solo.example.it/"),
                   datetime(2026, 11, 2, 10, tzinfo=ROME).timestamp(), True, False, 0.4, None, None)
    report = build_report(config, state, "vuoto", "quarterly", "2026Q4", NOW)
    state.close()
    assert report.empty is False and [p.name for p in report.network.probes] == ["solo"]
    assert next(s for s in report.summary if s.area == "network").light is Light.GREEN


# --- the light's rules on hand-made records -------------------------------------------------------------

def _device(percent: float | None = 100.0, **events: Any) -> DeviceRecord:
    return DeviceRecord("sw", "switch", None, "Cisco", percent, 92, **events)


def _probe(percent: float | None = 100.0, days_left: float | None = None, **fields: Any) -> ProbeRecord:
    expires = None if days_left is None else PERIOD_END + timedelta(days=days_left)
    return ProbeRecord("portale", "http", "https://x.example.it/", percent, 100, 100, 0.2, 0.2, 0.3, 0, expires,
                       days_left, **fields)


def _light(*records: DeviceRecord | ProbeRecord, bought: bool = True) -> Light:
    section = NetworkSection(tuple(r for r in records if isinstance(r, DeviceRecord)),
                             tuple(r for r in records if isinstance(r, ProbeRecord)), watched=True)
    return data.network_light(section, bought).light


def test_network_light_rules() -> None:
    event = NetworkEvent("sw", "interface_down", datetime(2026, 11, 2, tzinfo=ROME), None, 60.0, "down")
    assert _light() is Light.NONE
    assert _light(_device(), bought=False) is Light.NONE
    assert _light(_device(), _probe()) is Light.GREEN
    assert _light(_device(None)) is Light.GREEN, "a device with events only, no poll: nothing to judge it on"
    assert _light(_device(97.99)) is Light.RED and _light(_probe(97.99)) is Light.RED
    assert _light(_device(98.0)) is Light.YELLOW and _light(_probe(99.49)) is Light.YELLOW
    assert _light(_device(99.5), _probe(99.5)) is Light.GREEN
    assert _light(_probe(days_left=6.99)) is Light.RED and _light(_probe(days_left=-1)) is Light.RED
    assert _light(_probe(days_left=7)) is Light.YELLOW and _light(_probe(days_left=20.9)) is Light.YELLOW
    assert _light(_probe(days_left=21)) is Light.GREEN
    assert _light(_device(interface_downs=(event,))) is Light.YELLOW
    assert _light(_device(ups_events=(replace(event, kind="ups"),))) is Light.YELLOW
    assert _light(_device(outages=(replace(event, kind="outage"),))) is Light.YELLOW
    assert _light(_probe(downs=(replace(event, kind="probe_down", subject="portale"),))) is Light.YELLOW
    assert _light(_device(reboots=(datetime(2026, 11, 2, tzinfo=ROME),))) is Light.GREEN, "reboots are listed only"


# --- rendered ---------------------------------------------------------------------------------------------

def test_the_html_has_the_network_section_a_referent_reads(report: Report) -> None:
    html = render(report, "html").content.decode("utf-8")
    for expected in ('<a href="#network">Rete e servizi online</a>', 'id="network"',
                     "Dispositivi di rete: 3; disponibilità più bassa 99,46% (vaiano-fw01).",
                     "Servizi controllati: 3; disponibilità più bassa 99,68% (vaiano-internet).",
                     "Interruzioni dei dispositivi: 1; interfacce sorvegliate cadute: 3; eventi dei gruppi di "
                     "continuità: 3; interruzioni dei servizi: 3.",
                     "Primo certificato in scadenza: vaiano-halley-cloud, scaduto da 3 giorni.",
                     # devices: the switch's description, interfaces, reboot; the UPS's events
                     "Cisco IOS Software, C2960X Software", "3 (4 h 45 min); la più lunga 2 h", "1 (30 ott)",
                     "3 (1 h 25 min)", "1 (12 h)", "99,46%",
                     # probes: latency, certificates, the commonest error
                     "224 ms / 200 ms", "47 ms / 15 ms", "https://halley.example.it/login",
                     "10 gennaio 2027 (tra 9 giorni dalla fine del periodo)", "28 dicembre 2026 (scaduto da 3 giorni)",
                     "errore più frequente: connection timed out (3)",
                     # events
                     "interfaccia Gi1/0/48 (uplink fibra) non attiva", "a batteria, batteria scarica",
                     "dispositivo non raggiungibile", "servizio non raggiungibile", "ancora in corso",
                     "Gruppo di continuità (UPS)", "network_devices.csv"):
        assert expected in html, expected
    summary_rows = html.split('<table class="summary">')[1].split("</table>")[0]
    assert summary_rows.count("<tr>") == 7 and "Rete e servizi online" in summary_rows
    assert html.count('class="light light-red"') >= 1


def test_an_english_report_has_the_network_in_english(report: Report) -> None:
    html = render(replace(report, language="en"), "html").content.decode("utf-8")
    for expected in ("Network and online services", "Network devices: 3; lowest availability 99.46% (vaiano-fw01).",
                     "expired 3 days ago", "9 days after the end of the period", "on battery, battery low"):
        assert expected in html, expected
    assert "Dispositivi di rete" not in html


def test_the_mail_names_the_network_light(report: Report) -> None:
    _, text = compose(report, [Attached("rapporto.pdf", "report")])
    assert "- Rete e servizi online (dispositivi, portali, certificati): richiede attenzione" in text
    _, english = compose(replace(report, language="en"), [Attached("report.pdf", "report")])
    assert "- Network and online services (devices, portals, certificates): needs attention" in english


def _rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def test_the_csv_zip_holds_the_network_files(report: Report) -> None:
    archive = zipfile.ZipFile(io.BytesIO(render(report, "csv").content))
    assert set(archive.namelist()) == {"LEGGIMI.txt", *FILES, *NETWORK_FILES}
    assert "probes_daily.csv: ogni servizio controllato giorno per giorno" in archive.read("LEGGIMI.txt").decode()
    devices = {row["host"]: row for row in _rows(archive, "network_devices.csv")}
    assert devices[SWITCH]["interface_downs"] == "3" and devices[SWITCH]["interface_down_seconds"] == "17100"
    assert devices[SWITCH]["rebooted_at"] == "2026-10-30T03:12:00+01:00"
    assert devices[FIREWALL]["availability_percent"] == "99.46" and devices[UPS]["ups_seconds"] == "5100"
    assert devices[UPS]["site"] == "" and devices[UPS]["role"] == "ups"
    events = _rows(archive, "network_events.csv")
    assert len(events) == 1 + 3 + 3 + 3
    assert {e["kind"] for e in events} == {"outage", "interface_down", "ups", "probe_down"}
    assert [e for e in events if e["end"] == ""][0]["detail"] == "Gi1/0/48 (uplink fibra)"
    probes = {row["probe"]: row for row in _rows(archive, "probes.csv")}
    assert probes[PORTAL]["latency_avg_ms"] == "223.91" and probes[PORTAL]["cert_days_left"] == "9"
    assert probes[HALLEY]["cert_days_left"] == "-3.5" and probes[INTERNET]["cert_expires_at"] == ""
    daily = _rows(archive, "probes_daily.csv")
    assert len(daily) == 92 + 92 + 61
    slow = [r for r in daily if r["probe"] == PORTAL and r["day"] == "2026-12-10"][0]
    assert (slow["probes"], slow["successes"], slow["slow"], slow["latency_avg_ms"]) == ("24", "24", "6", "525")
    attachments = render(report, "html").attachments
    assert set(NETWORK_FILES) <= set(attachments)


def test_a_report_without_network_keeps_its_fixed_files(scenario) -> None:
    config, state, _, _ = scenario
    empty = build_report(config, state, "vuoto", "quarterly", "2026Q4", NOW)
    archive = zipfile.ZipFile(io.BytesIO(render(empty, "csv").content))
    assert set(archive.namelist()) == {"LEGGIMI.txt", *FILES}


@pytest.mark.skipif(not weasyprint_installed(), reason="WeasyPrint is not installed: pip install -e '.[reports]'")
def test_the_pdf_has_the_network_section(report: Report, tmp_path) -> None:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext is missing: apt-get install poppler-utils (scripts/test.sh installs it)")
    path = tmp_path / "report.pdf"
    path.write_bytes(render(report, "pdf").content)
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    for expected in ("Rete e servizi online", "Dispositivi di rete", "vaiano-sw-core", "Servizi controllati",
                     "vaiano-halley-cloud", "28 dicembre", "Interruzioni e anomalie", "Gruppo di continuità (UPS)"):
        assert expected in text, expected
