"""How much memory and time the restore-test sampler needs for a big file server.

The sampler must stream: a comune's file server has hundreds of thousands of
files and the agent's RSS target is 50 MB. This feeds N synthetic file entries
(the walk of a tree that size) through the sampler and prints the peak Python
memory it allocated (tracemalloc) and the time per million entries, next to
the naive approach (collect the whole walk in a list, then random.sample) that
the streaming design replaces.

    .venv/bin/python bench/restore_sampling.py [--files 1000000] [--count 50]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from custode.agent.restore.model import FileEntry
from custode.agent.restore.sampling import SamplePolicy, Sampler

NOW = 1_800_000_000.0


def walk(files: int):
    rng = random.Random(1)
    for i in range(files):
        yield FileEntry(f"Settore{i % 40}/Pratica {i // 40}/documento {i}.pdf", int(rng.paretovariate(1.2) * 20000),
                        NOW - rng.random() * 3000 * 86400)


def measure(label: str, work) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    picked = work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<34} peak {peak / 2 ** 20:8.2f} MiB   {seconds:6.2f} s   picked {picked}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    policy = SamplePolicy(count=args.count, seed=7)
    print(f"{args.files} files, sample of {args.count}")
    measure("streaming stratified sampler", lambda: len(Sampler(policy, NOW).feed(walk(args.files)).sample().chosen))
    measure("naive: list of the walk + sample", lambda: len(random.Random(7).sample(list(walk(args.files)),
                                                                                    args.count)))


if __name__ == "__main__":
    main()
