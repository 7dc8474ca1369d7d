"""The job registry with the scripted backend: admission, events and resume, cancel, drain, every job ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import NotFound
from harness.events import LogEvent, OutputEvent
from harness.records import RunSpec
from harness.server.errors import Busy, Draining
from harness.server.jobs import Job, JobOutcome, JobRegistry
from harness.server.metrics import Metrics
from harness.server.models import RunIn
from harness.server.usecases import run_script
from harness.services import Services
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend


@pytest.fixture
def registry() -> Iterator[JobRegistry]:
    reg = JobRegistry(concurrency=1, queue=1)
    yield reg
    reg.close()


def _blocked(gate: threading.Event, started: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def work(job: Job) -> JobOutcome:
        if started is not None:
            started.set()
        gate.wait(30)
        return JobOutcome(result={"status": "succeeded"})

    return work


def test_admission_is_bounded_and_says_when_to_retry(registry: JobRegistry) -> None:
    gate, started = threading.Event(), threading.Event()
    first = registry.submit("a" * 12, "script", _blocked(gate, started))
    started.wait(10)
    second = registry.submit("b" * 12, "script", _blocked(gate))
    with pytest.raises(Busy) as refused:
        registry.submit("c" * 12, "script", _blocked(gate))
    assert refused.value.retry_after >= 1
    assert registry.counts() == {"running": 1, "queued": 1}
    assert second.status == "queued"
    gate.set()
    for job in (first, second):
        assert job.done.wait(10)
        assert job.status == "finished" and job.outcome.result == {"status": "succeeded"}
    assert registry.counts() == {"running": 0, "queued": 0}


def test_a_failing_job_still_ends_with_its_error(registry: JobRegistry) -> None:
    def fails(job: Job) -> JobOutcome:
        raise NotFound("no scaffold named x", hint="see templates", id="x")

    def crashes(job: Job) -> JobOutcome:
        raise ZeroDivisionError

    known = registry.submit("d" * 12, "request", fails)
    assert known.done.wait(10)
    assert known.status == "finished" and known.error is not None
    assert known.error["type"] == "NotFound" and known.error["status"] == 404 and known.error["data"] == {"id": "x"}
    bug = registry.submit("e" * 12, "script", crashes)
    assert bug.done.wait(10)
    assert bug.error is not None and bug.error["type"] == "InternalError" and bug.error["status"] == 500


def test_events_are_numbered_resumable_and_bounded() -> None:
    job = Job("f" * 12, "script", max_events=3)
    for i in range(5):
        job.emit("log", json.dumps({"i": i}))
    gap, events = job.since(0)
    assert gap == (1, 2)  # the two oldest were evicted
    assert [e.seq for e in events] == [3, 4, 5] and job.events_dropped == 2
    assert job.since(3) == (None, [e for e in events if e.seq > 3])
    assert job.since(5) == (None, [])


def test_listeners_hear_each_event_and_the_end(registry: JobRegistry) -> None:
    heard: list[int] = []
    gate = threading.Event()

    def work(job: Job) -> JobOutcome:
        job.emit("log", "{}")
        gate.wait(10)
        return JobOutcome()

    job = registry.submit("0" * 12, "script", work)
    job.listen(lambda: heard.append(job.last_seq))
    gate.set()
    assert job.done.wait(10)
    assert heard and heard[-1] == 1 and job.status == "finished"


def test_cancel_a_queued_job_ends_it_at_once_and_a_running_one_through_its_hooks(registry: JobRegistry) -> None:
    gate, started = threading.Event(), threading.Event()
    stopped: list[str] = []

    def running(job: Job) -> JobOutcome:
        job.on_cancel(lambda: (stopped.append(job.id), gate.set()))
        started.set()
        gate.wait(30)
        return JobOutcome(result={"status": "interrupted"})

    first = registry.submit("1" * 12, "script", running)
    started.wait(10)
    queued = registry.submit("2" * 12, "script", _blocked(threading.Event()))
    registry.cancel(queued)
    assert queued.done.is_set() and queued.status == "cancelled"
    registry.cancel(first)
    assert first.done.wait(10)
    assert first.status == "cancelled" and stopped == [first.id]
    assert first.outcome.result == {"status": "interrupted"}


def test_drain_refuses_new_jobs_lets_running_finish_and_cancels_past_grace() -> None:
    registry = JobRegistry(concurrency=2, queue=0)
    try:
        quick, slow = threading.Event(), threading.Event()
        started = threading.Event()
        finishing = registry.submit("3" * 12, "script", _blocked(quick))

        def stuck(job: Job) -> JobOutcome:
            job.on_cancel(slow.set)
            started.set()
            slow.wait(30)
            return JobOutcome()

        cut = registry.submit("4" * 12, "script", stuck)
        started.wait(10)
        threading.Timer(0.05, quick.set).start()  # the first finishes within the grace
        assert registry.drain(grace=0.5) is False
        assert finishing.status == "finished" and cut.status == "cancelled"
        with pytest.raises(Draining):
            registry.submit("5" * 12, "script", _blocked(quick))
    finally:
        registry.close()


def test_run_script_streams_the_run_into_the_job_and_writes_its_result(tmp_path: Path) -> None:
    events = (OutputEvent(seq=0, t=0, stream="stdout", text="hello"), LogEvent(seq=0, t=0, message="note"))
    backend = ScriptedBackend(lambda spec: Outcome(events=events, outputs={"out.txt": b"x"}))
    settings = Settings.from_env(data_dir=tmp_path)
    registry = JobRegistry(concurrency=1, queue=0)
    try:
        with Services(settings, backend=backend) as services:
            body = RunIn(source="print('hello')", env={"A": "1"})
            job = registry.submit("6" * 12, "script", lambda job: run_script(services, job, body, (), Metrics()))
            assert job.done.wait(10)
    finally:
        registry.close()
    assert job.error is None and job.outcome.result is not None
    assert job.outcome.result["status"] == "succeeded" and job.outcome.result["run_id"] == job.id
    _, buffered = job.since(0)
    assert [e.kind for e in buffered] == ["run_started", "output", "log", "run_finished"]
    spec: RunSpec = backend.specs[0]
    assert spec.run_id == job.id and spec.env == {"A": "1"} and spec.limits is None
    folder = settings.runs_dir / job.id
    assert json.loads((folder / "result.json").read_text())["status"] == "succeeded"
    assert (folder / "output" / "out.txt").read_bytes() == b"x"
    assert len((folder / "events.jsonl").read_text().splitlines()) == 4


def test_ended_jobs_are_kept_within_a_count_and_a_byte_budget() -> None:
    registry = JobRegistry(concurrency=1, queue=10, retain=2, retain_bytes=10_000)

    def chatty(size: int):  # type: ignore[no-untyped-def]
        def work(job: Job) -> JobOutcome:
            job.emit("output", "x" * size)
            return JobOutcome()

        return work

    try:
        jobs = [registry.submit(f"{i:012x}", "script", chatty(100)) for i in range(4)]
        for job in jobs:
            assert job.done.wait(10)
        assert [registry.get(j.id) is not None for j in jobs] == [False, False, True, True]
        big = registry.submit("a" * 12, "script", chatty(20_000))
        assert big.done.wait(10)
        # Over the byte budget: its events go (a resume is told of the gap), its outcome stays.
        assert registry.get(big.id) is big and big.status == "finished"
        assert big.since(0) == ((1, 1), []) and big.buffered_bytes == 0
    finally:
        registry.close()
