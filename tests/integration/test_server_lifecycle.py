"""``harness serve`` admission and lifetime: 429 past the queue, SIGTERM drain, sweep after kill -9."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import Server, b64, start_server, tar_of

from harness.execution.docker import LABEL

SLOW = "import time\nprint('started', flush=True)\ntime.sleep({s})\nprint('woke', flush=True)\n"


@pytest.fixture
def base() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hs-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _wait_started(server: Server, run_id: str) -> None:
    """Block until the run's script printed its first line (its container is up and running it)."""
    for _, kind, _ in server.events(run_id):
        if kind == "output":
            return
    raise AssertionError(f"run {run_id} ended before it printed")


def _owned_by(docker_client: Any, pid: int) -> list[str]:
    return [
        c["Id"][:12]
        for c in docker_client.api.containers(all=True, filters={"label": LABEL})
        if f":{pid}:" in (c.get("Labels") or {}).get("harness.owner", "")
    ]


def test_admission_past_the_queue_is_429_with_retry_after(base: Path, sandbox_image: str) -> None:
    srv = start_server(base / "d", "--concurrency", "1", "--queue", "1", env={"HARNESS_POOL_SIZE": "0"})
    try:
        first = srv.submit(SLOW.format(s=60))
        second = srv.submit(SLOW.format(s=60))
        third = srv.request("POST", "/v1/runs", {"source": "print(3)"})
        assert third.status == 429
        assert int(third.headers["retry-after"]) >= 1
        problem = third.json()
        assert problem["type"] == "Busy" and problem["status"] == 429
        assert srv.result(second, wait=0)["status"] == "queued"
        # A cancelled queued job ends at once; the running one is stopped and both free their places.
        for run_id in (second, first):
            assert srv.request("POST", f"/v1/runs/{run_id}/cancel").status == 202
        assert srv.result(second, wait=0)["status"] == "cancelled"
        assert srv.result(first)["status"] == "cancelled"
        metrics = srv.request("GET", "/metrics").body.decode()
        assert 'harness_jobs_rejected_total{reason="busy"} 1.0' in metrics
        again = srv.submit("print('room again')")
        assert srv.result(again)["result"]["status"] == "succeeded"
    finally:
        assert srv.stop() == 0, "\n".join(srv.stderr)


def test_sigterm_drains_running_jobs_then_exits_0(base: Path, sandbox_image: str, docker_client: Any) -> None:
    srv = start_server(base / "d", "--concurrency", "2", "--grace", "60", env={"HARNESS_POOL_SIZE": "1"})
    try:
        run_id = srv.submit(SLOW.format(s=2))
        _wait_started(srv, run_id)
        srv.proc.send_signal(signal.SIGTERM)
        # Still answering while it drains: new work is refused, the running job's result can be had.
        refused = srv.request("POST", "/v1/runs", {"source": "print(1)"})
        assert refused.status == 503 and refused.json()["type"] == "Draining"
        assert srv.request("GET", "/healthz").json()["draining"] is True
        view = srv.result(run_id)
        assert view["status"] == "finished" and view["result"]["status"] == "succeeded"
        assert "woke" in view["result"]["stdout_tail"]
    finally:
        code = srv.stop()
    assert code == 0, "\n".join(srv.stderr)
    assert _owned_by(docker_client, srv.proc.pid) == []
    assert srv.socket_path is not None and not srv.socket_path.exists()


def test_sigterm_past_grace_cancels_and_removes_containers(base: Path, sandbox_image: str, docker_client: Any) -> None:
    srv = start_server(base / "d", "--concurrency", "2", "--grace", "1", env={"HARNESS_POOL_SIZE": "1"})
    run_id = srv.submit(SLOW.format(s=120))
    _wait_started(srv, run_id)
    assert srv.stop(timeout=60) == 0, "\n".join(srv.stderr)
    assert _owned_by(docker_client, srv.proc.pid) == []
    # The job ended with a result on disk even though it was cut short.
    result = (base / "d" / "runs" / run_id / "result.json").read_text()
    assert '"cancelled"' in result


def test_kill_9_leaves_containers_that_the_next_start_sweeps(
    base: Path, sandbox_image: str, docker_client: Any
) -> None:
    socket_path = base / "s" / "h.sock"
    srv = start_server(base / "d", "--concurrency", "1", socket_path=socket_path, env={"HARNESS_POOL_SIZE": "1"})
    run_id = srv.submit(SLOW.format(s=120), inputs_tar=b64(tar_of({"in.txt": b"x"})))
    _wait_started(srv, run_id)
    srv.stop(signal.SIGKILL)
    staged = base / "d" / "staging" / str(srv.proc.pid)
    assert (staged / run_id / "in.txt").is_file()  # nothing cleaned up after a kill -9
    left = _owned_by(docker_client, srv.proc.pid)
    assert left, "a killed server leaves its containers (nothing ran its cleanup)"
    assert socket_path.exists()  # and its socket file
    again = start_server(base / "d", "--concurrency", "1", socket_path=socket_path, env={"HARNESS_POOL_SIZE": "1"})
    try:
        # Ready means its backend started, and starting sweeps what dead owners left.
        assert _owned_by(docker_client, srv.proc.pid) == []
        assert not staged.exists()
        view = again.result(run_id, wait=0)
        assert view["status"] == "finished" and view["error"]["type"] == "RunError"
        # Its stream answers from its folder: what the killed server's log held, then the end.
        replayed = list(again.events(run_id))
        assert replayed[-1][1] == "end" and json.loads(replayed[-1][2])["error"]["type"] == "RunError"
        fresh = again.submit("print('after restart')")
        assert again.result(fresh)["result"]["status"] == "succeeded"
    finally:
        assert again.stop() == 0, "\n".join(again.stderr)
