"""Operating workers: harness workers lists them, /metrics counts runs, SIGTERM finishes running jobs."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request
from pathlib import Path
from typing import Any

from fleetkit import Fleet, Redis, Remote, free_port

from harness.events import Event
from harness.records import RunResult, RunSpec


def test_workers_are_listed_and_count_their_runs(fleet: Fleet, redis_server: Redis, remote: Remote, cli: Any) -> None:
    port = free_port()
    fleet.start("w1", concurrency=2, extra=("--metrics-port", str(port)))
    backend = remote()
    assert backend.run(RunSpec(script='print("ok")\n')).status == "succeeded"
    assert backend.run(RunSpec(script="raise SystemExit(4)\n")).status == "failed"

    code, out, err = cli("workers", "--broker", redis_server.url, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 1
    row = rows[0]
    assert row["hostname"] == "harness@w1" and row["pool"] == "threads x2" and row["engine"].startswith("docker")
    assert (row["running"], row["done"], row["failed"]) == (0, 2, 0)

    code, out, _ = cli("workers", "--broker", redis_server.url)
    assert code == 0 and "harness@w1" in out and "threads x2" in out

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert 'harness_worker_runs_total{status="succeeded"} 1.0' in metrics
    assert 'harness_worker_runs_total{status="failed"} 1.0' in metrics
    assert "harness_worker_queue_wait_seconds_count 2.0" in metrics
    assert "harness_worker_run_duration_seconds_count 2.0" in metrics


def test_sigterm_finishes_the_running_job_then_removes_the_containers(
    fleet: Fleet, remote: Remote, tmp_path: Path
) -> None:
    worker = fleet.start("w1", pool=2)
    started = threading.Event()
    outcome: list[RunResult | BaseException] = []
    script = (
        "import json, time\n"
        'print(json.dumps({"v": 1, "kind": "log", "level": "info", "message": "up"}), flush=True)\n'
        "time.sleep(1.5)\n"
        'open("/output/late.txt", "w").write("finished")\n'
    )

    def on_event(event: Event) -> None:
        if event.kind == "log":
            started.set()

    def submit() -> None:
        try:
            outcome.append(remote().run(RunSpec(script=script, output_dir=tmp_path / "out"), on_event=on_event))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    assert started.wait(30)
    worker.proc.send_signal(signal.SIGTERM)  # warm shutdown
    thread.join(30)
    assert not thread.is_alive()
    result = outcome[0]
    assert isinstance(result, RunResult) and result.status == "succeeded", result
    assert (tmp_path / "out" / "late.txt").read_text() == "finished"
    assert worker.proc.wait(30) == 0
    # Its warm pool and the finished run's container are gone: checked by the autouse leftover fixture.


def test_an_engine_failure_on_the_worker_ends_the_run_as_error_with_the_reason(fleet: Fleet, remote: Remote) -> None:
    from harness.execution.limits import Limits

    fleet.start("w1")
    # More CPUs than this machine has: the engine refuses to create the container.
    result = remote().run(RunSpec(script='print("never")\n', limits=Limits(timeout_s=5, cpus=64)))
    assert result.status == "error"
    assert result.message.startswith("the engine of worker harness@w1 failed: ")
    assert "refused" in result.message


def test_a_remote_run_is_cancelled_on_its_worker(fleet: Fleet, remote: Remote) -> None:
    fleet.start("w1")
    backend = remote()
    spec = RunSpec(
        script=(
            "import json, time\n"
            'print(json.dumps({"v": 1, "kind": "log", "level": "info", "message": "up"}), flush=True)\n'
            "time.sleep(4)\n"
        )
    )

    def on_event(event: Event) -> None:
        if event.kind == "log":
            backend.cancel(spec.run_id)  # as exec_script's cancel token does

    result = backend.run(spec, on_event=on_event)
    assert result.status == "cancelled", result.message
    assert result.duration_s < 3
