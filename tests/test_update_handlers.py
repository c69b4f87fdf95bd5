"""Every playbook action has its handler, and a step that lacks what it needs fails with a reason, not an assert."""

from __future__ import annotations

import socket

from custode.agent.updates.playbook import ACTIONS, Step
from custode.agent.updates.steps import HANDLERS, StepExecutor


def test_every_action_but_notify_has_a_handler() -> None:
    assert set(HANDLERS) == set(ACTIONS) - {"notify"}  # notify is the runner's: it mails, on no host


def test_a_host_step_without_a_host_fails_with_a_reason() -> None:
    executor = StepExecutor(sleep=lambda seconds: None)
    outcome = executor.execute(Step(run="systemctl restart anagrafe"), None)
    assert outcome.status == "failed" and "runs on a host" in outcome.detail
    outcome = executor.execute(Step(check={"service": "anagrafe"}), None)
    assert outcome.status == "failed" and "needs a host" in outcome.detail


def test_a_check_runs_through_its_handler() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        outcome = StepExecutor().execute(Step(check={"tcp": f"127.0.0.1:{port}"}, timeout=5), None)
    assert outcome.status == "ok" and "accepts connections" in outcome.detail
    closed = StepExecutor().execute(Step(check={"tcp": f"127.0.0.1:{port}"}, timeout=5), None)
    assert closed.status == "failed"
