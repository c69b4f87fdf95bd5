"""Which files a restore test restores: a stratified random sample that fits a byte budget.

A uniform sample of a municipal file server is almost all small old office
documents; it would never restore the 4 GB database dump or last week's files.
So the source is split into strata by size class and by age (relative to the
backup), each non-empty stratum gets an equal share of the sample, and the few
most recently changed files that the backup should already contain are always
included: a backup that silently stopped picking up new data fails there first.

The walk is streamed through per-stratum reservoirs (Algorithm R), so memory
stays proportional to the sample, not to a tree of millions of files. The seed
goes into the certificate: the same seed over the same tree picks the same files.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from custode.agent.restore.model import FileEntry

KiB = 1024
MiB = 1024 * KiB
SIZE_CLASSES: list[tuple[str, float]] = [("small", 64 * KiB), ("medium", 4 * MiB), ("large", 256 * MiB),
                                         ("huge", float("inf"))]
"""Upper bounds (exclusive) of the size classes."""
DAY = 86400.0
AGE_CLASSES: list[tuple[str, float]] = [("new", 30 * DAY), ("recent", 365 * DAY), ("old", float("inf"))]
"""Upper bounds of the age classes, measured back from the backup's time."""
AFTER_BACKUP = "after-backup"
"""Files changed after the backup: still sampled (the manifest can vouch for them) but in their own stratum."""


def stratum_of(entry: FileEntry, reference: float) -> str:
    """``size/age`` (e.g. ``large/recent``); plain comparisons, since it runs once per file of the walk."""
    size = entry.size
    size_class = 0 if size < SIZE_CLASSES[0][1] else 1 if size < SIZE_CLASSES[1][1] else \
        2 if size < SIZE_CLASSES[2][1] else 3
    age = reference - entry.mtime
    age_class = 3 if age < 0 else 0 if age < AGE_CLASSES[0][1] else 1 if age < AGE_CLASSES[1][1] else 2
    return _STRATA[size_class][age_class]


_STRATA = [[f"{size}/{age}" for age in [name for name, _ in AGE_CLASSES] + [AFTER_BACKUP]]
           for size, _ in SIZE_CLASSES]


@dataclass(frozen=True)
class SamplePolicy:
    count: int = 50
    max_bytes: int = 1024 * MiB
    recent: int = 5
    seed: int | None = None


@dataclass
class _Stratum:
    files: int = 0
    bytes: int = 0
    candidates: int = 0
    reservoir: list[FileEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    chosen: list[tuple[FileEntry, str]]
    """(file, stratum or "recent") in the order they were picked."""
    seed: int
    source_files: int
    source_bytes: int
    strata: dict[str, dict[str, int]]
    """Per stratum: files and bytes in the source, files picked."""

    @property
    def selected_bytes(self) -> int:
        return sum(entry.size for entry, _ in self.chosen)


class Sampler:
    """Feed it the whole walk once, then ask for the sample."""

    def __init__(self, policy: SamplePolicy, reference: float) -> None:
        self.policy = policy
        self.reference = reference
        self.seed = policy.seed if policy.seed is not None else random.SystemRandom().getrandbits(32)
        self._random = random.Random(self.seed)
        self._strata: dict[str, _Stratum] = {}
        self._recent: list[tuple[float, str, FileEntry]] = []  # min-heap of the newest files before the backup
        self.files = 0
        self.bytes = 0

    def feed(self, entries: Iterable[FileEntry]) -> "Sampler":
        # Reservoirs are sized for the whole sample: any stratum may end up supplying most of it.
        capacity = self.policy.count
        for entry in entries:
            self.files += 1
            self.bytes += entry.size
            stratum = self._strata.setdefault(stratum_of(entry, self.reference), _Stratum())
            stratum.files += 1
            stratum.bytes += entry.size
            if entry.size > self.policy.max_bytes:
                continue  # could never be restored within the budget; counted, not a candidate
            stratum.candidates += 1
            if len(stratum.reservoir) < capacity:
                stratum.reservoir.append(entry)
            else:
                slot = self._random.randrange(stratum.candidates)
                if slot < capacity:
                    stratum.reservoir[slot] = entry
            if self.policy.recent and entry.mtime <= self.reference:
                item = (entry.mtime, entry.path, entry)
                if len(self._recent) < self.policy.recent:
                    heapq.heappush(self._recent, item)
                elif item > self._recent[0]:
                    heapq.heapreplace(self._recent, item)
        return self

    def sample(self) -> Sample:
        budget = self.policy.max_bytes
        chosen: list[tuple[FileEntry, str]] = []
        taken: set[str] = set()

        def take(entry: FileEntry, label: str) -> bool:
            nonlocal budget
            if entry.path in taken or entry.size > budget or len(chosen) >= self.policy.count:
                return False
            chosen.append((entry, label))
            taken.add(entry.path)
            budget -= entry.size
            return True

        for _, _, entry in sorted(self._recent, reverse=True):
            take(entry, "recent")
        queues = {name: self._random.sample(s.reservoir, len(s.reservoir)) for name, s in sorted(self._strata.items())}
        picked = {name: 0 for name in queues}
        # Round robin: every stratum gives one file per round while it has candidates that fit the budget.
        while len(chosen) < self.policy.count and any(queues.values()):
            for name, queue in queues.items():
                while queue:
                    if take(queue.pop(), name):
                        picked[name] += 1
                        break
                if len(chosen) >= self.policy.count:
                    break
        for entry, label in chosen:
            if label == "recent":
                picked[stratum_of(entry, self.reference)] = picked.get(stratum_of(entry, self.reference), 0) + 1
        strata = {name: {"files": s.files, "bytes": s.bytes, "picked": picked.get(name, 0)}
                  for name, s in sorted(self._strata.items())}
        return Sample(chosen, self.seed, self.files, self.bytes, strata)
