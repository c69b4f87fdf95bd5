"""1,000 incidents through the ticket outbox to a helpdesk that fails 10% of calls.

Custode's planner and delivery thread (the same TicketService the agent runs)
deliver to the Zendesk test double (tests/zendesk_fake.py) on 127.0.0.1,
which answers 10% of calls with 500/503/429, half of the failed writes taking
effect before the error. Side by side, in the same run, against fresh copies
of the same double: what an integration that does not retry creates (Zabbix's
GLPI media type sets retries to 1) and one that retries blindly, without
looking for the ticket first.

    .venv/bin/python bench/tickets_outbox.py [--incidents 1000] [--fail-ratio 0.1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import logging  # noqa: E402

import requests  # noqa: E402
from zendesk_fake import DEFAULT_EMAIL, DEFAULT_TOKEN, ZendeskFake  # noqa: E402

from custode.agent.config_loader import load_text  # noqa: E402
from custode.agent.incidents import CheckResult, Incidents  # noqa: E402
from custode.agent.state import State  # noqa: E402
from custode.agent.tickets.service import TicketService  # noqa: E402

logging.getLogger("agent").setLevel(logging.ERROR)  # retries are the point here, not news


def _key(i: int) -> str:
    return f"comune/backup/job{i:04d}"


def custode(incidents: int, fail_ratio: float, seed: int) -> dict:
    with ZendeskFake() as fake, tempfile.TemporaryDirectory() as tmp:
        fake.fail_ratio(fail_ratio, seed, after_apply=0.5)
        os.environ["BENCH_ZD_TOKEN"] = DEFAULT_TOKEN
        config = load_text(f"""
agent: {{tenant: comune}}
tenants: {{comune: {{name: Comune di Prova}}}}
tickets:
  default_backend: zd
  backends: {{zd: {{type: zendesk, url: "{fake.url}", email: {DEFAULT_EMAIL}, token: {{env: BENCH_ZD_TOKEN}}}}}}
  retry: {{first: 50ms, max: 1s}}
  sync_interval: 1h
""").model
        state = State(Path(tmp) / "state.db")
        service = TicketService(config, state)
        service.plan()  # the planner's first run: from here on every incident event is planned
        service.start()
        model = Incidents(state)
        started = time.perf_counter()
        for i in range(incidents):
            model.observe(CheckResult("comune", "backup", f"job{i:04d}", "critical", f"job{i:04d}: report missing"))
        written = time.perf_counter() - started
        service.wake()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            row = state.query("""SELECT SUM(state = 'done'), SUM(state = 'pending'), SUM(state = 'dead')
                                 FROM ticket_outbox""")[0]
            if (row[0] or 0) == incidents:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        service.stop()
        tries = state.query("SELECT SUM(attempts), MAX(attempts) FROM ticket_outbox")[0]
        tickets = fake.tickets()
        per_key = Counter(t["external_id"] for t in tickets)
        result = {"tickets": len(tickets), "distinct": len(per_key),
                  "duplicates": sum(c - 1 for c in per_key.values()), "lost": incidents - len(per_key),
                  "wall_s": round(wall, 2), "incidents_written_s": round(written, 2),
                  "delivered_per_s": round(len(per_key) / wall, 1), "http_calls": len(fake.calls),
                  "tries": tries[0], "max_tries": tries[1]}
        state.close()
        return result


def naive(incidents: int, fail_ratio: float, seed: int, retries: int) -> dict:
    """POST the ticket; on an error, POST again up to ``retries`` times. No search, no idempotency key."""
    with ZendeskFake() as fake:
        fake.fail_ratio(fail_ratio, seed, after_apply=0.5)
        session = requests.Session()
        session.auth = (f"{DEFAULT_EMAIL}/token", DEFAULT_TOKEN)
        started = time.perf_counter()
        for i in range(incidents):
            body = {"ticket": {"subject": f"job{i:04d}: report missing", "external_id": _key(i),
                               "comment": {"body": "report missing"}, "type": "incident"}}
            for _ in range(retries):
                answer = session.post(f"{fake.url}/api/v2/tickets.json", json=body, timeout=10)
                if answer.status_code == 201:
                    break
        wall = time.perf_counter() - started
        per_key = Counter(t["external_id"] for t in fake.tickets())
        return {"tickets": sum(per_key.values()), "distinct": len(per_key),
                "duplicates": sum(c - 1 for c in per_key.values()), "lost": incidents - len(per_key),
                "wall_s": round(wall, 2), "delivered_per_s": round(len(per_key) / wall, 1),
                "http_calls": len(fake.calls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--fail-ratio", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = {"custode (outbox, search before create)": custode(args.incidents, args.fail_ratio, args.seed),
            "peer: one try, no retry": naive(args.incidents, args.fail_ratio, args.seed, 1),
            "peer: 3 blind retries": naive(args.incidents, args.fail_ratio, args.seed, 3)}
    print(f"{args.incidents} incidents, helpdesk failing {args.fail_ratio:.0%} of calls "
          "(half of the failed writes applied before the error)\n")
    print(f"{'':42} {'tickets':>8} {'lost':>5} {'dupes':>6} {'wall s':>7} {'tickets/s':>10} {'HTTP calls':>11}")
    for name, r in rows.items():
        print(f"{name:42} {r['tickets']:>8} {r['lost']:>5} {r['duplicates']:>6} {r['wall_s']:>7} "
              f"{r['delivered_per_s']:>10} {r['http_calls']:>11}")
    ours = rows["custode (outbox, search before create)"]
    print(f"\ncustode: {ours['tries']} tries for {args.incidents} creates (at most {ours['max_tries']} for one); "
          f"writing the incidents took {ours['incidents_written_s']} s of the wall time")
    if args.json:
        print(json.dumps(rows))
    ok = ours["lost"] == 0 and ours["duplicates"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
