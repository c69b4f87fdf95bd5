"""Synology DSM notification e-mails about Hyper Backup tasks.

DSM sends one notification per event, in the DSM language, from templates the
administrator may edit (Control Panel > Notification > Advanced), optionally
with a ``[HOSTNAME]`` subject prefix. Observed title of a Hyper Backup event:
"Data backup task on host01 partially completed"; the body names the task
("Backup task [Daily] on NAS01 has completed", "Task name: Daily") and may list
destination, start time, duration and, on failure, the reason. Italian DSM says
"Attività di backup dei dati su NAS01 parzialmente completata", "L'attività di
backup [Daily] su NAS01 non è riuscita", "Nome attività", "Ora di inizio".

The signature is a task sentence with an outcome *and* DSM structure (a label
field, the DSM greeting/sign-off, a Synology sender, or a ``[HOST]`` subject
prefix), so a colleague writing "the Hyper Backup task 'Daily' failed" is not
taken for a report. ``job`` is the task name, ``host`` the NAS.
"""

from __future__ import annotations

import re
from datetime import timedelta

from custode.agent.backups.parsers._common import error_text, first_field, parse_datetime, parse_size
from custode.agent.backups.parsers._common import low_top as _low_top
from custode.agent.backups.parsers._common import read_fields as _read_fields
from custode.agent.backups.report import BackupReport, Status
from custode.agent.mail.message import MailMessage

SOFTWARE = "Synology Hyper Backup"
PRIORITY = 60

SCAN = 30_000  # body characters read once the signature matched
TOP = 10_000  # body characters the cheap signature test looks at
REPLY = re.compile(r"^\s*(?:re|r|rif|aw|sv|antw|odp)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
KEYS = ("backup task", "attività di backup", "attivita di backup", "integrity check", "controllo di integrit",
        "controllo integrit")

# A quoted or bracketed task name; ``NAME.format("n")`` names the groups nb, nq, nc, ng, ns.
NAME = (r"(?:\[(?P<{0}b>[^\]\n]{{1,80}})\]|\"(?P<{0}q>[^\"\n]{{1,80}})\"|“(?P<{0}c>[^”\n]{{1,80}})”"
        r"|«(?P<{0}g>[^»\n]{{1,80}})»|'(?P<{0}s>[^'\n]{{1,80}})')")
HOST = r"[\w][\w.-]{0,62}"

_EN_OUTCOME = (r"(?P<outcome>partially\s+completed|completed\s+with\s+warnings?|completed\s+successfully|"
               r"completed|complete|succeeded|finished(?:\s+with\s+warnings?)?|failed|unsuccessful|"
               r"not\s+successful|been\s+cancell?ed|cancell?ed|been\s+suspended|suspended|been\s+interrupted|"
               r"interrupted|been\s+partially\s+completed|been\s+completed|not\s+completed|did\s+not\s+complete)")
_EN_VERB = r"(?:has\s+|have\s+|was\s+|is\s+now\s+|is\s+)?"
_IT_OUTCOME = (r"(?P<outcome>(?:(?:è|e')\s+stat[ao]\s+)?parzialmente\s+completat[ao]|"
               r"(?:(?:è|e')\s+stat[ao]\s+)?completat[ao](?:\s+con\s+(?:successo|avvisi|errori))?|"
               r"non\s+(?:(?:è|e')\s+)?riuscit[ao]|non\s+(?:(?:è|e')\s+stat[ao]\s+)?completat[ao]|"
               r"(?:(?:è|e')\s+)?riuscit[ao]|(?:(?:è|e')\s+)?fallit[ao]|(?:(?:è|e')\s+stat[ao]\s+)?annullat[ao]|"
               r"(?:(?:è|e')\s+stat[ao]\s+)?interrott[ao]|(?:(?:è|e')\s+stat[ao]\s+)?sospes[ao]|"
               r"non\s+(?:(?:è|e')\s+)?andat[ao]\s+a\s+buon\s+fine|"
               r"terminat[ao](?:\s+con\s+(?:successo|avvisi|errori))?)")

_TASK_KIND = r"(?P<kind>data\s+backup\s+task|backup\s+task|(?:backup\s+)?integrity\s+check(?:\s+task)?)"
_TASK_KIND_IT = (r"(?P<kind>(?:l['’])?attivit[àa]\s+di\s+backup(?:\s+dei\s+dati)?|(?:il\s+)?controllo\s+(?:di\s+)?"
                 r"integrit[àa](?:\s+del\s+backup)?)")
_EN_SENTENCES = (
    re.compile(_TASK_KIND + r"\s+" + NAME.format("n") + r"(?:\s+on\s+(?P<host>" + HOST + r"))?\s+" + _EN_VERB
               + _EN_OUTCOME + r"\b", re.IGNORECASE),
    re.compile(_TASK_KIND + r"\s+on\s+(?P<host>" + HOST + r")\s+" + _EN_VERB + _EN_OUTCOME + r"\b", re.IGNORECASE),
    re.compile(r"your\s+backup\s+task\s+(?P<nu>[^\n]{1,80}?)\s+(?:is\s+now\s+complete|has\s+been\s+completed|"
               r"(?P<outcome>has\s+failed|failed|was\s+partially\s+completed|is\s+now\s+partially\s+complete))",
               re.IGNORECASE),
    re.compile(r"(?P<kind>backup\s+task)\s+(?!on\s)(?P<nu>[^\n\[\]\"]{1,80}?)(?:\s+on\s+(?P<host>" + HOST + r"))?\s+"
               + _EN_VERB + _EN_OUTCOME + r"\b", re.IGNORECASE),
)
_IT_SENTENCES = (
    re.compile(_TASK_KIND_IT + r"\s+" + NAME.format("n") + r"(?:\s+su\s+(?P<host>" + HOST + r"))?\s+"
               + _IT_OUTCOME, re.IGNORECASE),
    re.compile(_TASK_KIND_IT + r"\s+su\s+(?P<host>" + HOST + r")\s+" + _IT_OUTCOME, re.IGNORECASE),
    re.compile(r"(?P<kind>(?:l['’])?attivit[àa]\s+di\s+backup)\s+(?!su\s|dei\s)(?P<nu>[^\n\[\]\"]{1,80}?)"
               r"(?:\s+su\s+(?P<host>" + HOST + r"))?\s+" + _IT_OUTCOME, re.IGNORECASE),
)

LABELS = {
    "task": ("task name", "backup task", "task", "nome attività", "attività", "attività di backup", "nome task",
             "job", "nome dell'attività"),
    "host": ("hostname", "host name", "nas", "nas name", "server name", "nome host", "nome server", "nome nas"),
    "destination": ("destination", "backup destination", "target", "destinazione", "destinazione di backup",
                    "destinazione del backup"),
    "started": ("start time", "started", "started at", "backup start time", "ora di inizio", "ora inizio",
                "inizio", "avviato", "data di inizio"),
    "finished": ("end time", "finished", "finished at", "completed at", "ora di fine", "ora fine", "fine",
                 "terminato", "completato", "data di fine"),
    "duration": ("duration", "durata", "elapsed time", "tempo trascorso"),
    "size": ("backup size", "total size", "size", "dimensione", "dimensione backup", "dimensione totale",
             "data size", "source size"),
    "transferred": ("transferred", "transferred size", "data transferred", "transferred data", "uploaded",
                    "dati trasferiti", "dimensione trasferita", "trasferiti"),
    "error": ("reason", "error", "error message", "cause", "details", "motivo", "errore", "causa", "dettagli",
              "messaggio di errore", "warning", "avviso"),
    "device": ("device", "device name", "computer", "computer name", "pc", "server", "physical server",
               "virtual machine", "vm", "dispositivo", "nome dispositivo", "macchina virtuale", "server fisico"),
}
ALL_LABELS = {label for labels in LABELS.values() for label in labels}

_GREETING = re.compile(r"^\s*(?:dear\s+(?:user|administrator|admin)|hello|gentile\s+utente|caro\s+utente|"
                       r"gentile\s+amministratore)\b", re.IGNORECASE | re.MULTILINE)
_SIGN_OFF = re.compile(r"^\s*(?:sincerely|best\s+regards|cordiali\s+saluti|distinti\s+saluti|saluti)\s*,?\s*$"
                       r"|^\s*(?:from|sent\s+from|da|inviato\s+da)\s+(?P<host>" + HOST + r")\s*\.?\s*$"
                       r"|synology\s+(?:diskstation|rackstation|nas)|^\s*synology\s*$",
                       re.IGNORECASE | re.MULTILINE)
_SENDER_MARK = re.compile(r"synology|diskstation|rackstation|\bnas[\w-]*@|\bnas\d*\b|no-?reply|notif|alert|\bdsm\b",
                          re.IGNORECASE)
_SUBJECT_PREFIX = re.compile(r"^\s*\[(?P<host>[^\]\s]{1,63})\]\s*")
_NOT_HOST = {"synology", "dsm", "hyper backup", "hyperbackup", "nas", "notification", "notifica", "info", "warning",
             "error", "avviso", "errore", "active backup for business"}


NEEDLES = KEYS


def parse(message: MailMessage) -> BackupReport | None:
    subject = message.clean_subject
    if REPLY.match(message.subject):
        return None
    low_subject = subject.lower()
    head = message.text[:SCAN]
    low_top = _low_top(message)
    if not any(key in low_subject or key in low_top for key in KEYS):
        return None
    lowered = low_subject + "\n" + low_top
    if _ABB.search(lowered) or "hybrid backup sync" in lowered:
        return None  # Active Backup for Business and QNAP have their own parsers
    if message.header("list-unsubscribe") or message.header("list-id"):
        return None
    sentence, where = find_sentence(subject, head, _EN_SENTENCES + _IT_SENTENCES, KEYS)
    if sentence is None or not synology_context(message, subject, lowered, sentence):
        return None
    lines = head.splitlines()
    fields = read_fields(lines)
    if not dsm_structure(message, subject, head, fields, where):
        return None
    status = outcome_status(sentence.groupdict().get("outcome") or "completed")
    if status is None:
        return None
    job = clean_name(get(fields, "task")) or clean_name(sentence_name(sentence))
    if job is None and where == "text":
        other = find_sentence(subject, "", _EN_SENTENCES + _IT_SENTENCES, KEYS)[0]
        job = clean_name(sentence_name(other)) if other else None
    host = nas_host(message, subject, head, fields, sentence)
    if job is None and host is None:
        return None
    report = BackupReport(software=SOFTWARE, job=job, status=status, host=host)
    fill_times(report, fields)
    report.size_bytes = parse_size(get(fields, "size"))
    report.transferred_bytes = parse_size(get(fields, "transferred"))
    if status != "success":
        report.error = get(fields, "error") or sentence_context(head if where == "text" else subject, sentence) \
            or error_text(head) or sentence.group(0).strip()
    destination = get(fields, "destination")
    if destination:
        report.details["destination"] = destination[:200]
    kind = (sentence.groupdict().get("kind") or "").lower()
    if "integrit" in kind:
        report.details["operation"] = "integrity_check"
    return report


_ABB = re.compile(r"active\s*backup\s+for\s+(?:business|microsoft|office|google|g\s*suite)", re.IGNORECASE)
_OTHER_PRODUCT = re.compile(r"iperius|uranium|cobian|veeam|acronis|bacula|bareos|duplicati|urbackup|qnap|"
                            r"hybrid backup sync|windows server backup|wbadmin", re.IGNORECASE)


def synology_context(message: MailMessage, subject: str, lowered: str, sentence: re.Match[str]) -> bool:
    """The mail comes from DSM: it says Synology/Hyper Backup, or has DSM's ``[HOST] ... on HOST`` shape."""
    if any(mark in lowered for mark in ("synology", "diskstation", "rackstation", "hyper backup", "hyperbackup",
                                        "data backup task", "backup dei dati")) \
            or "synology" in message.sender_name.lower():
        return True
    if _OTHER_PRODUCT.search(lowered):
        return False
    prefix = _SUBJECT_PREFIX.match(subject)
    host = sentence.groupdict().get("host")
    return bool(prefix and host and prefix.group("host").lower() == host.lower())


def keyword_spans(text: str, keys: tuple[str, ...], limit: int = TOP) -> list[tuple[int, int]]:
    """Windows of ``text[:limit]`` around the occurrences of ``keys`` (lower case), cut at line ends."""
    low = text[:limit].lower()
    if len(low) != min(len(text), limit):  # a character whose lower case is longer: give up on offsets
        return [(0, min(len(text), limit))]
    spans: set[tuple[int, int]] = set()
    for key in keys:
        found = low.find(key)
        while found != -1 and len(spans) < 24:
            start = max(low.rfind("\n", 0, found) + 1, found - 200)
            end = low.find("\n", found)
            end = min(len(low) if end == -1 else end, found + 400)
            spans.add((start, end))
            found = low.find(key, found + len(key))
    return sorted(spans)


def find_sentence(subject: str, text: str, patterns: tuple[re.Pattern[str], ...],
                  keys: tuple[str, ...] = KEYS) -> tuple[re.Match[str] | None, str]:
    """The task-outcome sentence, in the body first (it names the task), else in the subject.

    Only the body lines that contain a task keyword are searched. A sentence that
    names the task wins over an earlier one that does not (the quoted "Subject:"
    line of a forward, the generic title repeated in the body).
    """
    for where, source in (("text", text), ("subject", subject)):
        if not source:
            continue
        spans = keyword_spans(source, keys) if where == "text" else [(0, len(source))]
        named: re.Match[str] | None = None
        unnamed: re.Match[str] | None = None
        for start, end in spans:
            for pattern in patterns:
                match = pattern.search(source, start, end)
                if match is None:
                    continue
                if sentence_name(match):
                    if named is None or match.start() < named.start():
                        named = match
                elif unnamed is None or match.start() < unnamed.start():
                    unnamed = match
            if named is not None:
                break
        best = named or unnamed
        if best is not None:
            return best, where
    return None, ""


def sentence_name(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    for key in ("nb", "nq", "nc", "ng", "ns", "nu"):
        value = groups.get(key)
        if value and value.strip():
            return value.strip()
    return None


def sentence_context(source: str, match: re.Match[str]) -> str | None:
    """The outcome sentence with the explanation that follows it on its line (and the next), when there is one."""
    start = source.rfind("\n", 0, match.start()) + 1
    lines = source[start:].split("\n", 2)
    context = lines[0].strip()
    if len(lines) > 1 and lines[1].strip() and not re.match(r"^\s*[^:|]{1,40}\s*(?::|\|)", lines[1]) \
            and not _GREETING.match(lines[1]) and not _SIGN_OFF.match(lines[1]) and len(context) < 300:
        context = context + " " + lines[1].strip()
    if len(context) <= len(match.group(0).strip()) + 2:
        return None
    return context[:2000]


def outcome_status(outcome: str) -> Status | None:
    text = re.sub(r"\s+", " ", outcome.lower())
    if re.search(r"partial|parzial|warning|avvis|suspend|sospes", text):
        return "warning"
    if re.search(r"fail|fallit|non (?:(?:è|e') )?riuscit|not completed|did not|non (?:(?:è|e') )?(?:stat[ao] )?"
                 r"completat|cancel|annullat|interrupt|interrott|errori|unsuccess|not success|buon fine", text):
        return "failure"
    if re.search(r"complet|succe|riuscit|finish|terminat", text):
        return "success"
    return None


def read_fields(lines: list[str]) -> dict[str, str]:
    return _read_fields(lines, ALL_LABELS)


def get(fields: dict[str, str], kind: str) -> str | None:
    return first_field(fields, LABELS[kind])


def clean_name(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().strip("[]'\"“”‘’«»").strip().rstrip(".").strip()
    return value[:200] or None


def dsm_structure(message: MailMessage, subject: str, head: str, fields: dict[str, str], where: str) -> bool:
    """Evidence that the mail is a DSM notification rather than prose about one."""
    if any(get(fields, kind) for kind in ("task", "destination", "started", "finished", "duration")):
        return True
    if _GREETING.search(head) or _SIGN_OFF.search(head):
        return True
    sender = " ".join((message.sender, message.sender_name, message.original_sender))
    if _SENDER_MARK.search(sender):
        return True
    prefix = _SUBJECT_PREFIX.match(subject)
    return bool(prefix and where == "subject")


def nas_host(message: MailMessage, subject: str, head: str, fields: dict[str, str],
             sentence: re.Match[str] | None) -> str | None:
    if sentence is not None and sentence.groupdict().get("host"):
        return sentence.group("host")
    labelled = get(fields, "host")
    if labelled and " " not in labelled.strip():
        return labelled.strip()
    prefix = _SUBJECT_PREFIX.match(subject)
    if prefix and prefix.group("host").lower() not in _NOT_HOST:
        return prefix.group("host")
    for match in _SIGN_OFF.finditer(head):
        if match.group("host") and match.group("host").lower() not in _NOT_HOST:
            return match.group("host")
    return None


_DURATION_PART = re.compile(r"(\d+)\s*(d|day|days|giorn[oi]|h|hr|hrs|hour|hours|or[ae]|m|min|mins|minute|minutes|"
                            r"minut[oi]|s|sec|secs|second|seconds|second[oi])\b", re.IGNORECASE)


def parse_duration(text: str | None) -> timedelta | None:
    if not text:
        return None
    clock = re.search(r"\b(\d{1,3}):(\d{2}):(\d{2})\b", text)
    if clock:
        return timedelta(hours=int(clock.group(1)), minutes=int(clock.group(2)), seconds=int(clock.group(3)))
    total = timedelta()
    found = False
    for number, unit in _DURATION_PART.findall(text):
        unit = unit.lower()
        value = int(number)
        found = True
        if unit.startswith(("d", "g")):
            total += timedelta(days=value)
        elif unit.startswith(("h", "or")):
            total += timedelta(hours=value)
        elif unit.startswith("m"):
            total += timedelta(minutes=value)
        else:
            total += timedelta(seconds=value)
    return total if found else None


def fill_times(report: BackupReport, fields: dict[str, str]) -> None:
    report.started_at = parse_when(get(fields, "started"))
    report.finished_at = parse_when(get(fields, "finished"))
    duration = parse_duration(get(fields, "duration"))
    if duration is not None:
        report.details["duration_s"] = int(duration.total_seconds())
        if report.finished_at is None and report.started_at is not None:
            report.finished_at = report.started_at + duration


parse_when = parse_datetime


low_top = _low_top
