"""Kill -9 the agent at random instants while 200 incidents go out to a helpdesk that fails 10% of calls.

The claim under test: every ticket operation is delivered exactly once. The
agent is the real ``custode run`` process; the helpdesk is the Zendesk fake
(tests/zendesk_fake.py) in this process, so it outlives every kill. A tenth of
its answers are errors, and half of the failed writes take effect before the
error (the client cannot know it worked: the case that makes naive retries
duplicate tickets).
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import free_port, stop_process, wait_until
from zendesk_fake import DEFAULT_EMAIL, DEFAULT_TOKEN, ZendeskFake

from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State, StateError

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = 200
MARKER = re.compile(r"\[custode-op:([0-9a-f]+)\]")

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "custode.yaml"
    path.write_text(f"""
agent: {{tenant: provider, listen: "127.0.0.1:{free_port()}", data_dir: "{tmp_path / 'data'}"}}
tenants:
  provider: {{name: Provider, tickets: {{backend: none}}}}
  comune: {{name: Comune di Prova}}
tickets:
  default_backend: zd
  backends:
    zd: {{type: zendesk, url: "{url}", email: {DEFAULT_EMAIL}, token: {{env: CUSTODE_TEST_ZD_TOKEN}}, timeout: 5s}}
  followup_interval: 1ms
  flap_window: 1ms
  sync_interval: 1h
  retry: {{first: 200ms, max: 1s}}
""", encoding="utf-8")
    return path


def test_kill_9_at_random_instants_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(7)
    with ZendeskFake() as fake:
        fake.fail_ratio(0.10, seed=11, after_apply=0.5)
        config = _config(tmp_path, fake.url)
        env = {**os.environ, "CUSTODE_TEST_ZD_TOKEN": DEFAULT_TOKEN}
        log = open(tmp_path / "custode.log", "ab")

        def start() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config)], env=env,
                                    cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        agent = start()
        state_file = tmp_path / "data" / "state.db"
        assert wait_until(lambda: state_file.exists() and _cursor_ready(state_file), 30), \
            "the agent's ticket planner never started; see custode.log"
        state = State(state_file)
        incidents = Incidents(state)
        kills = 0
        try:
            for batch in range(4):  # incidents arrive while the agent is being killed and restarted
                at = time.time() - 600  # a second between steps: each repeat is past the follow-up interval
                for i in range(batch * 50, (batch + 1) * 50):
                    result = CheckResult("comune", "backup_missing", f"srv{i:03d}:job/nightly", "critical",
                                         f"report of job nightly on srv{i:03d} missing")
                    for step in range(3):  # opened, then two repeats → two follow-ups
                        incidents.observe(result, occurrence=True, now=at + step)
                    if i % 2 == 0:
                        incidents.observe(CheckResult("comune", "backup_missing", f"srv{i:03d}:job/nightly", "ok",
                                                      "report arrived, backup succeeded"), now=at + 3)
                for _ in range(2):
                    time.sleep(rng.uniform(0.4, 1.6))
                    agent.send_signal(signal.SIGKILL)
                    agent.wait(10)
                    kills += 1
                    agent = start()

            def settled() -> bool:
                rows = state.query("SELECT state, COUNT(*) FROM ticket_outbox GROUP BY state")
                counts = {r[0]: r[1] for r in rows}
                return counts.get("pending", 0) == 0 and sum(counts.values()) > 0 and \
                    _planned_all(state)

            while not settled() and kills < 14:  # keep killing while work remains
                time.sleep(rng.uniform(0.4, 1.6))
                agent.send_signal(signal.SIGKILL)
                agent.wait(10)
                kills += 1
                agent = start()
            fake.fail_ratio(0)  # let the last retries land
            assert wait_until(settled, 90, step=0.2), \
                f"outbox did not drain: {state.query('SELECT state, op, COUNT(*) FROM ticket_outbox GROUP BY 1, 2')}"
        finally:
            stop_process(agent)
            log.close()

        assert kills >= 8
        dead = state.query("SELECT op, last_error FROM ticket_outbox WHERE state = 'dead'")
        assert not dead, [tuple(r) for r in dead]
        tickets = fake.tickets()
        keys = Counter(t["external_id"] for t in tickets)
        assert len(tickets) == INCIDENTS, f"{len(tickets)} tickets for {INCIDENTS} incidents"
        assert all(count == 1 for count in keys.values()), [k for k, c in keys.items() if c > 1]
        comments = fake.all_comments()
        seen: Counter = Counter()
        for ticket in tickets:
            number = int(ticket["external_id"].split("/srv")[1][:3])
            bodies = [c["body"] for c in comments[ticket["id"]]]
            seen.update(m for body in bodies for m in MARKER.findall(body))
            # opening text + 2 follow-ups; recovered ones add the resolution note and the solve.
            expected = 3 if number % 2 else 5
            assert len(bodies) == expected, (ticket["external_id"], [
                b.splitlines()[0][:40] + " " + " ".join(MARKER.findall(b)) for b in bodies])
            assert ticket["status"] == ("solved" if number % 2 == 0 else "new")
        duplicated = [op for op, count in seen.items() if count > 1]
        assert not duplicated, f"operations written twice: {duplicated[:5]}"
        calls = len(fake.calls)
        print(f"crash test: {kills} kills, {calls} HTTP calls, {len(tickets)} tickets, {sum(seen.values())} "
              "operations, none twice")
        state.close()


def _cursor_ready(path: Path) -> bool:
    try:
        state = State(path)
    except (StateError, sqlite3.Error):  # the agent is still creating it
        return False
    try:
        return bool(state.query("SELECT 1 FROM ticket_cursor"))
    except sqlite3.Error:
        return False
    finally:
        state.close()


def _planned_all(state: State) -> bool:
    cursor = state.query("SELECT last_event_id FROM ticket_cursor")
    last = state.query("SELECT COALESCE(MAX(id), 0) FROM incident_events")[0][0]
    return bool(cursor) and cursor[0][0] >= last
