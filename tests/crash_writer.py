"""Writes state and audit records as fast as it can until killed (crash-safety test)."""

import random
import sys

from custode.agent.audit import AuditLog
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State


def main(db_path: str, audit_path: str, seed: int) -> None:
    rng = random.Random(seed)
    state = State(db_path)
    audit = AuditLog(audit_path, on_append=state.set_audit_anchor)
    incidents = Incidents(state, on_change=lambda c: audit.append(f"incident.{c.kind}", c.key, {"id": c.incident_id}))
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        target = f"srv{rng.randrange(20)}:/data"
        severity = rng.choice(["ok", "ok", "warning", "critical"])
        incidents.observe(CheckResult("crema", "filesystem", target, severity, f"write {n}"),
                          occurrence=rng.random() < 0.3)
        state.record_collector_run("cpu", float(n), rng.random() < 0.8, 0.01, None)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
