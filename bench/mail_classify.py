"""Classification throughput on one core: parse + classify of a synthetic mailbox mix.

    .venv/bin/python bench/mail_classify.py [--messages 20000] [--against REV] [--rounds 3] [--json]

Target (issue 16): at least 5,000 messages/s on one core. Machines differ by a
factor of two and more, so every run also prints, from the same run on the
same messages, the standard library's ``email.message_from_bytes`` alone (the
floor of any reader built on it) and, with ``--against REV``, the same
classification by an older revision of Custode (extracted with ``git
archive`` into a temporary folder and run in a child process). Each contender
runs ``--rounds`` times, in turn; the best round counts, which keeps a busy
neighbour on the machine from deciding the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core, as the target says


def _measure(messages: list[bytes], package: str = "custode.agent") -> dict:
    """Parse + classify every message with ``package`` (``agent`` for a revision before the custode.* namespace)."""
    import importlib

    registry = importlib.import_module(f"{package}.backups.parsers")
    classify, parsers = registry.classify, registry.parsers
    parse_message = importlib.import_module(f"{package}.mail.message").parse_message

    parsers()  # import once, outside the timing
    for raw in messages[:200]:
        classify(parse_message(raw))
    verdicts: Counter[str] = Counter()
    clock = time.perf_counter
    parse_seconds = 0.0
    started = clock()
    for raw in messages:  # one at a time, as the poller reads a mailbox
        before = clock()
        message = parse_message(raw)
        parse_seconds += clock() - before
        verdicts[classify(message).status] += 1
    seconds = clock() - started
    return {"seconds": seconds, "parse_seconds": parse_seconds, "classify_seconds": seconds - parse_seconds,
            "verdicts": dict(verdicts), "parsers": len(parsers())}


def _measure_stdlib(messages: list[bytes]) -> dict:
    import email
    import email.policy

    started = time.perf_counter()
    for raw in messages:
        email.message_from_bytes(raw, policy=email.policy.compat32)
    return {"seconds": time.perf_counter() - started}


def _write_messages(messages: list[bytes], path: Path) -> None:
    with path.open("wb") as out:
        for raw in messages:
            out.write(struct.pack(">I", len(raw)))
            out.write(raw)


def _read_messages(path: Path) -> list[bytes]:
    data = path.read_bytes()
    messages, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        messages.append(data[offset + 4: offset + 4 + size])
        offset += 4 + size
    return messages


def _extract(revision: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision, "agent", "collectors"],
                             check=True, capture_output=True).stdout
    archive_path = into / "rev.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(into, filter="data")


def _import_from(code_dir: Path) -> str:
    """Put an extracted revision first on the import path; the name its package imports under.

    A revision from before the custode.* namespace imports itself as ``agent``;
    a later one as ``custode.agent``, which this venv's editable install would
    map to the working tree, so its finder is taken out and two symlinks give
    the extracted folders their namespace.
    """
    if "custode.agent" not in (code_dir / "agent" / "__main__.py").read_text(encoding="utf-8"):
        sys.path.insert(0, str(code_dir))
        return "agent"
    shim = code_dir / "namespace" / "custode"
    shim.mkdir(parents=True, exist_ok=True)
    for name in ("agent", "collectors"):
        (shim / name).symlink_to(code_dir / name, target_is_directory=True)
    sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in type(finder).__module__]
    sys.path.insert(0, str(code_dir / "namespace"))
    return "custode.agent"


def _run_child(code_dir: Path, messages_file: Path) -> dict:
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(code_dir),
                             str(messages_file)], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--against", metavar="REV", help="also run an older revision (e.g. HEAD~5, a commit id)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("CODE_DIR", "MESSAGES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    _pin_to_one_core()
    if args.child:
        print(json.dumps(_measure(_read_messages(Path(args.child[1])), _import_from(Path(args.child[0])))))
        return 0

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mail_corpus import corpus

    messages = corpus(args.messages)
    size = sum(len(m) for m in messages)
    contenders = {"custode": lambda: _measure(messages), "stdlib email parser only": lambda: _measure_stdlib(messages)}
    with tempfile.TemporaryDirectory(prefix="custode-bench-") as scratch:
        if args.against:
            old = Path(scratch) / "old"
            old.mkdir()
            _extract(args.against, old)
            messages_file = Path(scratch) / "messages.bin"
            _write_messages(messages, messages_file)
            contenders[f"custode at {args.against}"] = lambda: _run_child(old, messages_file)
        best: dict[str, dict] = {}
        for _ in range(max(1, args.rounds)):
            for name, run in contenders.items():
                figures = run()
                if name not in best or figures["seconds"] < best[name]["seconds"]:
                    best[name] = figures

    print(f"{len(messages)} messages ({size / 1e6:.1f} MB), one core, best of {args.rounds} rounds")
    print(f"{'':28} {'messages/s':>11} {'µs/message':>11} {'parse µs':>9} {'classify µs':>12}")
    for name, figures in best.items():
        per = figures["seconds"] / len(messages) * 1e6
        parse = f"{figures['parse_seconds'] / len(messages) * 1e6:9.0f}" if "parse_seconds" in figures else f"{'':9}"
        classify = f"{figures['classify_seconds'] / len(messages) * 1e6:12.0f}" \
            if "classify_seconds" in figures else f"{'':12}"
        print(f"{name:28} {len(messages) / figures['seconds']:11.0f} {per:11.0f} {parse} {classify}")
        figures["messages_per_second"] = round(len(messages) / figures["seconds"])
    own = best["custode"]
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(own["verdicts"].items())))
    print(f"target >= 5000 messages/s: {'PASS' if own['messages_per_second'] >= 5000 else 'FAIL'} "
          f"({own['messages_per_second']} on this machine)")
    if args.json:
        print(json.dumps({"messages": len(messages), "megabytes": round(size / 1e6, 1), "results": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
