"""End of support of Windows releases, from the build number a poll reports.

Support ends when Microsoft stops shipping security updates to everyone: the
end of *extended* support for the fixed-lifecycle releases (Windows Server,
Windows 7 / 8.1, the LTSC editions), the end of servicing of the feature
update for Windows 10 and 11. Paid Extended Security Updates (ESU) do not move
the date: a host enrolled in them is named in the reason, not treated as
supported, because ESU is a contract the probe cannot see.

The contracts Custode runs under give no guarantee for Windows older than
Windows Server 2012 / Windows 8 (NT 6.2): ``contract_excluded`` flags them
whatever their support state.

Dates are those of Microsoft's lifecycle pages (learn.microsoft.com/lifecycle
and the Windows release health pages). Microsoft states them in Pacific time;
a support day is taken to end at 23:59:59 UTC-8 of that date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from custode.agent.farm.snapshot import OsInfo

_PACIFIC = dt.timezone(dt.timedelta(hours=-8))


def _end(day: str) -> float:
    """Unix time of the end of ``day`` (YYYY-MM-DD) in Redmond."""
    date = dt.date.fromisoformat(day)
    return dt.datetime(date.year, date.month, date.day, 23, 59, 59, tzinfo=_PACIFIC).timestamp()


@dataclass(frozen=True)
class WindowsSupport:
    end_of_support: float | None
    """Unix time extended support (or servicing) of this release ends; None for an unknown release."""
    unsupported: bool
    """Past ``end_of_support``: no security updates any more (unless paid ESU)."""
    contract_excluded: bool
    """Older than Windows Server 2012 / Windows 8: the contracts give no guarantee for it."""
    reason: str
    """In words, for status pages and incidents."""
    release: str = ""
    """The release as people name it: ``Windows Server 2019``, ``Windows 11 24H2``; empty if unknown."""


@dataclass(frozen=True)
class _Release:
    name: str
    end: str
    esu: str = ""
    """Last day of paid Extended Security Updates, if Microsoft sold them for this release."""
    esu_who: str = ""
    """Whom that last day applies to, when it differs (``on Azure``, ``for organisations``)."""


# Server releases by build number (NT 6.x builds: RTM and service packs).
_SERVER: dict[int, _Release] = {
    3790: _Release("Windows Server 2003", "2015-07-14"),
    6001: _Release("Windows Server 2008", "2020-01-14", "2024-01-09", "on Azure"),
    6002: _Release("Windows Server 2008", "2020-01-14", "2024-01-09", "on Azure"),
    6003: _Release("Windows Server 2008", "2020-01-14", "2024-01-09", "on Azure"),
    7600: _Release("Windows Server 2008 R2", "2020-01-14", "2024-01-09", "on Azure"),
    7601: _Release("Windows Server 2008 R2", "2020-01-14", "2024-01-09", "on Azure"),
    9200: _Release("Windows Server 2012", "2023-10-10", "2026-10-13"),
    9600: _Release("Windows Server 2012 R2", "2023-10-10", "2026-10-13"),
    14393: _Release("Windows Server 2016", "2027-01-12"),
    16299: _Release("Windows Server, version 1709", "2019-04-09"),
    17134: _Release("Windows Server, version 1803", "2019-11-12"),
    17763: _Release("Windows Server 2019", "2029-01-09"),
    18362: _Release("Windows Server, version 1903", "2020-12-08"),
    18363: _Release("Windows Server, version 1909", "2021-05-11"),
    19041: _Release("Windows Server, version 2004", "2021-12-14"),
    19042: _Release("Windows Server, version 20H2", "2022-08-09"),
    20348: _Release("Windows Server 2022", "2031-10-14"),
    25398: _Release("Windows Server, version 23H2", "2025-10-24"),
    26100: _Release("Windows Server 2025", "2034-10-10"),
}

# Client releases before Windows 10, by build number.
_CLIENT_NT6: dict[int, _Release] = {
    2600: _Release("Windows XP", "2014-04-08"),
    6000: _Release("Windows Vista", "2017-04-11"),
    6001: _Release("Windows Vista", "2017-04-11"),
    6002: _Release("Windows Vista", "2017-04-11"),
    7600: _Release("Windows 7", "2020-01-14", "2023-01-10"),
    7601: _Release("Windows 7", "2020-01-14", "2023-01-10"),
    9200: _Release("Windows 8", "2016-01-12"),
    9600: _Release("Windows 8.1", "2023-01-10"),
}

# Windows 10 feature updates: (version, end for Home/Pro, end for Enterprise/Education).
_WINDOWS_10: dict[int, tuple[str, str, str]] = {
    10240: ("1507", "2017-05-09", "2017-05-09"),
    10586: ("1511", "2017-10-10", "2018-04-10"),
    14393: ("1607", "2018-04-10", "2019-04-09"),
    15063: ("1703", "2018-10-09", "2019-10-08"),
    16299: ("1709", "2019-04-09", "2020-10-13"),
    17134: ("1803", "2019-11-12", "2021-05-11"),
    17763: ("1809", "2020-11-10", "2021-05-11"),
    18362: ("1903", "2020-12-08", "2020-12-08"),
    18363: ("1909", "2021-05-11", "2022-05-10"),
    19041: ("2004", "2021-12-14", "2021-12-14"),
    19042: ("20H2", "2022-05-10", "2023-05-09"),
    19043: ("21H1", "2022-12-13", "2022-12-13"),
    19044: ("21H2", "2023-06-13", "2024-06-11"),
    19045: ("22H2", "2025-10-14", "2025-10-14"),
}
_WINDOWS_10_ESU = ("2028-10-10", "for organisations (2026-10-13 for consumers)")

# Windows 10 / 11 long-term servicing editions (Enterprise LTSB/LTSC), by build: (name, end, IoT end).
_LTSC: dict[int, tuple[str, str, str]] = {
    10240: ("Windows 10 Enterprise LTSB 2015", "2025-10-14", "2025-10-14"),
    14393: ("Windows 10 Enterprise LTSB 2016", "2026-10-13", "2026-10-13"),
    17763: ("Windows 10 Enterprise LTSC 2019", "2029-01-09", "2029-01-09"),
    19044: ("Windows 10 Enterprise LTSC 2021", "2027-01-12", "2032-01-13"),
    26100: ("Windows 11 Enterprise LTSC 2024", "2029-10-09", "2034-10-10"),
}

# Windows 11 feature updates: (version, end for Home/Pro, end for Enterprise/Education).
_WINDOWS_11: dict[int, tuple[str, str, str]] = {
    22000: ("21H2", "2023-10-10", "2024-10-08"),
    22621: ("22H2", "2024-10-08", "2025-10-14"),
    22631: ("23H2", "2025-11-11", "2026-11-10"),
    26100: ("24H2", "2026-10-13", "2027-10-12"),
    26200: ("25H2", "2027-10-12", "2028-10-10"),
}

_ENTERPRISE = re.compile(r"enterprise|education", re.I)
_LTSC_NAME = re.compile(r"\bLTS[BC]\b", re.I)
_IOT = re.compile(r"\bIoT\b", re.I)


def _version(os: OsInfo) -> tuple[int, int, int] | None:
    """(major, minor, build) from ``version`` (``10.0.17763``), with ``build`` filling a missing third part."""
    parts = [int(part) for part in re.findall(r"\d+", os.version)[:3]]
    if len(parts) < 3 and os.build.isdigit():
        parts = (parts + [0, 0])[:2] + [int(os.build)]
    if len(parts) < 3:
        return None
    return parts[0], parts[1], parts[2]


def _release(os: OsInfo, major: int, minor: int, build: int) -> _Release | None:
    """The release of this build, or None when it is not one we know."""
    server = os.server if os.server is not None else "server" in os.name.lower()
    if server:
        return _SERVER.get(build)
    if (major, minor) < (10, 0):
        return _CLIENT_NT6.get(build)
    enterprise = bool(_ENTERPRISE.search(os.name))
    edition = "Enterprise/Education" if enterprise else "Home/Pro"
    if _LTSC_NAME.search(os.name) and build in _LTSC:
        name, end, iot_end = _LTSC[build]
        iot = bool(_IOT.search(os.name))
        return _Release(f"{name} (IoT)" if iot else name, iot_end if iot else end)
    if build >= 22000:
        if build not in _WINDOWS_11:
            return None
        version, consumer, business = _WINDOWS_11[build]
        return _Release(f"Windows 11 {version} ({edition})", business if enterprise else consumer)
    if build not in _WINDOWS_10:
        return None
    version, consumer, business = _WINDOWS_10[build]
    esu, who = _WINDOWS_10_ESU if build == 19045 else ("", "")
    return _Release(f"Windows 10 {version} ({edition})", business if enterprise else consumer, esu, who)


def _esu(release: _Release, now: float) -> str:
    """The sentence on paid Extended Security Updates, in the right tense."""
    if not release.esu:
        if release.name.startswith("Windows 10 ") and "(" in release.name and "22H2" not in release.name:
            return "; install Windows 10 22H2 or Windows 11 to get security updates again"
        if release.name.startswith("Windows 11 ") and "LTSC" not in release.name:
            return "; install a newer Windows 11 version (feature update) to get security updates again"
        return ""
    who = f" {release.esu_who}" if release.esu_who else ""
    if now > _end(release.esu):
        return f"; paid Extended Security Updates ended on {release.esu}{who}"
    return f"; only hosts enrolled in paid Extended Security Updates get them, until {release.esu}{who}"


def support_status(os: OsInfo, now: float) -> WindowsSupport:
    """Whether ``os`` still gets security updates at ``now`` (Unix time), and whether contracts cover it."""
    if os.family != "windows":
        return WindowsSupport(end_of_support=None, unsupported=False, contract_excluded=False,
                              reason=f"{os.name} is not Windows: no Windows lifecycle applies")
    version = _version(os)
    if version is None:
        return WindowsSupport(end_of_support=None, unsupported=False, contract_excluded=False,
                              reason=f"{os.name}: the host did not report its Windows version, so its support "
                                     "status is unknown")
    major, minor, build = version
    excluded = (major, minor) < (6, 2)
    contract = (" It is older than Windows Server 2012 / Windows 8: the contracts give no guarantee for it."
                if excluded else "")
    found = _release(os, major, minor, build)
    if found is None:
        return WindowsSupport(end_of_support=None, unsupported=False, contract_excluded=excluded,
                              reason=f"{os.name} (build {major}.{minor}.{build}) is a release Custode does not "
                                     f"know: check its support dates on Microsoft's lifecycle pages.{contract}")
    name, end_day = found.name, found.end
    end = _end(end_day)
    if now > end:
        reason = (f"{name}: support ended on {end_day}, no more security updates{_esu(found, now)}; plan the "
                  f"upgrade or the migration.{contract}")
        return WindowsSupport(end_of_support=end, unsupported=True, contract_excluded=excluded, reason=reason,
                              release=name)
    days = int((end - now) // 86400)
    reason = f"{name}: supported until {end_day} ({days} days left).{contract}"
    return WindowsSupport(end_of_support=end, unsupported=False, contract_excluded=excluded, reason=reason,
                          release=name)


_NT_VERSION = {3790: "5.2", 6001: "6.0", 6002: "6.0", 6003: "6.0", 7600: "6.1", 7601: "6.1", 9200: "6.2",
               9600: "6.3"}
"""NT major.minor of the server builds before Windows 10 / Server 2016 (10.0 for every later build)."""


def server_build_from_name(name: str) -> int | None:
    """The build of the Windows Server release named in ``name`` (``Microsoft Windows Server 2012 R2 Standard``).

    For records that kept only the name (the daily history rows): the longest
    release name the text contains wins, so "2012 R2" is not read as "2012".
    Semi-annual "version 1809" names are not matched (their names overlap);
    None when no release is named.
    """
    text = " ".join(name.split()).casefold()
    found = [(len(release.name), build) for build, release in _SERVER.items()
             if "version" not in release.name and _names(release.name, text)]
    return max(found)[1] if found else None


def _names(release: str, text: str) -> bool:
    """``release`` occurs in ``text`` as whole words ("Windows Server 2012" is not found in "…Server 20125")."""
    return re.search(rf"(?<!\w){re.escape(release.casefold())}(?!\w)", text) is not None


def support_from_name(name: str, now: float) -> WindowsSupport | None:
    """:func:`support_status` of a Windows Server known only by its name; None when no release is named."""
    build = server_build_from_name(name)
    if build is None:
        return None
    version = f"{_NT_VERSION.get(build, '10.0')}.{build}"
    return support_status(OsInfo("windows", name, version, build=str(build), server=True), now)


__all__ = ["WindowsSupport", "server_build_from_name", "support_from_name", "support_status"]
