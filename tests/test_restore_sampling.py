"""The sample: stratified, within budget, always the newest files before the backup, reproducible."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custode.agent.restore.model import FileEntry
from custode.agent.restore.sampling import DAY, MiB, SamplePolicy, Sampler, stratum_of

NOW = 1_800_000_000.0


def tree(count: int = 2000) -> list[FileEntry]:
    files = []
    for i in range(count):
        size = [10, 100 * 1024, 10 * MiB, 300 * MiB][i % 4]
        age = [1, 100, 2000][i % 3] * DAY
        files.append(FileEntry(f"dir{i % 17}/file{i}.dat", size + i, NOW - age - i))
    return files


def test_every_stratum_is_represented_not_just_the_many_small_files():
    files = tree() + [FileEntry(f"small/{i}.txt", 500, NOW - 400 * DAY) for i in range(20000)]
    sample = Sampler(SamplePolicy(count=24, max_bytes=10 ** 12, recent=0, seed=1), NOW).feed(files).sample()
    strata = {label for _, label in sample.chosen}
    assert len(strata) == 12  # 4 size classes x 3 age classes, 2 files each
    assert sample.source_files == 22000
    assert sum(s["files"] for s in sample.strata.values()) == 22000


def test_the_newest_files_before_the_backup_are_always_included():
    files = tree(500)
    newest = sorted((f for f in files if f.mtime <= NOW), key=lambda f: f.mtime)[-3:]
    after = FileEntry("written-after-backup.txt", 10, NOW + 60)
    sample = Sampler(SamplePolicy(count=10, max_bytes=10 ** 12, recent=3, seed=7), NOW).feed(files + [after]).sample()
    recent = [entry for entry, label in sample.chosen if label == "recent"]
    assert set(recent) == set(newest)
    assert stratum_of(after, NOW) == "small/after-backup"


def test_the_byte_budget_is_respected_and_big_files_do_not_starve_the_sample():
    files = tree(400)
    sample = Sampler(SamplePolicy(count=40, max_bytes=50 * MiB, recent=2, seed=3), NOW).feed(files).sample()
    assert sample.selected_bytes <= 50 * MiB
    assert len(sample.chosen) == 40  # huge files are skipped, smaller ones fill the count


def test_the_same_seed_picks_the_same_files_and_the_seed_is_reported():
    files = tree(1000)
    first = Sampler(SamplePolicy(count=30, seed=42), NOW).feed(files).sample()
    second = Sampler(SamplePolicy(count=30, seed=42), NOW).feed(files).sample()
    other = Sampler(SamplePolicy(count=30, seed=43), NOW).feed(files).sample()
    assert first.chosen == second.chosen and first.seed == 42
    assert first.chosen != other.chosen
    assert Sampler(SamplePolicy(count=3), NOW).seed is not None


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=10 ** 9), max_size=300),
       count=st.integers(min_value=1, max_value=50), budget=st.integers(min_value=1, max_value=10 ** 10),
       recent=st.integers(min_value=0, max_value=10))
def test_any_tree_gives_a_sample_without_repeats_within_count_and_budget(sizes, count, budget, recent):
    files = [FileEntry(f"f{i}", size, NOW - i * 3600) for i, size in enumerate(sizes)]
    sample = Sampler(SamplePolicy(count=count, max_bytes=budget, recent=recent, seed=5), NOW).feed(files).sample()
    paths = [entry.path for entry, _ in sample.chosen]
    assert len(paths) == len(set(paths)) <= count
    assert sample.selected_bytes <= budget
    fitting = [f for f in files if f.size <= budget]
    if fitting and count:
        assert paths  # something that fits is always picked
