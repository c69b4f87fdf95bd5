"""Coverage check: what lies on the data volumes that the backup set does not include."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path

import pytest

from custode.agent.restore.coverage import (
    CSV_COLUMNS,
    CoverageItem,
    CoverageReport,
    CoverageRules,
    LocalScanner,
    ScanEntry,
    StaticScanner,
    check_coverage,
    parse_path,
    path_covers,
    write_csv,
)


def make(root: Path, files: dict[str, bytes | str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def by_path(report: CoverageReport) -> dict[str, CoverageItem]:
    return {item.path: item for item in report.items}


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    make(root, {
        "protocollo/2024/atto.pdf": b"x" * 100,
        "anagrafe/db/anagrafe.fdb": b"y" * 300,
        "tributi/ruoli.xlsx": b"z" * 50,
        "tributi/archivio/2019.zip": b"w" * 25,
    })
    return root


def test_a_top_level_folder_left_out_of_the_set_is_unprotected(volume: Path) -> None:
    report = check_coverage([str(volume / "protocollo"), str(volume / "anagrafe")], CoverageRules([str(volume)]))
    items = by_path(report)
    assert set(items) == {str(volume / name) for name in ("protocollo", "anagrafe", "tributi")}
    assert items[str(volume / "protocollo")].protected
    assert items[str(volume / "protocollo")].covered_by == str(volume / "protocollo")
    assert items[str(volume / "anagrafe")].size_bytes == 300
    missing = items[str(volume / "tributi")]
    assert not missing.protected and missing.covered_by is None and missing.kind == "folder"
    assert (missing.size_bytes, missing.files) == (75, 2)
    assert "not in the backup set" in missing.reason
    assert [item.path for item in report.unprotected] == [str(volume / "tributi")]
    assert not report.truncated and report.errors == []


def test_a_folder_created_after_the_set_was_configured_is_reported(volume: Path) -> None:
    included = [str(volume / name) for name in ("protocollo", "anagrafe", "tributi")]
    rules = CoverageRules([str(volume)])
    assert check_coverage(included, rules).unprotected == []

    make(volume, {"suap/pratiche/pratica-1.pdf": b"p" * 10})
    later = check_coverage(included, rules)
    assert [(item.path, item.files, item.size_bytes) for item in later.unprotected] == [
        (str(volume / "suap"), 1, 10)]
    assert later.unprotected[0].newest_mtime == pytest.approx((volume / "suap/pratiche/pratica-1.pdf").stat().st_mtime)


def test_an_empty_new_folder_is_unprotected_and_says_it_is_empty(volume: Path) -> None:
    (volume / "nuova").mkdir()
    report = check_coverage([str(volume / name) for name in ("protocollo", "anagrafe", "tributi")],
                            CoverageRules([str(volume)]))
    (item,) = report.unprotected
    assert item.path == str(volume / "nuova") and item.files == 0 and "no files yet" in item.reason


def test_an_including_parent_covers_every_folder(volume: Path) -> None:
    for included in ([str(volume)], [str(volume.parent)], [str(volume) + "/"], ["/"]):
        report = check_coverage(included, CoverageRules([str(volume)]))
        assert report.unprotected == [], included
        assert {item.covered_by for item in report.items} == {str(parse_path(included[0], False))}
        assert all("backed up as part of" in item.reason for item in report.items)


def test_a_path_prefix_is_not_a_parent(tmp_path: Path) -> None:
    assert path_covers("/srv/data", "/srv/data/x")
    assert path_covers("/srv/data", "/srv/data")
    assert not path_covers("/srv/data", "/srv/database")
    assert not path_covers("/srv/data/", "/srv/database/x")
    assert not path_covers("/srv/data", "/srv")
    assert path_covers("/srv/./data/../data", "/srv/data/y")
    assert not path_covers("/srv/Data", "/srv/data")  # POSIX is case-sensitive
    assert path_covers("srv/data", "/srv/data/z")  # borg records paths without the leading slash

    root = tmp_path / "srv"
    make(root, {"data/a.txt": "a", "database/b.txt": "b"})
    items = by_path(check_coverage([str(root / "data")], CoverageRules([str(root)])))
    assert items[str(root / "data")].protected
    assert not items[str(root / "database")].protected


def test_a_folder_backed_up_only_in_part_is_unprotected_naming_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"gestionale/dati/a.dat": b"a" * 1000, "gestionale/conf/app.ini": b"c" * 20,
                "gestionale/allegati/2024/f.pdf": b"f" * 300, "gestionale/leggimi.txt": b"r" * 5,
                "gestionale/dati2/b.dat": b"b" * 7})
    report = check_coverage([str(root / "gestionale" / "dati")], CoverageRules([str(root)]))
    (item,) = report.items
    assert item.path == str(root / "gestionale") and not item.protected
    assert item.covered_by == str(root / "gestionale" / "dati")
    assert "only partly backed up" in item.reason
    for name in ("allegati", "conf", "dati2", "leggimi.txt"):
        assert name in item.reason
    assert (item.size_bytes, item.files) == (20 + 300 + 5 + 7, 4)


def test_a_folder_whose_parts_are_all_included_or_excluded_is_protected(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"app/dati/a": "a", "app/conf/b": "b", "app/cache/c": "c"})
    report = check_coverage([str(root / "app/dati"), str(root / "app/conf")],
                            CoverageRules([str(root)], exclude=["*/cache"]))
    (item,) = report.items
    assert item.protected and "deliberately excluded: cache" in item.reason
    assert item.covered_by == f"{root / 'app/dati'}; {root / 'app/conf'}"
    assert report.excluded == [str(root / "app/cache")]


def test_database_files_in_unprotected_folders_are_listed_one_by_one(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"sql/Tributi.MDF": b"m" * 4096, "sql/Tributi_log.ldf": b"l" * 512, "sql/note.txt": "n",
                "foto/Thumbs.db": b"t" * 9, "salvato/vecchio.bak": b"b" * 64,
                "parziale/dati/x.txt": "x", "parziale/dump/halley.fdb": b"h" * 33})
    report = check_coverage([str(root / "salvato"), str(root / "parziale/dati")], CoverageRules([str(root)]))
    databases = {item.path: item for item in report.items if item.kind == "database"}
    assert set(databases) == {str(root / "sql/Tributi.MDF"), str(root / "sql/Tributi_log.ldf"),
                              str(root / "parziale/dump/halley.fdb")}
    mdf = databases[str(root / "sql/Tributi.MDF")]
    assert (mdf.size_bytes, mdf.files, mdf.protected, mdf.covered_by) == (4096, 1, False, None)
    assert "*.mdf" in mdf.reason
    assert mdf.newest_mtime == pytest.approx((root / "sql/Tributi.MDF").stat().st_mtime)
    # the folder itself is reported too, and the database row comes right after it
    paths = [item.path for item in report.items]
    assert paths.index(str(root / "sql")) < paths.index(str(root / "sql/Tributi.MDF"))


def test_custom_database_patterns_with_a_path(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"pg/base/16384/1259": "x", "altro/1259": "y"})
    report = check_coverage([], CoverageRules([str(root)], database_patterns=["pg/base/*"]))
    assert [item.path for item in report.items if item.kind == "database"] == [str(root / "pg/base/16384/1259")]


def test_exclude_globs_drop_paths_from_the_report(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"tmp/scratch.mdf": b"s" * 99, "app/cache/c.db": b"c" * 50, "app/doc.txt": b"d" * 3,
                "Cache/x": "x"})
    report = check_coverage([], CoverageRules([str(root)], exclude=[str(root / "tmp"), "*/cache"]))
    items = by_path(report)
    assert set(items) == {str(root / "app"), str(root / "Cache")}  # POSIX globs are case-sensitive
    assert items[str(root / "app")].size_bytes == 3
    assert "deliberately excluded: cache" in items[str(root / "app")].reason
    assert report.excluded == [str(root / "app/cache"), str(root / "tmp")]
    assert report.excluded_by[str(root / "tmp")] == str(root / "tmp")
    assert report.excluded_by[str(root / "app/cache")] == "*/cache"


def test_application_directories_are_found_below_the_top_level(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"programmi/Sicraweb/db/s.fdb": b"s" * 10, "programmi/Sicraweb/Sicraweb_old/x": "x",
                "programmi/altro/y": "y", "opt/halley3/bin/h": "h", "dati/z": "z"})
    rules = CoverageRules([str(root)], application_dirs=["*/Sicraweb*", "opt/halley*"])
    report = check_coverage([str(root / "programmi/Sicraweb"), str(root / "dati")], rules)
    applications = {item.path: item for item in report.items if item.kind == "application"}
    assert set(applications) == {str(root / "programmi/Sicraweb"), str(root / "opt/halley3")}
    assert applications[str(root / "programmi/Sicraweb")].protected
    assert not applications[str(root / "opt/halley3")].protected
    folders = {item.path: item for item in report.items if item.kind == "folder"}
    assert not folders[str(root / "programmi")].protected
    assert "altro" in folders[str(root / "programmi")].reason
    assert folders[str(root / "dati")].protected


def test_an_application_directory_at_folder_level_is_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"halley/x": "x"})
    report = check_coverage([], CoverageRules([str(root)], application_dirs=["halley*"]))
    assert [(item.path, item.kind) for item in report.items] == [(str(root / "halley"), "application")]


def test_depth_two_judges_second_level_folders(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"comune-a/protocollo/a": "a", "comune-a/tributi/b": "b", "comune-b/protocollo/c": "c"})
    report = check_coverage([str(root / "comune-a/protocollo")], CoverageRules([str(root)], depth=2))
    assert {item.path: item.protected for item in report.items} == {
        str(root / "comune-a/protocollo"): True, str(root / "comune-a/tributi"): False,
        str(root / "comune-b/protocollo"): False}


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "srv", tmp_path / "outside"
    make(outside, {"big.mdf": b"b" * 1000})
    make(root, {"app/a.txt": "a"})
    (root / "app" / "link").symlink_to(outside)
    (root / "link-top").symlink_to(outside)
    report = check_coverage([], CoverageRules([str(root)]))
    assert [(item.path, item.size_bytes) for item in report.items] == [(str(root / "app"), 1)]


def test_max_entries_bounds_the_scan_and_sets_truncated(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {f"a/{index:03}.txt": "x" for index in range(50)} | {"b/one.txt": "y"})
    report = check_coverage([], CoverageRules([str(root)], max_entries=10))
    assert report.truncated
    items = by_path(report)
    assert set(items) == {str(root / "a"), str(root / "b")}  # breadth first: the top level is complete
    assert items[str(root / "a")].files < 50 and "lower bound" in items[str(root / "a")].reason
    assert not check_coverage([], CoverageRules([str(root)])).truncated


def test_max_depth_limits_the_listing_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"a/b/c/deep.txt": b"d" * 10, "a/top.txt": b"t" * 2})
    report = check_coverage([], CoverageRules([str(root)], max_depth=2))
    (item,) = report.items
    assert (item.files, item.size_bytes) == (1, 2) and "max_depth" in item.reason
    assert not report.truncated
    (full,) = check_coverage([], CoverageRules([str(root)])).items
    assert (full.files, full.size_bytes) == (2, 12) and "max_depth" not in full.reason


def test_a_missing_volume_is_an_error_and_the_others_are_still_checked(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"a/x": "x"})
    report = check_coverage([], CoverageRules([str(tmp_path / "nope"), str(root)]))
    assert [item.path for item in report.items] == [str(root / "a")]
    assert len(report.errors) == 1 and str(tmp_path / "nope") in report.errors[0] and "volumes" in report.errors[0]


def test_rules_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="no volumes"):
        check_coverage([], CoverageRules([]))
    with pytest.raises(ValueError, match="max_depth"):
        check_coverage([], CoverageRules(["/srv"], depth=3, max_depth=2))
    with pytest.raises(ValueError, match="mix"):
        check_coverage([], CoverageRules(["/srv", "D:\\"]))


def test_included_paths_of_the_wrong_kind_are_reported(tmp_path: Path) -> None:
    make(tmp_path / "srv", {"a/x": "x"})
    report = check_coverage(["D:\\Dati"], CoverageRules([str(tmp_path / "srv")]))
    assert "Windows path" in report.errors[0] and not report.items[0].protected
    windows = check_coverage(["Dati\\x"], CoverageRules(["D:\\"]), StaticScanner({"D:\\": []}))
    assert "not an absolute Windows path" in windows.errors[0]


# ---------------------------------------------------------------- Windows paths (pure logic, no Windows host)


def test_windows_paths_compare_case_insensitively_in_every_spelling() -> None:
    assert path_covers("D:\\Dati", "d:/dati/Protocollo/atto.pdf")
    assert path_covers("/D/Dati", "D:\\DATI\\x")  # restic's form
    assert path_covers("d:\\dati\\", "\\\\?\\D:\\Dati\\y")
    assert path_covers("D:\\", "D:\\Dati")
    assert not path_covers("D:\\Dati", "D:\\Database")
    assert not path_covers("D:\\Dati", "D:\\Dati2\\z")
    assert not path_covers("D:\\Dati", "E:\\Dati")
    assert path_covers("\\\\NAS\\Backup\\Comune", "//nas/backup/comune/a")
    assert not path_covers("\\\\NAS\\Backup", "\\\\NAS\\Backup2")
    assert str(parse_path("/d/Dati/Sub", True)) == "D:\\Dati\\Sub"
    assert str(parse_path("e:", True)) == "E:\\"
    assert str(parse_path("\\\\?\\UNC\\nas\\share\\x", True)) == "\\\\nas\\share\\x"
    with pytest.raises(ValueError, match="not an absolute Windows path"):
        parse_path("Dati\\x", True)


def windows_host() -> StaticScanner:
    return StaticScanner({
        "D:\\": [ScanEntry("Dati", True), ScanEntry("Dati/Protocollo", True),
                 ScanEntry("Dati/Protocollo/atto.pdf", False, 1000, 1_700_000_000.0),
                 ScanEntry("DATI2", True), ScanEntry("DATI2/nuovo.docx", False, 10, 1_700_000_100.0),
                 ScanEntry("SQL", True), ScanEntry("SQL/Tributi.mdf", False, 5000, 1_700_000_200.0),
                 ScanEntry("Temp", True), ScanEntry("Temp/x.bak", False, 7, 1_700_000_300.0)],
        "E:\\": [ScanEntry("Archivio", True), ScanEntry("Archivio/a.zip", False, 3, 1_600_000_000.0)],
    })


def test_windows_volumes_with_restic_included_paths() -> None:
    rules = CoverageRules(["D:\\", "e:/"], exclude=["d:\\temp"])
    report = check_coverage(["/D/Dati", "/E/Archivio"], rules, windows_host())
    assert report.included == ["D:\\Dati", "E:\\Archivio"]
    items = by_path(report)
    assert set(items) == {"D:\\Dati", "D:\\DATI2", "D:\\SQL", "D:\\SQL\\Tributi.mdf", "E:\\Archivio"}
    assert items["D:\\Dati"].protected and items["D:\\Dati"].covered_by == "D:\\Dati"
    assert items["E:\\Archivio"].protected
    assert not items["D:\\DATI2"].protected
    assert items["D:\\SQL\\Tributi.mdf"].kind == "database" and items["D:\\SQL\\Tributi.mdf"].size_bytes == 5000
    assert report.excluded == ["D:\\Temp"] and report.errors == []


def test_windows_partial_coverage_names_the_rest_in_windows_syntax() -> None:
    scanner = StaticScanner({"D:\\": [
        ScanEntry("Dati/Protocollo/a", False, 5), ScanEntry("Dati/Tributi/Ruoli/b", False, 6)]})
    report = check_coverage(["d:/dati/protocollo"], CoverageRules(["D:\\"]), scanner)
    (item,) = report.items
    assert item.path == "D:\\Dati" and not item.protected and item.covered_by == "D:\\dati\\protocollo"
    assert "Protocollo" not in item.reason.split("but not")[1] and "Tributi" in item.reason
    assert item.size_bytes == 6


def test_local_scanner_reports_an_unreadable_volume(tmp_path: Path) -> None:
    report = check_coverage([], CoverageRules([str(tmp_path / "missing")]), LocalScanner())
    assert report.items == [] and "does not exist" in report.errors[0]


# ---------------------------------------------------------------- the yearly list


def test_csv_lists_every_item_and_parses_back(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"protocollo/atto.pdf": b"a" * 10, "sql/città.mdf": b"m" * 20, "tmp/t": "t"})
    summer, winter = 1_751_364_000.0, 1_736_000_000.0  # 2025-07-01 (UTC+2) and 2025-01-04 (UTC+1)
    os.utime(root / "protocollo/atto.pdf", (summer, summer))
    os.utime(root / "sql/città.mdf", (winter, winter))
    report = check_coverage([str(root / "protocollo")], CoverageRules([str(root)], exclude=["tmp"]))
    other = check_coverage([], CoverageRules(["D:\\"]), windows_host())

    stream = io.StringIO(newline="")
    write_csv([("Comune di Prova", "nas-notturno", report), ("Unione, Valle", "veeam", other)], stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert rows[0] == CSV_COLUMNS
    records = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    mine = {record["path"]: record for record in records if record["tenant"] == "Comune di Prova"}
    assert set(mine) == {str(root / "protocollo"), str(root / "sql"), str(root / "sql/città.mdf"),
                         str(root / "tmp")}
    protocollo = mine[str(root / "protocollo")]
    assert (protocollo["set"], protocollo["kind"], protocollo["protected"], protocollo["covered_by"]) == (
        "nas-notturno", "folder", "true", str(root / "protocollo"))
    assert (protocollo["size_bytes"], protocollo["files"]) == ("10", "1")
    assert protocollo["newest_mtime"] == "2025-07-01T12:00:00+02:00"
    assert datetime.fromisoformat(protocollo["newest_mtime"]).timestamp() == summer
    database = mine[str(root / "sql/città.mdf")]
    assert (database["kind"], database["protected"], database["size_bytes"]) == ("database", "false", "20")
    assert database["newest_mtime"].endswith("+01:00")
    excluded = mine[str(root / "tmp")]
    assert (excluded["kind"], excluded["protected"]) == ("excluded", "false") and "tmp" in excluded["reason"]
    assert any(record["tenant"] == "Unione, Valle" and record["path"] == "D:\\SQL\\Tributi.mdf"
               for record in records)
    assert len(records) == len(report.items) + len(report.excluded) + len(other.items) + len(other.excluded)


def test_csv_to_a_binary_stream_is_utf8(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    make(root, {"perché/a": "a"})
    report = check_coverage([], CoverageRules([str(root)]))
    raw = io.BytesIO()
    write_csv([("Comune", "set", report)], raw)
    text = raw.getvalue().decode("utf-8")
    assert "perché" in text and text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert not raw.closed
