"""A worker killed mid-run: its job comes back to another worker within the bound and completes once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import redis
from fleetkit import RUN_TIMEOUT_S, Fleet, Redis, Remote

from harness.distributed.jobs import keys
from harness.distributed.worker import REDELIVERY_MARGIN_S
from harness.events import Event
from harness.records import RunResult, RunSpec

SCRIPT = """\
import json, time
print(json.dumps({"v": 1, "kind": "log", "level": "info", "message": "started"}), flush=True)
time.sleep(2)
open("/output/done.txt", "w").write("done")
"""


def test_a_killed_workers_job_is_redelivered_and_completes_once(
    fleet: Fleet, redis_server: Redis, remote: Remote, tmp_path: Path
) -> None:
    workers = {w.name: w for w in (fleet.start("w1"), fleet.start("w2"))}
    conn = redis.Redis.from_url(redis_server.url)
    backend = remote()
    spec = RunSpec(script=SCRIPT, output_dir=tmp_path / "out")
    started, again = threading.Event(), threading.Event()
    seen: list[Event] = []
    outcome: list[RunResult | BaseException] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if event.kind == "log" and event.message == "started":
            started.set()
        if event.kind == "log" and event.message.startswith("attempt 2"):
            again.set()

    def submit() -> None:
        try:
            outcome.append(backend.run(spec, on_event=on_event))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    assert started.wait(30), "the run never started"
    first = conn.xrange(keys(spec.run_id).events, count=1)[0][1]
    victim = workers[first[b"worker"].decode().removeprefix("harness@")]
    killed_at = time.monotonic()
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait()
    bound = float(RUN_TIMEOUT_S) + REDELIVERY_MARGIN_S + 3  # visibility timeout + the 1 s sweep + slack
    assert again.wait(bound + 5), "the job was not redelivered"
    took = time.monotonic() - killed_at
    thread.join(60)
    assert not thread.is_alive()

    assert took <= bound, f"redelivered after {took:.1f}s, bound {bound:.1f}s"
    result = outcome[0]
    assert isinstance(result, RunResult), result
    assert result.status == "succeeded"
    assert (tmp_path / "out" / "done.txt").read_text() == "done"
    entries = conn.xrange(keys(spec.run_id).events)
    attempts = [e[1] for e in entries if e[1][b"t"] == b"attempt"]
    assert [(a[b"n"], a[b"worker"] != f"harness@{victim.name}".encode()) for a in attempts] == [
        (b"1", False),
        (b"2", True),
    ]
    assert sum(1 for e in entries if e[1][b"t"] == b"result") == 1  # it completed once
    assert int(conn.get(keys(spec.run_id).attempts) or 0) == 2
    # The dead worker's containers: swept by the survivor as it took over (or by any harness on
    # this host first); the autouse leftover check fails the test if one is left.
    conn.close()
