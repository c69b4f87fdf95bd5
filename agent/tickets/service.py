"""The ticket machinery of a running agent: one planner thread and one delivery thread per backend.

A backend that hangs or is down for a day holds only its own thread; the
planner keeps writing the outbox and the other helpdesks keep receiving.
Incident changes wake the planner at once, so a ticket leaves within a second
of the incident, not at the next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from custode.agent.clock import Clock, current_time
from custode.agent.redact import safe_exc_info
from custode.agent.state import State
from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.delivery import Audit, Deliverer
from custode.agent.tickets.planner import TicketPlanner

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.tickets.backends.base import TicketBackend

log = logging.getLogger(__name__)
IDLE_WAIT = 5.0
"""Longest sleep of a delivery thread with nothing due: bounds how late a delayed solve or a retry can be."""
PUBLISH_EVERY = 30.0
PLAN_POLL = 1.0
"""The planner also looks for incident events every second: a command run in another process
(``custode backups poll``) writes incidents this process is not told of."""


class TicketService:
    def __init__(self, config: "Config", state: State, publish: Callable[[list], None] | None = None,
                 audit: Audit | None = None, clock: Clock = current_time,
                 backends: dict[str, "TicketBackend"] | None = None) -> None:
        self.config = config
        self.state = state
        self.publish_families = publish
        self.clock = clock
        self.planner = TicketPlanner(config, state, clock)
        from custode.agent.service_levels.metrics import SlaMetrics

        self.sla_metrics = SlaMetrics(config, state)
        built = backends if backends is not None else {
            name: build_backend(name, settings, config.smtp) for name, settings in config.tickets.backends.items()}
        self.deliverers = {name: Deliverer(config, state, self.planner, backend, clock, audit)
                           for name, backend in built.items()}
        self._stop = threading.Event()
        self._plan_wake = threading.Event()
        self._wakes = {name: threading.Event() for name in self.deliverers}
        self._threads: list[threading.Thread] = []
        self._plan_lock = threading.Lock()

    # --- one step, for the command line and tests ---------------------------------------

    def plan(self) -> int:
        with self._plan_lock:
            queued = self.planner.plan()
            queued += self.planner.maintain()
        return queued

    def step(self, sync: bool = False) -> int:
        """Plan, then try every due operation of every backend once; return operations tried."""
        self.plan()
        tried = 0
        for deliverer in self.deliverers.values():
            if sync:
                deliverer.sync()
            for _ in range(10):  # a delivery may queue more (a replacement ticket): go on while there is work
                done = deliverer.run_once(limit=10_000)
                tried += done
                if not done:
                    break
        self.plan()
        self.publish()
        return tried

    def publish(self) -> None:
        if self.publish_families is None:
            return
        from custode.agent.tickets.metrics import ticket_families

        now = self.clock()
        self.publish_families(ticket_families(self.state, list(self.deliverers), now)
                              + self.sla_metrics.families(now))

    # --- threads ----------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._planner_loop, name="tickets-plan", daemon=True)]
        self._threads += [threading.Thread(target=self._delivery_loop, args=(name,), name=f"tickets-{name}",
                                           daemon=True) for name in self.deliverers]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """An incident changed: plan now."""
        self._plan_wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._plan_wake.set()
        for event in self._wakes.values():
            event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _planner_loop(self) -> None:
        published = 0.0
        woken = True
        while not self._stop.is_set():
            self._plan_wake.clear()
            try:
                queued = self.plan()
                if queued:
                    for event in self._wakes.values():
                        event.set()
                # Metrics are re-read when something changed (here or in a delivery, which wakes us),
                # else only every PUBLISH_EVERY for the ages: not five queries a second for nothing.
                if queued or woken or time.monotonic() - published >= PUBLISH_EVERY:
                    self.publish()
                    published = time.monotonic()
            except Exception as exc:  # logged redacted: an error text may quote a URL with a credential
                log.error("ticket planning failed; will try again", exc_info=safe_exc_info(exc))
            woken = self._plan_wake.wait(PLAN_POLL)

    def _delivery_loop(self, name: str) -> None:
        deliverer = self.deliverers[name]
        wake = self._wakes[name]
        interval = self.config.tickets.sync_interval
        while not self._stop.is_set():
            wake.clear()
            tried = 0
            try:
                tried = deliverer.run_once()
                if self.clock() - deliverer.last_sync >= interval:
                    deliverer.sync()
                if tried:
                    self._plan_wake.set()  # a closed ticket may need a replacement; metrics changed
            except Exception as exc:
                log.error("ticket delivery failed; will try again", exc_info=safe_exc_info(exc),
                          extra={"backend": name})
            if tried:
                continue
            next_at = deliverer.next_attempt_at()
            wait = IDLE_WAIT if next_at is None else min(IDLE_WAIT, max(0.05, next_at - self.clock()))
            wake.wait(wait)
