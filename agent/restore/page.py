"""The human-readable page of a restore-test certificate, in HTML and in plain text.

The reader is a comune's IT referent or secretary, not a sysadmin: the page
leads with the verdict (SUPERATO / NON SUPERATO), puts what went wrong right
under it in plain words, then says which backup was tested, when, by what, how
much of it, and ends with the certificate id and the SHA-256 of its JSON so an
auditor can match the page to the record in Custode's audit log.

Both renderers read one neutral :class:`_Page` built from the certificate, so
the HTML file and the e-mail body can never say different things. The HTML is
a single self-contained file (inline CSS, no script, no external resource) that
prints on A4; every value coming from the certificate is escaped, because file
names are whatever users typed (``<``, ``&``, quotes, control characters).
"""

from __future__ import annotations

import html
import textwrap
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from custode.agent.clock import ROME
from custode.agent.restore.model import FAILED_RESULTS, VERIFIED_RESULTS, FileResult, RestoreTrigger

MAX_OK_ROWS = 200
"""Rows of files that passed shown on the page; the JSON keeps them all, failures are always all shown."""
FAILED = FAILED_RESULTS
VERIFIED = VERIFIED_RESULTS
DASH = "—"

_IT = {
    "title": "Certificato di prova di ripristino del backup",
    "tenant": "Ente", "verdict_label": "Esito della prova", "passed": "SUPERATO", "failed": "NON SUPERATO",
    "passed_sentence": "Il backup «{set}» è risultato completo e coerente alla data del {when} per il campione "
                       "verificato: {checked} file, scelti a caso, sono stati ripristinati e sono risultati integri.",
    "failed_sentence": "Il backup «{set}» NON può essere considerato affidabile: {what}. "
                       "I dettagli sono elencati qui sotto.",
    "failed_files": "{n} {files} con problemi su {checked} controllati",
    "failed_errors": "la prova ha riportato {n} {errors}",
    "failed_unknown": "la prova non ha potuto certificare il backup",
    "file": ("file", "file"), "error": ("errore", "errori"),
    "problems": "Problemi riscontrati", "errors": "Errori riportati dalla prova",
    "bad_files": "File con problemi",
    "backup": "Backup verificato", "set": "Insieme di backup", "backend": "Sistema di backup",
    "repository": "Archivio di backup", "source": "Cartella di origine", "host": "Server",
    "this_host": "il server dove gira Custode ({name})", "snapshot_id": "Copia (snapshot) verificata",
    "snapshot_time": "Data del backup", "snapshot_paths": "Contenuto del backup",
    "test": "Svolgimento della prova", "started": "Inizio", "finished": "Fine", "duration": "Durata",
    "run_by": "Eseguita da", "run_by_value": "Custode {version} sul server {hostname} (utente {user}), {trigger}",
    "scheduled": "avvio automatico programmato", "manual": "avvio manuale",
    "sample": "Campione verificato", "checked": "File controllati",
    "checked_value": "{checked} su {total} file presenti nell'origine ({bytes})",
    "outcome": "Esito dei file", "outcome_value": "integri {ok} · con problemi {bad} · non confrontabili {skipped}",
    "selection": "Scelta del campione",
    "selection_value": "{selected} file ({bytes}) scelti a caso tra tutte le dimensioni ed età, su {requested} "
                       "richiesti, entro un limite di {budget}, compresi i {recent} modificati più di recente "
                       "(seme casuale {seed})",
    "restored": "Dati ripristinati", "restored_value": "{bytes} in {seconds}", "throughput": "Velocità di ripristino",
    "tools": "Strumenti e versioni", "warnings": "Avvertenze",
    "files": "Elenco dei file controllati", "col_path": "File", "col_size": "Dimensione",
    "col_mtime": "Ultima modifica",
    "col_stratum": "Scelto come", "col_result": "Esito", "col_detail": "Spiegazione",
    "no_files": "Nessun file è stato controllato.",
    "more": "… e altri {n} file integri: l'elenco completo è nel certificato JSON.",
    "legend": "Significato degli esiti",
    "detail": "Dettaglio tecnico",
    "identity": "Identificazione del certificato", "cert_id": "Identificativo", "cert_sha": "Impronta SHA-256 del JSON",
    "identity_note": "Questa pagina riassume il certificato in formato JSON registrato nel registro di audit di "
                     "Custode: l'identificativo permette di ritrovarlo e l'impronta SHA-256 di verificare che non "
                     "sia stato modificato.",
    "times_note": "Date e orari in ora italiana (Europe/Rome).",
    "generated": "Generato da Custode {version} ({kind}, versione {format}).",
    "results": {
        "ok": ("integro", "la copia ripristinata è identica all'originale"),
        "ok_manifest": ("integro (secondo il backup)",
                        "il file è stato modificato dopo il backup; la copia ripristinata corrisponde a quanto "
                        "registrato dal backup stesso"),
        "mismatch": ("DIFFERENTE", "la copia ripristinata è diversa dall'originale, che non è cambiato dopo il "
                                   "backup: il backup è danneggiato"),
        "not_restored": ("NON RIPRISTINATO", "il programma di backup non è riuscito a ripristinare il file"),
        "missing": ("ASSENTE DAL BACKUP", "il file esisteva già prima del backup, ma il backup non lo contiene"),
        "skipped": ("non confrontabile", "non è stato possibile confrontarlo (non è un errore)"),
    },
    "backends": {"restic": "restic", "borg": "BorgBackup",
                 "mirror": "copia speculare su cartella condivisa o NAS",
                 "command": "comando di ripristino configurato (ad es. Windows Server Backup, Veeam)"},
    "sizes": {"small": "piccolo", "medium": "medio", "large": "grande", "huge": "molto grande"},
    "ages": {"new": "ultimi 30 giorni", "recent": "ultimo anno", "old": "più vecchio di un anno",
             "after-backup": "modificato dopo il backup"},
    "most_recent": "tra i più recenti",
}

_EN = {
    "title": "Backup restore test certificate",
    "tenant": "Organisation", "verdict_label": "Test result", "passed": "PASSED", "failed": "FAILED",
    "passed_sentence": "The backup \u201c{set}\u201d was found complete and consistent as of {when} for the sample "
                       "checked: {checked} randomly chosen files were restored and found intact.",
    "failed_sentence": "The backup \u201c{set}\u201d can NOT be trusted: {what}. The details are listed below.",
    "failed_files": "{n} of the {checked} {files} checked could not be restored correctly",
    "failed_errors": "the test reported {n} {errors}",
    "failed_unknown": "the test could not certify the backup",
    "file": ("file", "files"), "error": ("error", "errors"),
    "problems": "Problems found", "errors": "Errors reported by the test", "bad_files": "Files with problems",
    "backup": "Backup tested", "set": "Backup set", "backend": "Backup system", "repository": "Backup repository",
    "source": "Source folder", "host": "Server", "this_host": "the server running Custode ({name})",
    "snapshot_id": "Snapshot tested", "snapshot_time": "Backup date", "snapshot_paths": "Backup contents",
    "test": "How the test ran", "started": "Started", "finished": "Finished", "duration": "Duration",
    "run_by": "Run by", "run_by_value": "Custode {version} on server {hostname} (user {user}), {trigger}",
    "scheduled": "scheduled automatic run", "manual": "run on demand",
    "sample": "Sample checked", "checked": "Files checked",
    "checked_value": "{checked} of the {total} files in the source ({bytes})",
    "outcome": "File results", "outcome_value": "intact {ok} · with problems {bad} · not comparable {skipped}",
    "selection": "Sample selection",
    "selection_value": "{selected} files ({bytes}) chosen at random across all sizes and ages, of {requested} "
                       "requested, within a budget of {budget}, including the {recent} most recently changed "
                       "(random seed {seed})",
    "restored": "Data restored", "restored_value": "{bytes} in {seconds}", "throughput": "Restore speed",
    "tools": "Tools and versions", "warnings": "Warnings",
    "files": "List of the files checked", "col_path": "File", "col_size": "Size", "col_mtime": "Last modified",
    "col_stratum": "Chosen as", "col_result": "Result", "col_detail": "Explanation",
    "no_files": "No file was checked.",
    "more": "… and {n} more intact files: the full list is in the JSON certificate.",
    "legend": "What the results mean",
    "detail": "Technical detail",
    "identity": "Certificate identification", "cert_id": "Identifier", "cert_sha": "SHA-256 of the JSON",
    "identity_note": "This page summarises the JSON certificate recorded in Custode's audit log: the identifier "
                     "finds it and the SHA-256 proves it has not been altered.",
    "times_note": "Dates and times in Italian local time (Europe/Rome).",
    "generated": "Generated by Custode {version} ({kind}, format version {format}).",
    "results": {
        "ok": ("intact", "the restored copy is identical to the original"),
        "ok_manifest": ("intact (per the backup)", "the file changed after the backup; the restored copy matches "
                                                   "what the backup itself recorded"),
        "mismatch": ("DIFFERENT", "the restored copy differs from the original, which has not changed since the "
                                  "backup: the backup is damaged"),
        "not_restored": ("NOT RESTORED", "the backup program could not restore the file"),
        "missing": ("NOT IN BACKUP", "the file existed before the backup, but the backup does not contain it"),
        "skipped": ("not comparable", "it could not be compared (this is not a failure)"),
    },
    "backends": {"restic": "restic", "borg": "BorgBackup", "mirror": "mirrored copy on a share or NAS",
                 "command": "configured restore command (e.g. Windows Server Backup, Veeam)"},
    "sizes": {"small": "small", "medium": "medium", "large": "large", "huge": "very large"},
    "ages": {"new": "last 30 days", "recent": "last year", "old": "older than a year",
             "after-backup": "changed after the backup"},
    "most_recent": "among the most recent",
}


@dataclass
class _FileRow:
    path: str
    size: str
    mtime: str
    stratum: str
    result: str
    label: str
    explanation: str
    """Empty for intact files: the legend explains them once instead of 200 times."""

    @property
    def failed(self) -> bool:
        return self.result in FAILED or self.result not in _IT["results"]


@dataclass
class _Page:
    """Everything both renderers print, already localised and formatted (not yet escaped)."""

    lang: str
    title: str
    tenant: str | None
    passed: bool
    verdict: str
    sentence: str
    errors: list[str]
    bad_files: list[_FileRow]
    sections: list[tuple[str, list[tuple[str, str]]]]
    warnings: list[str]
    files: list[_FileRow]
    more: str | None
    legend: list[tuple[str, str]]
    identity: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    t: dict = field(default_factory=dict)


def render_html(certificate: dict, language: str = "it", tenant_name: str | None = None) -> str:
    """A self-contained, printable HTML page for the comune (Italian unless ``language`` is "en")."""
    return _html(_build(certificate, language, tenant_name))


def render_text(certificate: dict, language: str = "it", tenant_name: str | None = None) -> str:
    """The same content as plain text, for the body of an e-mail."""
    return _text(_build(certificate, language, tenant_name))


# --- formatting ------------------------------------------------------------------------------------------------

def _visible(value: object) -> str:
    """Text safe to show: control, bidi-override and unencodable characters become visible escapes.

    A file name with a newline must not forge a line in the e-mail, one with
    U+202E must not display reversed, and a lone surrogate (an undecodable name)
    must not make the UTF-8 encoding of the whole page fail.
    """
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char == " " or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _number(value: object, lang: str, digits: int = 0) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    text = f"{value:,.{digits}f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "it" else text


def _size(value: object, lang: str) -> str:
    """Binary units as Windows shows them (KiB, MiB ...), one decimal."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DASH
    if abs(value) < 1024:
        return f"{_number(value, lang)} B"
    amount = float(value)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        amount /= 1024
        if abs(amount) < 1024 or unit == "PiB":
            return f"{_number(amount, lang, 1)} {unit}"
    raise AssertionError("unreachable")


def _when(value: object, lang: str) -> str:
    """An ISO timestamp in Rome local time: "23/11/2026 21:50" in Italian, "2026-11-23 21:50 CET" in English."""
    if not value:
        return DASH
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return _visible(value)
    if moment.tzinfo is None:  # the engine always writes UTC; a naive value can only mean that
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(ROME)
    return local.strftime("%d/%m/%Y %H:%M") if lang == "it" else local.strftime("%Y-%m-%d %H:%M %Z")


def _duration(seconds: object, lang: str) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return DASH
    if seconds < 60:
        return f"{_number(seconds, lang, 1)} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _cap(text: str) -> str:
    """A sentence that starts a table cell or follows a full stop starts with a capital."""
    return text[:1].upper() + text[1:]


def _plural(n: int, forms: tuple[str, str]) -> str:
    return forms[0] if n == 1 else forms[1]


def _stratum(value: object, t: dict) -> str:
    """ "small/new" -> "piccolo, ultimi 30 giorni"; unknown labels are shown as they are."""
    if not value:
        return DASH
    text = str(value)
    if text == "recent":
        return t["most_recent"]
    size, _, age = text.partition("/")
    if size in t["sizes"] and age in t["ages"]:
        return f"{t['sizes'][size]}, {t['ages'][age]}"
    return _visible(text)


# --- the neutral page --------------------------------------------------------------------------------------------

def _build(cert: dict, language: str, tenant_name: str | None) -> _Page:
    lang = "en" if str(language or "").lower().startswith("en") else "it"
    t = _EN if lang == "en" else _IT
    files = [f for f in cert.get("files") or [] if isinstance(f, dict)]
    rows = [_file_row(f, t, lang) for f in files]
    counts = Counter(row.result for row in rows)
    bad = [row for row in rows if row.failed]
    bad_paths = {row.path for row in bad}
    for path in cert.get("mismatches") or []:  # a mismatch without a file entry must still be named
        if _visible(path) not in bad_paths:
            bad.append(_FileRow(_visible(path), DASH, DASH, DASH, FileResult.MISMATCH,
                                t["results"][FileResult.MISMATCH][0], t["results"][FileResult.MISMATCH][1]))
    errors = [_visible(e) for e in cert.get("errors") or []]
    checked = cert.get("files_checked")
    checked = checked if isinstance(checked, int) else sum(counts[r] for r in VERIFIED + FAILED)
    passed = cert.get("passed") is True
    snapshot = cert.get("snapshot") or {}
    set_name = _visible(cert.get("set") or DASH)
    if passed:
        sentence = t["passed_sentence"].format(set=set_name, when=_when(snapshot.get("time"), lang), checked=checked)
    else:
        what = []
        if bad:
            what.append(t["failed_files"].format(n=len(bad), checked=max(checked, len(bad)),
                                                 files=_plural(max(checked, len(bad)), t["file"])))
        if errors:
            what.append(t["failed_errors"].format(n=len(errors), errors=_plural(len(errors), t["error"])))
        sentence = t["failed_sentence"].format(set=set_name, what="; ".join(what) or t["failed_unknown"])
    shown = [row for row in rows if not row.failed and row.result not in VERIFIED]
    intact = [row for row in rows if row.result in VERIFIED]
    more = None
    if len(intact) > MAX_OK_ROWS:
        more = t["more"].format(n=_number(len(intact) - MAX_OK_ROWS, lang))
    run_by = cert.get("run_by") or {}
    tenant = tenant_name or cert.get("tenant")  # the display name when the config has one, else the tenant id
    return _Page(
        lang=lang, title=t["title"], tenant=_visible(tenant) if tenant else None,
        passed=passed, verdict=t["passed"] if passed else t["failed"], sentence=sentence, errors=errors,
        bad_files=bad, sections=_sections(cert, t, lang, counts, checked), t=t,
        warnings=[_visible(w) for w in cert.get("warnings") or []],
        files=[row for row in rows if row.failed] + shown + intact[:MAX_OK_ROWS], more=more,
        legend=[(label, text) for result, (label, text) in t["results"].items() if counts[result]],
        identity=[(t["cert_id"], _visible(cert.get("id") or DASH)),
                  (t["cert_sha"], _visible(cert.get("sha256") or _digest(cert)))],
        notes=[t["times_note"], t["generated"].format(version=_visible(run_by.get("custode_version") or DASH),
                                                      kind=_visible(cert.get("kind") or DASH),
                                                      format=_visible(cert.get("version") or DASH))])


def _digest(cert: dict) -> str:
    """The audit record's digest when the certificate arrived without it (same definition as the engine's)."""
    from custode.agent.restore.engine import certificate_digest

    try:
        return certificate_digest(cert)
    except (TypeError, ValueError):
        return DASH


def _file_row(entry: dict, t: dict, lang: str) -> _FileRow:
    result = str(entry.get("result") or "")
    label, meaning = t["results"].get(result, (_visible(result or "?").upper(), ""))
    detail = entry.get("detail")
    explanation = "" if result in VERIFIED and not detail else meaning
    if detail:
        explanation = f"{explanation}. {t['detail']}: {_visible(detail)}" if explanation else _visible(detail)
    return _FileRow(path=_visible(entry.get("path") or DASH), size=_size(entry.get("size"), lang),
                    mtime=_when(entry.get("mtime"), lang), stratum=_stratum(entry.get("stratum"), t),
                    result=result, label=label, explanation=explanation)


def _sections(cert: dict, t: dict, lang: str, counts: Counter, checked: int) -> list[tuple[str, list]]:
    snapshot = cert.get("snapshot") or {}
    run_by = cert.get("run_by") or {}
    sample = cert.get("sample") or {}
    restore = cert.get("restore") or {}
    backend = str(cert.get("backend") or "")
    hostname = _visible(run_by.get("hostname") or DASH)
    trigger = run_by.get("trigger")
    backup = [
        (t["set"], _visible(cert.get("set") or DASH)),
        (t["backend"], t["backends"].get(backend, _visible(backend or DASH))),
        (t["repository"], _visible(cert.get("repository") or DASH)),
        (t["source"], _visible(cert.get("source") or DASH)),
        (t["host"], _visible(cert["host"]) if cert.get("host") else t["this_host"].format(name=hostname)),
        (t["snapshot_id"], _visible(snapshot.get("id") or DASH)),
        (t["snapshot_time"], _when(snapshot.get("time"), lang)),
    ]
    if snapshot.get("paths"):
        backup.append((t["snapshot_paths"], ", ".join(_visible(p) for p in snapshot["paths"])))
    test = [
        (t["started"], _when(cert.get("started_at"), lang)),
        (t["finished"], _when(cert.get("finished_at"), lang)),
        (t["duration"], _duration(cert.get("duration_seconds"), lang)),
        (t["run_by"], t["run_by_value"].format(
            version=_visible(run_by.get("custode_version") or DASH), hostname=hostname,
            user=_visible(run_by.get("user") or DASH),
            trigger=t.get(trigger, _visible(trigger or DASH)) if trigger in tuple(RestoreTrigger)
            else _visible(trigger or DASH))),
    ]
    throughput = restore.get("throughput_bytes_per_second")
    checked_rows = [
        (t["checked"], t["checked_value"].format(checked=_number(checked, lang),
                                                 total=_number(sample.get("source_files"), lang),
                                                 bytes=_size(sample.get("source_bytes"), lang))),
        (t["outcome"], t["outcome_value"].format(ok=sum(counts[r] for r in VERIFIED),
                                                 bad=sum(counts[r] for r in FAILED),
                                                 skipped=counts[FileResult.SKIPPED])),
        (t["selection"], t["selection_value"].format(
            selected=_number(sample.get("selected"), lang), bytes=_size(sample.get("selected_bytes"), lang),
            requested=_number(sample.get("requested"), lang), budget=_size(sample.get("max_bytes"), lang),
            recent=_number(sample.get("recent"), lang), seed=_visible(sample.get("seed", DASH)))),
        (t["restored"], t["restored_value"].format(bytes=_size(restore.get("bytes"), lang),
                                                   seconds=_duration(restore.get("seconds"), lang))),
        (t["throughput"], f"{_size(throughput, lang)}/s" if isinstance(throughput, (int, float)) else DASH),
    ]
    tools = [(_visible(name), _visible(version or DASH)) for name, version in (cert.get("tools") or {}).items()]
    return [(t["backup"], backup), (t["test"], test), (t["sample"], checked_rows), (t["tools"], tools or
                                                                                  [(DASH, DASH)])]


# --- HTML --------------------------------------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 15mm 14mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; font-size: 10.5pt; color: #111;
       max-width: 200mm; margin: 0 auto; padding: 12px; line-height: 1.35; }
h1 { font-size: 17pt; margin: 0 0 4px; }
h2 { font-size: 12.5pt; margin: 18px 0 6px; border-bottom: 2px solid #333; padding-bottom: 2px; }
h3 { font-size: 11pt; margin: 10px 0 4px; }
.tenant { font-size: 12pt; margin: 0 0 8px; }
.verdict { border: 3px solid #333; padding: 10px 14px; margin: 12px 0; }
.verdict.passed { border-color: #1b7a3a; background: #e9f6ed; }
.verdict.failed { border-color: #b3001b; background: #fdebed; }
.verdict .label { margin: 0; font-size: 10pt; text-transform: uppercase; letter-spacing: .05em; }
.verdict .word { margin: 2px 0 6px; font-size: 22pt; font-weight: bold; }
.verdict.passed .word { color: #1b7a3a; }
.verdict.failed .word { color: #b3001b; }
.verdict .sentence { margin: 0; font-size: 11pt; }
.problems { border: 2px solid #b3001b; padding: 4px 12px 10px; margin: 12px 0; }
.problems h2 { color: #b3001b; border-color: #b3001b; }
.problems li { margin-bottom: 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 3px 6px; border-bottom: 1px solid #ccc; }
table.facts th { width: 30%; font-weight: normal; color: #444; }
table.files { font-size: 9pt; }
table.files thead th { background: #eee; border-bottom: 2px solid #333; }
.path, .mono { font-family: "DejaVu Sans Mono", Consolas, monospace; word-break: break-all; }
tr.bad td { background: #fdebed; }
tr.bad td.result { color: #b3001b; font-weight: bold; }
.num { white-space: nowrap; }
.more, .note { color: #444; font-size: 9.5pt; }
dl.legend dt { font-weight: bold; }
dl.legend dd { margin: 0 0 4px 16px; }
footer { margin-top: 18px; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  .verdict, .problems, tr.bad td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  thead { display: table-header-group; }
  tr, .verdict, dl.legend dd { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _facts(rows: list[tuple[str, str]]) -> list[str]:
    return (['<table class="facts">']
            + [f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in rows] + ["</table>"])


def _html(page: _Page) -> str:
    t = page.t
    state = "passed" if page.passed else "failed"
    out = ["<!DOCTYPE html>", f'<html lang="{page.lang}">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(page.title)}{_e(' – ' + page.tenant) if page.tenant else ''}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>", "<header>", f"<h1>{_e(page.title)}</h1>"]
    if page.tenant:
        out.append(f'<p class="tenant">{_e(t["tenant"])}: <strong>{_e(page.tenant)}</strong></p>')
    out += ["</header>", f'<section class="verdict {state}">', f'<p class="label">{_e(t["verdict_label"])}</p>',
            f'<p class="word">{_e(page.verdict)}</p>', f'<p class="sentence">{_e(page.sentence)}</p>', "</section>"]
    if page.errors or page.bad_files:
        out += ['<section class="problems">', f"<h2>{_e(t['problems'])}</h2>"]
        if page.errors:
            out += [f"<h3>{_e(t['errors'])}</h3>", "<ul>"] + [f'<li class="mono">{_e(e)}</li>' for e in page.errors]
            out.append("</ul>")
        if page.bad_files:
            out += [f"<h3>{_e(t['bad_files'])}</h3>", "<ul>"]
            out += [f'<li><span class="path">{_e(row.path)}</span>: <strong>{_e(row.label)}</strong> – '
                    f"{_e(row.explanation)}</li>" for row in page.bad_files]
            out.append("</ul>")
        out.append("</section>")
    for title, rows in page.sections:
        out += ["<section>", f"<h2>{_e(title)}</h2>"] + _facts(rows) + ["</section>"]
    if page.warnings:
        out += ["<section>", f"<h2>{_e(t['warnings'])}</h2>", "<ul>"]
        out += [f"<li>{_e(w)}</li>" for w in page.warnings] + ["</ul>", "</section>"]
    out += ["<section>", f"<h2>{_e(t['files'])}</h2>"]
    if page.files:
        out += ['<table class="files">', "<thead><tr>"]
        out += [f"<th>{_e(t[c])}</th>" for c in ("col_path", "col_size", "col_mtime", "col_stratum", "col_result",
                                                  "col_detail")]
        out += ["</tr></thead>", "<tbody>"]
        for row in page.files:
            out.append(f'<tr class="{"bad" if row.failed else "good"}"><td class="path">{_e(row.path)}</td>'
                       f'<td class="num">{_e(row.size)}</td><td class="num">{_e(row.mtime)}</td>'
                       f"<td>{_e(row.stratum)}</td><td class=\"result\">{_e(row.label)}</td>"
                       f"<td>{_e(_cap(row.explanation))}</td></tr>")
        out += ["</tbody>", "</table>"]
    else:
        out.append(f"<p>{_e(t['no_files'])}</p>")
    if page.more:
        out.append(f'<p class="more">{_e(page.more)}</p>')
    if page.legend:
        out += [f"<h3>{_e(t['legend'])}</h3>", '<dl class="legend">']
        out += [f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in page.legend] + ["</dl>"]
    out += ["</section>", "<footer>", f"<h2>{_e(t['identity'])}</h2>"]
    out += ['<table class="facts">'] + [f'<tr><th>{_e(label)}</th><td class="mono">{_e(value)}</td></tr>'
                                        for label, value in page.identity] + ["</table>"]
    out += [f'<p class="note">{_e(t["identity_note"])}</p>']
    out += [f'<p class="note">{_e(note)}</p>' for note in page.notes] + ["</footer>", "</body>", "</html>", ""]
    return "\n".join(out)


# --- plain text --------------------------------------------------------------------------------------------------

def _wrap(text: str, indent: str = "", hang: int = 0, width: int = 78) -> list[str]:
    """Wrapped lines; ``hang`` extra spaces mark continuation lines of a "label: value" or list item."""
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=" " * (len(indent) + hang),
                         break_long_words=False, break_on_hyphens=False) or [indent]


def _heading(title: str) -> list[str]:
    return ["", title.upper(), "=" * len(title)]


def _text(page: _Page) -> str:
    t = page.t
    out = [page.title.upper()]
    if page.tenant:
        out.append(f"{t['tenant']}: {page.tenant}")
    out += ["", f"{t['verdict_label'].upper()}: {page.verdict}"] + _wrap(page.sentence)
    if page.errors or page.bad_files:
        out += _heading(t["problems"])
        if page.errors:
            out.append(f"{t['errors']}:")
            for error in page.errors:
                out += _wrap(error, "- ")
        if page.bad_files:
            out.append(f"{t['bad_files']}:")
            for row in page.bad_files:
                out += [f"- {row.path}"] + _wrap(f"{row.label}: {row.explanation}", "    ")
    for title, rows in page.sections:
        out += _heading(title)
        for label, value in rows:
            out += _wrap(f"{label}: {value}", hang=2)
    if page.warnings:
        out += _heading(t["warnings"])
        for warning in page.warnings:
            out += _wrap(warning, "- ")
    out += _heading(t["files"])
    if not page.files:
        out.append(t["no_files"])
    for row in page.files:
        out.append(f"[{row.label}] {row.path}")
        out += _wrap(f"{row.size}, {t['col_mtime'].lower()} {row.mtime}, {t['col_stratum'].lower()}: "
                     f"{row.stratum}" + (f". {_cap(row.explanation)}" if row.explanation else ""), "    ")
    if page.more:
        out.append(page.more)
    if page.legend:
        out += ["", f"{t['legend']}:"]
        for label, text in page.legend:
            out += _wrap(f"{label}: {text}", "- ")
    out += _heading(t["identity"])
    out += [f"{label}: {value}" for label, value in page.identity]
    out += [""] + _wrap(t["identity_note"])
    for note in page.notes:
        out += _wrap(note)
    return "\n".join(out) + "\n"
