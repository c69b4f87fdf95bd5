"""The business calendar: holidays from python-holidays, patron days, closures, working time."""

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from custode.agent.calendar import ROME, BusinessCalendar, CalendarSection, TenantCalendar, weekday_number


def calendar(**tenant) -> BusinessCalendar:
    return BusinessCalendar.build(CalendarSection(), TenantCalendar(**tenant) if tenant else None)


def test_national_holidays_have_italian_names_and_weekends_are_not_reasons():
    cal = calendar()
    assert cal.closed_reason(date(2026, 12, 25)) == "Natale"
    assert cal.closed_reason(date(2027, 1, 1)) == "Capodanno"
    assert cal.closed_reason(date(2026, 10, 4)) is not None, "4 October is a national holiday again from 2026"
    assert cal.closed_reason(date(2026, 12, 24)) is None
    assert cal.closed_reason(date(2026, 11, 28)) is None and not cal.is_working_day(date(2026, 11, 28))


def test_province_adds_the_capitals_patron_and_an_own_patron_replaces_it():
    assert calendar(province="CR").closed_reason(date(2026, 11, 13)) == "Sant'Omobono"
    assert calendar().closed_reason(date(2026, 11, 13)) is None
    crema = calendar(province="CR", patron={"day": "06-10", "name": "San Pantaleone"})
    assert crema.closed_reason(date(2026, 6, 10)) == "San Pantaleone"
    assert crema.closed_reason(date(2026, 11, 13)) is None, "Crema does not stop for Cremona's patron"


def test_closures_of_provider_and_tenant_add_up():
    section = CalendarSection(closures=["2026-12-24", {"from": "2026-08-10", "to": "2026-08-21",
                                                       "reason": "chiusura estiva"}])
    cal = BusinessCalendar.build(section, TenantCalendar(closures=[{"from": "2026-12-07", "reason": "ponte"}]))
    assert cal.closed_reason(date(2026, 12, 24)) == "chiusura aziendale"
    assert cal.closed_reason(date(2026, 8, 14)) == "chiusura estiva"
    assert cal.closed_reason(date(2026, 8, 22)) is None
    assert cal.closed_reason(date(2026, 12, 7)) == "ponte"


@pytest.mark.parametrize("start, hours, due", [
    (datetime(2026, 11, 20, 17, 0), 8, datetime(2026, 11, 23, 17, 0)),    # Friday 17:00 → Monday 17:00
    (datetime(2026, 11, 23, 12, 0), 1, datetime(2026, 11, 23, 14, 30)),   # over the lunch break
    (datetime(2026, 11, 21, 10, 0), 2, datetime(2026, 11, 23, 10, 30)),   # Saturday: from Monday 08:30
    (datetime(2026, 12, 24, 17, 0), 8, datetime(2026, 12, 28, 17, 0)),    # Christmas skipped
])
def test_working_time_counts_only_office_hours(start, hours, due):
    assert calendar().add_working_time(start.replace(tzinfo=ROME), hours * 3600) == due.replace(tzinfo=ROME)


def test_bad_calendar_values_are_explained():
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        CalendarSection(office_hours={"monday": ["8-12"]})
    with pytest.raises(ValidationError, match="overlap"):
        CalendarSection(office_hours={"monday": ["08:00-12:00", "11:00-13:00"]})
    with pytest.raises(ValidationError, match="province code"):
        TenantCalendar(province="XX")
    with pytest.raises(ValidationError, match="MM-DD"):
        TenantCalendar(patron={"day": "31-06"})
    with pytest.raises(ValidationError, match="before it starts"):
        CalendarSection(closures=[{"from": "2026-12-31", "to": "2026-12-01"}])
    with pytest.raises(ValueError, match="not a weekday"):
        weekday_number("funday")
    assert weekday_number("venerdì") == weekday_number("fri") == 4
