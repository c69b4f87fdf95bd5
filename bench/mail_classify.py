"""Classification throughput on one core: parse + classify of a synthetic mailbox mix.

    .venv/bin/python bench/mail_classify.py [--messages 20000] [--json]

Target (issue 3): at least 5,000 messages/s on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent.backups.parsers import classify, parsers  # noqa: E402
from agent.mail.message import parse_message  # noqa: E402
from mail_corpus import corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    messages = corpus(args.messages)
    parsers()  # import once, outside the timing
    for raw in messages[:200]:
        classify(parse_message(raw))
    verdicts: Counter[str] = Counter()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for raw in messages:
        verdicts[classify(parse_message(raw)).status] += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    size = sum(len(m) for m in messages)
    figures = {"messages": len(messages), "megabytes": round(size / 1e6, 1), "seconds": round(elapsed, 3),
               "messages_per_second": round(len(messages) / elapsed), "cpu_seconds": round(cpu, 3),
               "parsers": len(parsers()), "verdicts": dict(verdicts)}
    print(f"classified {len(messages)} messages ({figures['megabytes']} MB) in {elapsed:.2f} s on one core: "
          f"{figures['messages_per_second']} messages/s (target >= 5000)")
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
