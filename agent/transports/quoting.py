"""Putting a value into a command for the shell a transport hands it to, so it stays one literal word.

Update steps (service names) and restore scripts (file names from a share)
both build commands from values nobody vetted; one place knows the quoting
rules of ``sh`` and of PowerShell, including the typographic quotes
PowerShell also ends a string on (common in Italian file names: ``l’avviso``).
"""

from __future__ import annotations

import shlex

PS_QUOTES = "'\u2018\u2019\u201a\u201b"
"""Characters PowerShell treats as a single quote: ASCII and the typographic ones."""


def quote_posix(value: str) -> str:
    """``value`` as one ``sh`` word that expands to nothing but itself."""
    return shlex.quote(value)


def escape_posix(value: str) -> str:
    """``value`` made safe *inside* an ``sh`` single-quoted string."""
    return value.replace("'", "'\\''")


def escape_powershell(value: str) -> str:
    """``value`` made safe *inside* a PowerShell single-quoted string: each quote character doubled."""
    return "".join(char * 2 if char in PS_QUOTES else char for char in value)


def quote_powershell(value: str) -> str:
    """``value`` as a PowerShell single-quoted literal (no expansion of ``$``, backtick or anything)."""
    return "'" + escape_powershell(value) + "'"


def quote_for(shell: str, value: str) -> str:
    """``value`` as one literal word for a transport's ``shell`` (posix or powershell)."""
    return quote_powershell(value) if shell == "powershell" else quote_posix(value)
