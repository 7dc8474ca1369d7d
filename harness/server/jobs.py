"""The job registry: admission, worker threads, per-job event buffers, results and cancel.

A job is a run, a request or a plan the server accepted. Admission is bounded: at most
``concurrency`` jobs run at once (each in a worker thread, because the backend blocks) and at
most ``queue`` more wait; past that :class:`Busy` (429 with ``Retry-After``). Every accepted job
ends with a result or an error whether or not anyone still listens: the work runs in a thread
that no client connection owns.

Each job keeps its events in a bounded buffer, numbered from 1, so a client that lost its
stream resumes with ``Last-Event-ID``; past the buffer's caps the oldest events go, and a
resume from before the buffer's start is told about the gap. Listeners are callbacks run on
the producing thread (the SSE route turns them into an asyncio wake-up), so the first event
reaches a stream without polling.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import HarnessError
from harness.server.errors import Busy, Draining, problem_body

__all__ = [
    "BufferedEvent",
    "Job",
    "JobFailed",
    "JobKind",
    "JobOutcome",
    "JobRegistry",
    "JobStatus",
    "Work",
]

log = logging.getLogger(__name__)

JobKind = Literal["script", "request", "plan"]
JobStatus = Literal["queued", "running", "finished", "cancelled"]
MAX_BUFFER_EVENTS = 4096
MAX_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class BufferedEvent:
    """One event as a stream sends it: its number in the job, its kind and its JSON (one line)."""

    seq: int
    kind: str
    data: str


@dataclass(frozen=True)
class JobOutcome:
    """What a job's work returns: the run result and the report, as JSON-ready dicts."""

    result: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    # What a front-end prints beside a script run's result (the CLI's summary): run_dir, events_dropped, egress.
    details: dict[str, Any] = field(default_factory=dict)


class JobFailed(Exception):
    """Raised by a job's work that failed with ``error`` yet has an outcome to keep (a refused gate's report)."""

    def __init__(self, error: HarnessError, outcome: JobOutcome) -> None:
        super().__init__(error.message)
        self.error, self.outcome = error, outcome


class Job:
    """One accepted job: its status, its bounded event buffer, its outcome, and its cancel switch."""

    def __init__(
        self,
        job_id: str,
        kind: JobKind,
        *,
        max_events: int = MAX_BUFFER_EVENTS,
        max_bytes: int = MAX_BUFFER_BYTES,
    ) -> None:
        self.id = job_id
        self.kind: JobKind = kind
        self.status: JobStatus = "queued"
        self.created = time.monotonic()
        self.started: float | None = None
        self.ended: float | None = None
        self.outcome = JobOutcome()
        self.error: dict[str, Any] | None = None
        self.cancel_requested = threading.Event()
        self.done = threading.Event()
        self.events_dropped = 0  # evicted from the buffer (still in the run's events.jsonl)
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._events: deque[BufferedEvent] = deque()
        self._bytes = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._cancel_hooks: list[Callable[[], object]] = []
        self._answer: bool | None = None
        self._answered = threading.Event()

    # -- events ---------------------------------------------------------------------------------
    def emit(self, kind: str, data: str) -> int:
        """Buffer one event (``data`` is one line of JSON) and wake the listeners; its seq."""
        with self._lock:
            self._seq += 1
            self._events.append(BufferedEvent(self._seq, kind, data))
            self._bytes += len(data)
            while len(self._events) > self._max_events or (self._bytes > self._max_bytes and len(self._events) > 1):
                old = self._events.popleft()
                self._bytes -= len(old.data)
                self.events_dropped += 1
            seq = self._seq
        self._notify()
        return seq

    def drop_events(self) -> None:
        """Let go of the buffered events (an ended job's, to free memory); a later resume sees a gap."""
        with self._lock:
            self.events_dropped += len(self._events)
            self._events.clear()
            self._bytes = 0

    def since(self, after: int) -> tuple[tuple[int, int] | None, list[BufferedEvent]]:
        """Events after seq ``after``, and the (first, last) seqs lost before the buffer's start, if any."""
        with self._lock:
            events = [e for e in self._events if e.seq > after] if self._events else []
            first = self._events[0].seq if self._events else self._seq + 1
        gap = (after + 1, first - 1) if first > after + 1 else None
        return gap, events

    @property
    def buffered_bytes(self) -> int:
        """The bytes of event data this job holds now."""
        return self._bytes

    @property
    def last_seq(self) -> int:
        """The seq of the newest event (0 before the first)."""
        return self._seq

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the producing thread) after each event and at the end; returns the unsubscriber."""
        with self._lock:
            self._listeners.append(callback)

        def stop() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return stop

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback()
            except Exception:
                log.debug("a job listener failed", exc_info=True)

    # -- cancel ---------------------------------------------------------------------------------
    def on_cancel(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` when the job is cancelled (at once if it already was)."""
        with self._lock:
            self._cancel_hooks.append(hook)
        if self.cancel_requested.is_set():
            _call(hook)

    def cancel(self) -> None:
        """Ask the job to stop; its hooks (which kill its container) run once."""
        with self._lock:
            if self.cancel_requested.is_set() or self.done.is_set():
                return
            self.cancel_requested.set()
            hooks = list(self._cancel_hooks)
        for hook in hooks:
            _call(hook)

    # -- confirmation -----------------------------------------------------------------------------
    def ask(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for :meth:`answer`; False when declined, unanswered or cancelled meanwhile.

        The server never waits on a terminal: a client that asked for confirmation answers over
        HTTP, and one that went away is taken as a no when the time is up.
        """
        self.on_cancel(self._answered.set)
        self._answered.wait(timeout)
        with self._lock:
            return bool(self._answer) and not self.cancel_requested.is_set()

    def answer(self, run: bool) -> bool:
        """Answer the job's question (the first answer counts); False when it was already answered."""
        with self._lock:
            if self._answered.is_set():
                return False
            self._answer = run
        self._answered.set()
        return True

    # -- views ----------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """True once the job has its outcome (or error) and will not change again."""
        return self.done.is_set()

    def view(self) -> dict[str, Any]:
        """The ``GET /v1/runs/{id}`` body."""
        return {
            "run_id": self.id,
            "kind": self.kind,
            "status": self.status,
            "result": self.outcome.result,
            "report": self.outcome.report,
            "error": self.error,
            **self.outcome.details,
        }

    def _end(self, status: JobStatus, outcome: JobOutcome, error: dict[str, Any] | None) -> None:
        with self._lock:
            self.status = status
            self.outcome = outcome
            self.error = error
            self.ended = time.monotonic()
            self.done.set()
        self._notify()


def _call(hook: Callable[[], object]) -> None:
    try:
        hook()
    except Exception:
        log.warning("a cancel hook failed", exc_info=True)


Work = Callable[[Job], JobOutcome]


@dataclass
class _Stats:
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=50))


class JobRegistry:
    """Admits jobs (bounded running + bounded queue), runs them in worker threads, keeps their outcomes."""

    def __init__(
        self,
        concurrency: int,
        queue: int,
        *,
        retain: int = 1000,
        retain_bytes: int = 64 * 1024 * 1024,
        on_start: Callable[[Job], None] | None = None,
        on_end: Callable[[Job], None] | None = None,
        max_events: int = MAX_BUFFER_EVENTS,
        max_bytes: int = MAX_BUFFER_BYTES,
    ) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency must be at least 1 and the queue at least 0")
        self.concurrency = concurrency
        self.queue = queue
        self.retain = retain
        self.retain_bytes = retain_bytes
        self._on_start = on_start
        self._on_end = on_end
        self._caps = (max_events, max_bytes)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending = 0  # admitted and not ended: running plus queued
        self._running = 0
        self._draining = False
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stats = _Stats()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="harness-job")

    # -- admission ------------------------------------------------------------------------------
    def submit(self, job_id: str, kind: JobKind, work: Work) -> Job:
        """Admit a job and queue its work; Busy when every slot and queue place is taken, Draining on shutdown."""
        with self._lock:
            if self._draining:
                raise Draining("the server is shutting down and takes no new jobs", hint="retry on the next server")
            if self._pending >= self.concurrency + self.queue:
                wait = self._retry_after_locked()
                raise Busy(
                    f"all {self.concurrency} run slots and {self.queue} queue places are taken",
                    hint=f"retry after {wait} s",
                    retry_after=wait,
                )
            if job_id in self._jobs:
                raise ValueError(f"job id {job_id} is already taken")
            job = Job(job_id, kind, max_events=self._caps[0], max_bytes=self._caps[1])
            self._jobs[job_id] = job
            self._pending += 1
            self._evict_locked()
        self._pool.submit(self._run, job, work)
        return job

    def _retry_after_locked(self) -> int:
        # A queue place opens each time a running job ends: about every typical run / slots seconds.
        durations = self._stats.durations
        typical = sorted(durations)[len(durations) // 2] if durations else 1.0
        return max(1, min(60, math.ceil(typical / self.concurrency)))

    def _evict_locked(self) -> None:
        # Ended jobs are kept for late readers, oldest out first: their events within a byte budget
        # (a resume past it is told of the gap), their outcomes within a count (then the run folder).
        ended = [j for j in self._jobs.values() if j.done.is_set()]
        held = sum(j.buffered_bytes for j in ended)
        for job in ended:
            if held <= self.retain_bytes:
                break
            held -= job.buffered_bytes
            job.drop_events()
        for job in ended[: max(0, len(ended) - self.retain)]:
            del self._jobs[job.id]

    # -- lookup and cancel -----------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with this id while the registry keeps it (the last ``retain`` ended ones, and all live ones)."""
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        """Cancel ``job``: a queued one ends at once, a running one when its hooks have stopped its container."""
        job.cancel()
        with self._lock:
            queued = job.status == "queued" and not job.done.is_set()
        if queued:
            self._end(job, "cancelled", JobOutcome(), None)

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` began: no new jobs are admitted."""
        return self._draining

    def counts(self) -> dict[str, int]:
        """Running and queued jobs now."""
        with self._lock:
            return {"running": self._running, "queued": self._pending - self._running}

    # -- running ----------------------------------------------------------------------------------
    def _run(self, job: Job, work: Work) -> None:
        with self._lock:
            if job.done.is_set():
                return  # cancelled while queued: already ended and counted
            job.status = "running"
            job.started = time.monotonic()
            self._running += 1
        if self._on_start is not None:
            _safe(self._on_start, job)
        outcome, error = JobOutcome(), None
        try:
            outcome = work(job)
        except JobFailed as failed:
            outcome, error = failed.outcome, problem_body(failed.error)
        except HarnessError as exc:
            error = problem_body(exc)
        except BaseException as exc:
            log.exception("job %s failed", job.id)
            error = {
                "type": "InternalError",
                "title": "the job failed inside the server",
                "status": 500,
                "detail": type(exc).__name__,
            }
        status: JobStatus = "cancelled" if job.cancel_requested.is_set() else "finished"
        self._end(job, status, outcome, error)

    def _end(self, job: Job, status: JobStatus, outcome: JobOutcome, error: dict[str, Any] | None) -> None:
        with self._lock:
            if job.done.is_set():
                return
            if job.started is not None:
                self._running -= 1
                self._stats.durations.append(time.monotonic() - job.started)
            self._pending -= 1
        job._end(status, outcome, error)
        if self._on_end is not None:
            _safe(self._on_end, job)
        with self._lock:
            self._evict_locked()
            self._idle.notify_all()

    # -- shutdown ---------------------------------------------------------------------------------
    def drain(self, grace: float) -> bool:
        """Stop admitting, give jobs ``grace`` seconds, then cancel the rest and wait; True if none was cut."""
        with self._lock:
            self._draining = True
            deadline = time.monotonic() + grace
            while self._pending and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            clean = self._pending == 0
            live = [j for j in self._jobs.values() if not j.done.is_set()]
        for job in live:
            self.cancel(job)
        with self._lock:
            # Cancel hooks kill containers: a cancelled run ends within the engine's kill time.
            deadline = time.monotonic() + 60
            while self._pending and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        return clean

    def close(self) -> None:
        """Cancel whatever is left and stop the worker threads."""
        with self._lock:
            self._draining = True
            live = [j for j in self._jobs.values() if not j.done.is_set()]
        for job in live:
            self.cancel(job)
        self._pool.shutdown(wait=True, cancel_futures=False)


def _safe(callback: Callable[[Job], None], job: Job) -> None:
    try:
        callback(job)
    except Exception:
        log.warning("a job observer failed", exc_info=True)
