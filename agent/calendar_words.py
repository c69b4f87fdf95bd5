"""Month and weekday names as people read them, in Italian and English.

Ticket texts, maintenance notices and the reports a comune receives all write
dates in words ("giovedì 10 dicembre 2026"); one list keeps them alike.
"""

from __future__ import annotations

WEEKDAY_NAMES: dict[str, tuple[str, ...]] = {
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTH_NAMES: dict[str, tuple[str, ...]] = {
    "it": ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
