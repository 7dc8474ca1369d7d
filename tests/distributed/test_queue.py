"""Runs through the queue: the same as local runs, refused when tampered, never hanging on a lost broker."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fleetkit import Fleet, Redis, Remote

from harness.errors import RunError, Tampered
from harness.events import Event
from harness.execution.docker import DockerBackend
from harness.records import RunResult, RunSpec
from harness.settings import Settings

SCRIPT = """\
import json, os, sys
def emit(**kw):
    print(json.dumps({"v": 1, **kw}), flush=True)
data = open("/input/numbers.txt").read().split()
emit(kind="progress", phase="sum", done=1, total=2, message="reading")
emit(kind="log", level="info", message=f"{len(data)} numbers")
os.makedirs("/output/sub", exist_ok=True)
open("/output/total.txt", "w").write(str(sum(map(int, data))))
open("/output/sub/count.txt", "w").write(str(len(data)))
emit(kind="artifact", path="total.txt", description="the sum")
emit(kind="metric", name="numbers", value=len(data), unit="")
emit(kind="result", data={"total": sum(map(int, data))})
print("plain line")
print("to stderr", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def _comparable(events: list[Event]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # What the script said and how the host framed it; clocks and the container's timings differ.
    # stderr lines arrive on their own stream, so only their order among themselves is fixed.
    out: list[dict[str, Any]] = []
    err: list[dict[str, Any]] = []
    for e in events:
        row = e.model_dump(exclude={"t", "seq"})
        for key in ("run_id", "duration_s", "timings", "first_event_s", "pooled", "image", "limits"):
            row.pop(key, None)
        (err if row.get("stream") == "stderr" else out).append(row)
    return out, err


def _files(folder: Path) -> dict[str, str]:
    # The marker names its own run id; everything else must match byte for byte.
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".harness-output"
    }


def _run(backend: Any, spec: RunSpec) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    return backend.run(spec, on_event=events.append), events


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_run_through_the_queue_equals_a_local_run(
    fleet: Fleet, remote: Remote, tmp_path: Path, sandbox_image: str, exit_code: int
) -> None:
    fleet.start("w1")
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("1 2 3 4 5\n")

    def spec(where: str) -> RunSpec:
        return RunSpec(script=SCRIPT, inputs=(numbers,), env={"EXIT": str(exit_code)}, output_dir=tmp_path / where)

    with DockerBackend(Settings.from_env(pool_size=0, image=sandbox_image)) as local:
        here, here_events = _run(local, spec("local"))
    there, there_events = _run(remote(), spec("remote"))

    assert there.status == here.status == ("succeeded" if exit_code == 0 else "failed")
    assert there.exit_code == here.exit_code == exit_code
    assert _comparable(there_events) == _comparable(here_events)
    assert there_events[0].kind == "run_started" and there_events[-1].kind == "run_finished"
    assert there.stdout_tail == here.stdout_tail and there.stderr_tail == here.stderr_tail
    remote_files, local_files = _files(tmp_path / "remote"), _files(tmp_path / "local")
    assert remote_files == local_files
    assert remote_files["total.txt"] == "15" and remote_files["sub/count.txt"] == "5"
    assert sorted(there.artifacts, key=lambda a: a.path) == sorted(here.artifacts, key=lambda a: a.path)
    assert there.output_dir == tmp_path / "remote"
    assert there.outputs_partial == here.outputs_partial and there.output_warnings == here.output_warnings


def test_exec_through_the_broker_from_the_cli(fleet: Fleet, redis_server: Redis, cli: Any, tmp_path: Path) -> None:
    fleet.start("w1")
    script = tmp_path / "hello.py"
    script.write_text('print("hello from a worker")\nopen("/output/x.txt", "w").write("x")\n')
    code, out, err = cli("--broker", redis_server.url, "exec", str(script), "--output", str(tmp_path / "out"))
    assert code == 0, err
    assert "succeeded" in out + err and (tmp_path / "out" / "x.txt").read_text() == "x"


def test_a_job_signed_with_another_key_is_refused_with_one_line(
    fleet: Fleet, redis_server: Redis, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = fleet.start("w1")
    monkeypatch.setenv("HARNESS_JOB_KEY", "not-the-workers-key-at-all")
    script = tmp_path / "hello.py"
    script.write_text('print("never runs")\n')
    started = time.monotonic()
    code, _, err = cli("--broker", redis_server.url, "exec", str(script))
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: a worker refused run"), err
    assert "signature does not match" in lines[0] and "HARNESS_JOB_KEY" in lines[0]
    assert time.monotonic() - started < 10
    assert "refused job" in worker.text()


def test_an_altered_job_is_refused(fleet: Fleet, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.distributed import submit
    from harness.distributed.jobs import SignedJob

    fleet.start("w1")
    real_sign = submit.sign

    def sign_then_alter(job: Any, key: bytes) -> SignedJob:
        # What a party on the broker could do: swap the code after the submitter signed it.
        signed = real_sign(job, key)
        return SignedJob(body=signed.body.replace("cHJpbnQo", "aW1wb3J0"), mac=signed.mac)

    monkeypatch.setattr(submit, "sign", sign_then_alter)
    with pytest.raises(Tampered, match="signature does not match"):
        remote().run(RunSpec(script='print("hi")\n'))


def test_a_broker_restarted_mid_run_fails_the_run_with_one_clear_error(
    fleet: Fleet, redis_server: Redis, remote: Remote
) -> None:
    fleet.start("w1")
    backend = remote()
    running = threading.Event()
    outcome: list[BaseException | RunResult] = []

    def on_event(event: Event) -> None:
        if event.kind == "log":
            running.set()

    def submit() -> None:
        script = (
            "import json, time\n"
            'print(json.dumps({"v": 1, "kind": "log", "level": "info", "message": "up"}), flush=True)\n'
            "time.sleep(3)\n"
        )
        try:
            outcome.append(backend.run(RunSpec(script=script), on_event=on_event))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    assert running.wait(30), "the run never started on the worker"
    redis_server.restart()
    thread.join(20)
    assert not thread.is_alive(), "the submitter hangs after the broker restarted"
    assert len(outcome) == 1 and isinstance(outcome[0], RunError), outcome
    assert "lost the broker" in outcome[0].one_line()
    # The worker reconnects to the new broker and takes the next job.
    assert remote().run(RunSpec(script='print("after")\n')).status == "succeeded"


def test_the_worker_re_runs_the_gate_and_checks_the_approval_against_the_bytes(fleet: Fleet, remote: Remote) -> None:
    import hashlib

    from harness.errors import GateRefused

    fleet.start("w1")
    backend = remote()
    with pytest.raises(GateRefused, match="the worker's standard gate refused the script"):
        backend.run(RunSpec(script='import subprocess\nsubprocess.run(["id"])\n'))
    approved = hashlib.sha256(b'print("approved")\n').hexdigest()
    with pytest.raises(Tampered, match="not the approved bytes"):
        backend.run(RunSpec(script='print("swapped")\n', gate_policy="strict", approved_sha256=approved))
    result = backend.run(RunSpec(script='print("approved")\n', gate_policy="strict", approved_sha256=approved))
    assert result.status == "succeeded" and "approved" in result.stdout_tail


def test_a_result_forged_on_the_broker_is_refused(redis_server: Redis, remote: Remote) -> None:
    import redis

    from harness.distributed.jobs import keys

    # No worker: whatever appears on the run's stream was written by someone else on Redis.
    spec = RunSpec(script='print("hi")\n', run_id="forgedrun01")
    conn = redis.Redis.from_url(redis_server.url)
    forged = '{"run_id": "forgedrun01", "status": "succeeded", "exit_code": 0, "image": "", "pooled": false, '
    forged += '"duration_s": 0.1, "policy": {}}'
    conn.xadd(keys(spec.run_id).events, {"t": "result", "data": forged, "outputs_sha256": "", "mac": "0" * 64})
    conn.close()
    with pytest.raises(Tampered, match="not signed by a worker holding the job key"):
        remote().run(spec)
