"""The update windows as an iCalendar file a comune's referent can subscribe to.

One event per occurrence (not an RRULE): a holiday skip is then visible as a
cancelled event with its reason instead of silently missing, and a closure
added later changes the published file the next time it is written. UIDs are
stable per window and day, so calendar programs update events instead of
duplicating them.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard

from custode.agent.clock import now_utc
from custode.agent.updates.windows import WindowOccurrence

_TEXT = {
    "it": {"title": "Aggiornamento {application}", "skipped": "ANNULLATO ({reason}): ",
           "body": "Finestra settimanale di aggiornamento di {application}{tenant}. Durante l'intervento il "
                   "servizio può non essere disponibile.", "name": "Finestre di aggiornamento"},
    "en": {"title": "{application} update", "skipped": "CANCELLED ({reason}): ",
           "body": "Weekly update window of {application}{tenant}. The service may be unavailable meanwhile.",
           "name": "Update windows"},
}


def build_calendar(occurrences: list[WindowOccurrence], *, language: str = "it", provider: str = "Custode",
                   tenant_names: dict[str, str] | None = None, now: datetime | None = None) -> bytes:
    text = _TEXT[language]
    stamp = now or now_utc()
    cal = Calendar()
    cal.add("prodid", f"-//{provider}//Custode update windows//IT")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", text["name"])
    cal.add("x-wr-timezone", "Europe/Rome")
    cal.add_component(_europe_rome())
    for occ in occurrences:
        tenant = f" – {(tenant_names or {}).get(occ.tenant, occ.tenant)}" if occ.tenant else ""
        event = Event()
        event.add("uid", f"{occ.window}-{occ.start:%Y%m%d}@custode")
        event.add("dtstamp", stamp)
        event.add("dtstart", occ.start)
        event.add("dtend", occ.end)
        title = text["title"].format(application=occ.application) + tenant
        if occ.skipped:
            title = text["skipped"].format(reason=occ.reason) + title
            event.add("status", "CANCELLED")
            event.add("transp", "TRANSPARENT")
        else:
            event.add("status", "CONFIRMED")
        event.add("summary", title)
        event.add("description", text["body"].format(application=occ.application, tenant=tenant))
        event.add("categories", ["Manutenzione" if language == "it" else "Maintenance"])
        cal.add_component(event)
    return cal.to_ical()


def _europe_rome() -> Timezone:
    """Europe/Rome by its EU rule (last Sunday of March and of October, at 01:00 UTC).

    Two RRULEs instead of the decades of RDATEs a generated zone carries: what
    every calendar program understands, in a few lines.
    """
    tz = Timezone()
    tz.add("tzid", "Europe/Rome")
    for component, name, start, before, after, month in (
            (TimezoneDaylight(), "CEST", datetime(1996, 3, 31, 2, 0), "+0100", "+0200", 3),
            (TimezoneStandard(), "CET", datetime(1996, 10, 27, 3, 0), "+0200", "+0100", 10)):
        component.add("tzname", name)
        component.add("dtstart", start)
        component.add("tzoffsetfrom", _offset(before))
        component.add("tzoffsetto", _offset(after))
        component.add("rrule", {"freq": "yearly", "bymonth": month, "byday": "-1su"})
        tz.add_component(component)
    return tz


def _offset(text: str):
    from datetime import timedelta

    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
