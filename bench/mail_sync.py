"""First sync of a 10,000-message Dovecot mailbox, and an incremental poll with nothing new.

    sudo apt-get install dovecot-imapd      # once; the package's own service is not used
    .venv/bin/python bench/mail_sync.py [--messages 10000] [--empty-polls 20] [--json]

Targets (issue 3): first sync < 30 s on loopback; an empty poll < 200 ms.
The server is a private Dovecot started on a free 127.0.0.1 port (the test
suite's harness), the mailbox a synthetic mix of every product's reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from dovecot_server import DovecotServer  # noqa: E402
from mail_corpus import corpus  # noqa: E402

from custode.agent.backups.config import BackupsSection  # noqa: E402
from custode.agent.backups.service import BackupMonitor  # noqa: E402
from custode.agent.state import State  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--empty-polls", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="custode-bench-") as tmp, DovecotServer(Path(tmp) / "dovecot") as server:
        messages = corpus(args.messages)
        started = time.perf_counter()
        server.append_many("INBOX", messages)
        fill = time.perf_counter() - started
        os.environ["CUSTODE_BENCH_IMAP_PASSWORD"] = server.password
        section = BackupsSection.model_validate({"mailboxes": [{
            "type": "imap", "name": "bench", "host": server.host, "port": server.port, "security": "none",
            "username": server.user, "password": {"env": "CUSTODE_BENCH_IMAP_PASSWORD"}}]})
        state = State(Path(tmp) / "state.db")
        monitor = BackupMonitor(section, state)
        started = time.perf_counter()
        cpu = time.process_time()
        summary = monitor.poll()
        first_sync = time.perf_counter() - started
        first_cpu = time.process_time() - cpu
        assert summary.errors == {}, summary.errors
        assert summary.new == len(messages), (summary.new, len(messages))
        empty = []
        for _ in range(args.empty_polls):
            started = time.perf_counter()
            again = monitor.poll()
            empty.append(time.perf_counter() - started)
            assert again.new == 0
        state.close()
    figures = {"messages": len(messages), "append_seconds": round(fill, 2), "first_sync_seconds": round(first_sync, 2),
               "first_sync_cpu_seconds": round(first_cpu, 2), "messages_per_second": round(len(messages) / first_sync),
               "reports": summary.reports, "empty_poll_median_ms": round(statistics.median(empty) * 1000, 1),
               "empty_poll_max_ms": round(max(empty) * 1000, 1)}
    print(f"filled the mailbox with {len(messages)} messages in {fill:.1f} s (IMAP APPEND)")
    print(f"first sync: {first_sync:.2f} s ({figures['messages_per_second']} messages/s, {summary.reports} reports, "
          f"CPU {first_cpu:.2f} s) - target < 30 s")
    print(f"empty poll: median {figures['empty_poll_median_ms']} ms, max {figures['empty_poll_max_ms']} ms over "
          f"{len(empty)} polls - target < 200 ms")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
