"""A request job through ``harness serve``: cancel and drain reach it in LLM generation, confirm, one run id.

The LLM is the fake Messages API, slowed so that a request is still waiting for its script when
it is cancelled: the job must end ``cancelled`` at once (not when the model answers), and no
container may start for it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import Server, start_server

from harness.testing import FakeAnthropic, Reply

SCRIPT = "import json\nprint(json.dumps({'hello': 'world'}))\n"
SLOW_S = 30.0  # the model's answer takes this long: far longer than a cancel may


def _write(delay: float = 0.0) -> Reply:
    return Reply.tool_use("write_script", {"code": SCRIPT, "explanation": "greets"}, delay_s=delay)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def base() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hq-"))  # short: a socket path must fit in 108 bytes
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start(base: Path, fake: FakeAnthropic, *args: str) -> Server:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-test-key-0123456789abcdefghij",
        "ANTHROPIC_BASE_URL": fake.base_url,
        "HARNESS_LLM_RETRIES": "1",
        "HARNESS_LLM_ANALYSIS": "off",
        "HARNESS_POOL_SIZE": "0",
    }
    return start_server(base / "data", *args, env=env)


@pytest.fixture
def server(base: Path, fake: FakeAnthropic, sandbox_image: str) -> Iterator[Server]:
    srv = _start(base, fake)
    yield srv
    srv.stop()


def _submit(server: Server, **fields: Any) -> str:
    body = {"request": "write a greeting script", "strategy": "generate_custom", **fields}
    reply = server.request("POST", "/v1/requests", body)
    assert reply.status == 202, reply.body
    run_id: str = reply.json()["run_id"]
    return run_id


def _until(server: Server, run_id: str, kind: str) -> list[str]:
    """The kinds of the job's events up to the first ``kind`` (which must come)."""
    kinds = []
    for _, event, _ in server.events(run_id):
        kinds.append(event)
        if event in (kind, "end"):
            break
    assert kinds[-1] == kind, kinds
    return kinds


def _containers(docker_client: Any, run_id: str) -> list[Any]:
    found: list[Any] = docker_client.api.containers(all=True, filters={"label": f"harness.run_id={run_id}"})
    return found


def _slow_model(fake: FakeAnthropic) -> threading.Event:
    """The model answers SLOW_S after it is asked; the event is set when it is asked."""
    asked = threading.Event()

    def answer(request: object) -> Reply:
        asked.set()
        return _write(SLOW_S)

    fake.handler = answer
    return asked


def test_cancel_during_generation_ends_the_job_at_once(server: Server, fake: FakeAnthropic, docker_client: Any) -> None:
    model_asked = _slow_model(fake)
    run_id = _submit(server)
    _until(server, run_id, "llm_call")
    assert model_asked.wait(30)  # the request waits for the model now; its answer is SLOW_S away
    asked = time.monotonic()
    assert server.request("POST", f"/v1/runs/{run_id}/cancel", {}).status == 202
    view = server.result(run_id, wait=20)
    took = time.monotonic() - asked
    assert view["status"] == "cancelled" and view["error"]["type"] == "Cancelled", view
    assert took < 5, f"the cancel took {took:.1f}s: it waited for the model"
    kinds = [kind for _, kind, _ in server.events(run_id)]
    assert "run_started" not in kinds and "drafted" not in kinds
    assert _containers(docker_client, run_id) == []


def test_sigterm_drain_reaches_a_request_in_generation(
    base: Path, fake: FakeAnthropic, sandbox_image: str, docker_client: Any
) -> None:
    model_asked = _slow_model(fake)
    server = _start(base, fake, "--grace", "1")
    try:
        run_id = _submit(server)
        _until(server, run_id, "llm_call")
        assert model_asked.wait(30)
        stopping = time.monotonic()
        assert server.stop() == 0, "\n".join(server.stderr)
        took = time.monotonic() - stopping
    finally:
        server.stop()
    assert took < SLOW_S / 2, f"the drain took {took:.1f}s: it waited for the model"
    assert _containers(docker_client, run_id) == []


def test_confirm_declined_runs_nothing_and_confirmed_runs(server: Server, fake: FakeAnthropic) -> None:
    fake.add(_write(), _write())
    declined = _submit(server, confirm=True)
    kinds = _until(server, declined, "confirm")
    assert kinds.index("drafted") < len(kinds) - 1  # asked only once the script is vetted
    assert server.request("POST", f"/v1/runs/{declined}/confirm", {"run": False}).status == 202
    view = server.result(declined)
    assert view["status"] == "finished" and view["report"]["outcome"] == "declined"
    assert "run_started" not in [kind for _, kind, _ in server.events(declined)]
    again = server.request("POST", f"/v1/runs/{declined}/confirm", {"run": True})
    assert again.status == 409  # nothing waits for an answer any more

    confirmed = _submit(server, confirm=True)
    _until(server, confirmed, "confirm")
    assert server.request("POST", f"/v1/runs/{confirmed}/confirm", {"run": True}).status == 202
    view = server.result(confirmed)
    assert view["report"]["execution_result"]["status"] == "succeeded", view


def test_the_request_job_id_is_its_run_id(server: Server, fake: FakeAnthropic) -> None:
    fake.add(_write())
    run_id = _submit(server)
    view = server.result(run_id)
    assert view["report"]["run_id"] == run_id and view["run_dir"] == str(server.data_dir / "runs" / run_id)
    rows = server.request("GET", "/v1/history").json()
    assert run_id in [row["run_id"] for row in rows]
    assert (server.data_dir / "runs" / run_id / "report.json").is_file()
    started = [json.loads(data) for _, kind, data in server.events(run_id) if kind == "run_started"]
    assert [event["run_id"] for event in started] == [run_id]
