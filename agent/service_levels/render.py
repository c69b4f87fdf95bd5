"""The service-level report for people (a table) and for spreadsheets (CSV), drawn from its JSON shape.

Both read :func:`custode.agent.service_levels.report.as_json`'s dicts, so a
figure in the table is the figure in the JSON and the CSV. The table names
levels with the contract's labels and says what is provisional (a period
still running) and what could not be judged; the CSV has one row per
tenant × level × month, each level's quarter (and year) rows after its
months, then one row per contract penalty bucket.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from custode.agent.service_levels.config import TARGET_KINDS
from custode.agent.table import human_age, table

KIND_HEADERS = {"take_charge": "TAKE CHARGE", "resolve": "RESOLVE", "restore": "RESTORE"}
CSV_COLUMNS = (["tenant", "level", "label", "table", "bucket", "period", "start", "end", "complete", "opened"]
               + [f"{kind}_{what}" for kind in TARGET_KINDS
                  for what in ("within", "late", "not_known", "open", "share", "met")]
               + ["threshold", "met", "euros_min", "euros_max", "charges", "unpriced"])
CSV_HELP = ("csv: per tenant and level one row per month, then per quarter (and the year for a year period); then "
            "one per contract penalty (level empty, label naming it; opened = releases run, charges = unannounced "
            "ones); columns: " + ", ".join(CSV_COLUMNS) + "; share is a ratio 0-1, met true/false or empty when "
            "there is no threshold or no decided case, a target the level does not have is empty.")


def _when(text: str | None) -> str:
    if text is None:
        return "-"
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _days(start: str, end: str) -> str:
    """'2026-10-01 to 2026-12-31': the first and the last day of a half-open span."""
    last = datetime.fromisoformat(end) - timedelta(days=1)
    return f"{datetime.fromisoformat(start):%Y-%m-%d} to {last:%Y-%m-%d}"


def _euros(low: float, high: float) -> str:
    def one(value: float) -> str:
        return f"€{value:,.0f}" if value == int(value) else f"€{value:,.2f}"

    return one(low) if low == high else f"{one(low)}–{one(high)}"


def _exposure_words(exposure: dict[str, Any] | None) -> str:
    if exposure is None:
        return "not evaluated"
    if not exposure["charges"]:
        return "€0"
    words = _euros(exposure["euros_min"], exposure["euros_max"])
    if exposure["unpriced"]:
        words += f" + {exposure['unpriced']} unpriced"
    return words


def _share(figures: dict[str, Any] | None) -> str:
    if figures is None:
        return "n/a"
    if not figures["decided"]:
        return "-"
    return f"{figures['within']}/{figures['decided']} {100 * figures['share']:.1f}%"


def _undecided(bucket: dict[str, Any], kinds: list[str]) -> str:
    parts = []
    for kind in kinds:
        figures = bucket[kind]
        bits = [f"{figures[w]} {w.replace('_', ' ')}" for w in ("open", "not_known", "no_due") if figures[w]]
        if bits:
            parts.append(f"{KIND_HEADERS[kind].lower()}: {', '.join(bits)}")
    return "; ".join(parts)


def _met(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "NO"


def tenant_text(report: dict[str, Any]) -> str:
    """One tenant's report as text: heading, the level table, the charges and the releases."""
    state = "" if report["complete"] else ", still running: figures are provisional"
    contract = f" — {report['contract']}" if report["contract"] else ""
    table_words = "" if report["table"] == "tenant" else " (default service levels: tickets.sla)"
    lines = [f"{report['name']} ({report['tenant']}){contract}{table_words}",
             f"Period {report['period']}: {_days(report['start'], report['end'])}{state}"]
    if report["empty"]:
        lines.append(report["message"])
    else:
        lines.append(f"{report['opened']} case(s) opened.")
        lines.append("")
        lines.append(_levels_table(report))
        lines += _charges_text(report)
    lines += _releases_text(report["releases"])
    return "\n".join(lines)


def _levels_table(report: dict[str, Any]) -> str:
    kinds = [k for k in TARGET_KINDS if any(k in level["kinds"] for level in report["levels"])]
    headers = ["LEVEL", "PERIOD", "OPENED", *(KIND_HEADERS[k] for k in kinds), "THRESHOLD", "MET", "EXPOSURE",
               "UNDECIDED"]
    rows = []
    for level in report["levels"]:
        label = level["label"] + ("" if level["in_table"] else " (not in the table)") + (
            " (default table)" if level["table"] == "default" and report["table"] == "tenant" else "")
        for index, bucket in enumerate(level["buckets"]):
            threshold = f"{level['threshold']:g}%" if level["threshold"] is not None else "-"
            rows.append([label if index == 0 else "", bucket["period"], bucket["opened"],
                         *(_share(bucket.get(k)) for k in kinds), threshold, _met(bucket["met"]),
                         _exposure_words(bucket["exposure"]), _undecided(bucket, [k for k in kinds if k in bucket])])
    return table(headers, rows)


def _charges_text(report: dict[str, Any]) -> list[str]:
    lines = ["", f"Penalty exposure for missed targets: {_exposure_words(report['exposure']['tickets'])}"]
    if report["charges"]:
        rows = [[", ".join(f"#{r}" for r in c["refs"]) or f"id {c['ticket']}", c["label"], c["target"],
                 _when(c["due_at"]), "still late" if c["running"] else _when(c["met_at"]),
                 human_age(c["late_seconds"]), c["why"]] for c in report["charges"]]
        lines.append(table(["TICKET", "LEVEL", "TARGET", "DUE", "MET", "LATE BY", "WHY"], rows, indent="  "))
    for item in report["not_evaluated"]:
        refs = ", ".join(f"#{r}" for r in item["refs"]) or f"id {item['ticket']}"
        lines.append(f"  {refs} ({item['level']}, {item['target']}): {item['why']}")
    return lines


def _releases_text(releases: dict[str, Any] | None) -> list[str]:
    if releases is None:
        return []
    runs = releases["runs"]
    if not releases["evaluated"]:
        return ["", f"Releases not announced in advance: not evaluated ({len(runs)} run(s) in the period): "
                    f"{releases['reason']}"]
    unannounced = [r for r in runs if r["unannounced"]]
    lines = ["", f"Releases not announced in advance: {len(unannounced)} of {len(runs)} run(s), "
                 f"exposure {_exposure_words(releases['exposure'])}"]
    for charge in releases["charges"]:
        lines.append(f"  {_when(charge['started_at'])}  {charge['why']}")
    return lines


def text(reports: list[dict[str, Any]]) -> str:
    return "\n\n".join(tenant_text(r) for r in reports) + "\n"


def csv_text(reports: list[dict[str, Any]]) -> str:
    """The CSV of :data:`CSV_COLUMNS` for every tenant."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        for level in report["levels"]:
            writer.writerows(_csv_row(report, level, bucket) for bucket in level["buckets"])
        releases = report["releases"]
        if releases is not None:
            for bucket in releases["buckets"]:
                exposure = bucket["exposure"]
                writer.writerow({"tenant": report["tenant"], "level": "", "table": "contract",
                                 "label": "unannounced releases" + ("" if releases["evaluated"]
                                                                    else f" (not evaluated: {releases['reason']})"),
                                 "bucket": bucket["kind"], "period": bucket["period"], "opened": bucket["releases"],
                                 "euros_min": exposure["euros_min"] if exposure else "",
                                 "euros_max": exposure["euros_max"] if exposure else "",
                                 "charges": bucket["unannounced"] if releases["evaluated"] else "",
                                 "unpriced": 0 if exposure else ""})
    return out.getvalue()


def _csv_row(report: dict[str, Any], level: dict[str, Any], bucket: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"tenant": report["tenant"], "level": level["level"], "label": level["label"],
                           "table": level["table"], "bucket": bucket["kind"], "period": bucket["period"],
                           "start": bucket["start"], "end": bucket["end"], "complete": _bool(bucket["complete"]),
                           "opened": bucket["opened"], "threshold": level["threshold"] if level["threshold"]
                           is not None else "", "met": _bool(bucket["met"])}
    for kind in TARGET_KINDS:
        figures = bucket.get(kind)
        if figures is None:
            continue
        for what in ("within", "late", "not_known", "open"):
            row[f"{kind}_{what}"] = figures[what]
        row[f"{kind}_share"] = figures["share"] if figures["share"] is not None else ""
        row[f"{kind}_met"] = _bool(figures["met"])
    exposure = bucket["exposure"]
    row.update(euros_min=exposure["euros_min"], euros_max=exposure["euros_max"], charges=exposure["charges"],
               unpriced=exposure["unpriced"])
    return row


def _bool(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"
