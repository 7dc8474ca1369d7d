"""A warm pool of pre-started, single-use containers, and a background remover.

A pooled container is created and started ahead of time; its entrypoint waits on stdin
for exactly one job, runs it, and exits. It is never reused. Starting a container is
most of a cold run's cost, so taking one from the pool saves that on the critical path.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Reaper", "WarmPool"]

log = logging.getLogger(__name__)
H = TypeVar("H")


class WarmPool(Generic[H]):
    """Keeps up to ``size`` ready handles made by ``make``; each handle is handed out once."""

    def __init__(self, size: int, make: Callable[[], H], discard: Callable[[H], None]) -> None:
        self.size = size
        self._make = make
        self._discard = discard
        self._ready: queue.SimpleQueue[H] = queue.SimpleQueue()
        self._count = 0
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="harness-pool", daemon=True)
        self._wanted.set()
        self._thread.start()

    def take(self) -> H | None:
        """A ready handle, or None at once when none is ready (the caller then runs cold).

        Refilling waits for :meth:`refill`: starting a container while the taken one runs
        competes with it for the engine and the CPU (measured: +25 ms on a 50 ms run).
        """
        try:
            handle = self._ready.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            self._count -= 1
        return handle

    @property
    def ready(self) -> int:
        """How many handles are ready now."""
        with self._lock:
            return self._count

    def refill(self) -> None:
        """Start making handles again up to ``size`` (call when the taken one is done)."""
        self._wanted.set()

    def wait_ready(self, count: int, timeout: float) -> bool:
        """Block until ``count`` handles are ready (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._count >= count:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop refilling and discard every handle still waiting."""
        self._stopped.set()
        self._wanted.set()
        self._thread.join(timeout=30)
        while True:
            try:
                handle = self._ready.get_nowait()
            except queue.Empty:
                break
            self._discard(handle)

    def _fill(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            self._wanted.wait()
            with self._lock:
                full = self._count >= self.size
            if full:
                self._wanted.clear()
                # A take() between the check and the clear sets the event again; re-check.
                with self._lock:
                    if self._count < self.size:
                        self._wanted.set()
                continue
            try:
                handle = self._make()
            except Exception as exc:  # noqa: BLE001 - keep the pool alive; runs fall back to cold
                failures += 1
                log.warning("warm pool could not start a container: %s", exc)
                self._stopped.wait(min(30.0, 0.5 * 2**failures))
                continue
            failures = 0
            if self._stopped.is_set():
                self._discard(handle)
                break
            with self._lock:
                self._count += 1
            self._ready.put(handle)


class Reaper:
    """Removes finished containers in the background, off the run's critical path."""

    def __init__(self, remove: Callable[[str], None]) -> None:
        self._remove = remove
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="harness-reaper", daemon=True)
        self._thread.start()

    def put(self, container_id: str) -> None:
        """Queue a container for removal."""
        self._queue.put(container_id)

    def drain(self) -> None:
        """Wait until every queued container is removed."""
        self._queue.join()

    def close(self) -> None:
        """Remove what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._remove(item)
            except Exception as exc:  # noqa: BLE001 - cleanup failures are logged, not raised
                log.warning("could not remove container %s: %s", item, exc)
            finally:
                self._queue.task_done()
