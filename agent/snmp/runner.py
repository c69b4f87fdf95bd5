"""One asyncio event loop in one daemon thread, and one pysnmp engine, for all the farm's SNMP polls.

The farm's worker threads block in :meth:`SnmpRunner.poll`; the polls run
concurrently as coroutines on the runner's loop, sharing the engine's two UDP
sockets (IPv4, IPv6) and its USM state. pysnmp is not thread-safe, so nothing
but the loop thread ever touches the engine. The loop and engine start with the
first poll (a farm without SNMP devices pays nothing) and stop in
:meth:`SnmpRunner.close`; a poll after ``close`` starts them again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from pysnmp.entity.engine import SnmpEngine

from custode.agent.snmp.client import engine_footprint, poll_device
from custode.agent.snmp.credentials import Credentials
from custode.agent.snmp.device import DeviceSnapshot, SnmpError
from custode.agent.snmp.options import SnmpOptions

GRACE_SECONDS = 1.0
"""How long past its own deadline a poll may take to hand back what it read before it is cancelled."""

T = TypeVar("T")


class SnmpRunner:
    """Thread-safe front of the shared loop and engine; ``poll`` from any thread but the loop's own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: SnmpEngine | None = None

    def _started(self) -> tuple[asyncio.AbstractEventLoop, SnmpEngine]:
        with self._lock:
            if self._loop is None or self._engine is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="custode-snmp", daemon=True)
                thread.start()

                async def make_engine() -> SnmpEngine:
                    return SnmpEngine()  # loads pysnmp's own MIB modules: ~0.3 s, once

                self._engine = asyncio.run_coroutine_threadsafe(make_engine(), loop).result(60)
                self._loop, self._thread = loop, thread
            return self._loop, self._engine

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the loop; cancel it after ``timeout`` seconds (:class:`TimeoutError`)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("SnmpRunner.run called from its own loop thread: await the coroutine instead")
        loop, _ = self._started()
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"did not finish within {timeout:g} s") from None

    def poll(self, address: str, options: SnmpOptions, credentials: Credentials, *,
             timeout: float) -> DeviceSnapshot:
        """Poll one device, blocking this thread at most ``timeout`` seconds (plus :data:`GRACE_SECONDS`).

        Modules still unread when ``timeout`` runs out are problems of the snapshot; a poll that cannot hand
        back even that in time is cancelled and raises :class:`SnmpError`.
        """
        _, engine = self._started()
        deadline = time.monotonic() + timeout
        try:
            return self.run(poll_device(engine, address, options, credentials, deadline=deadline),
                            timeout + GRACE_SECONDS)
        except TimeoutError:
            raise SnmpError(f"the poll of {address}:{options.port} did not finish within {timeout:g} s") from None

    def footprint(self) -> dict[str, int]:
        """What the polls keep in the shared engine (transports, communities, users, target rows)."""
        loop, engine = self._started()

        async def count() -> dict[str, int]:
            return engine_footprint(engine)

        return asyncio.run_coroutine_threadsafe(count(), loop).result(10)

    def close(self) -> None:
        """Close the engine's sockets and stop the loop thread (idempotent)."""
        with self._lock:
            loop, thread, engine = self._loop, self._thread, self._engine
            self._loop = self._thread = self._engine = None
        if loop is None:
            return

        async def shut() -> None:
            if engine is not None and engine.transport_dispatcher is not None:
                engine.close_dispatcher()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shut(), loop).result(10)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> SnmpRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
