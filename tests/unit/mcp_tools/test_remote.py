"""The runs through a running ``harness serve``: job bodies, events, the final view, problems and cancels.

A stub stands in for ``harness.client.Client`` (same two methods); the real server is exercised in
tests/integration/test_mcp_stdio.py.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as McpClient

from harness.app.cancel import CancelToken
from harness.app.scripts import LimitOverrides
from harness.client import ProblemError, SseEvent
from harness.events import Event, LogEvent, RunStarted
from harness.mcp.remote import RemoteError, report_folder, run_folder, run_job, script_body
from harness.mcp.server import build_server
from harness.progress import RequestEvent
from harness.records import RunResult
from harness.services import Services
from harness.settings import Settings


class StubClient:
    """Answers like a harness serve would: a job accepted, its events, then its final view."""

    def __init__(self, final: dict[str, Any], events: list[Event] = (), *, refuse: dict[str, Any] | None = None):
        self.final = final
        self.stream = list(events)
        self.refuse = refuse
        self.calls: list[tuple[str, str, Any]] = []
        self.cancelled = threading.Event()
        self.gate: threading.Event | None = None  # when set: the stream waits for it before ending

    def call(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        self.calls.append((method, path, body))
        if path.endswith("/cancel"):
            self.cancelled.set()
            return {"status": "cancelling"}
        if self.refuse is not None:
            raise ProblemError(self.refuse, int(self.refuse.get("status", 422)))
        return {"run_id": "abcdefabcdef", "status": "queued", "events": "/v1/runs/abcdefabcdef/events"}

    def events(self, path: str, *, last_event_id: str | None = None) -> Iterator[SseEvent]:
        for i, event in enumerate(self.stream, 1):
            yield SseEvent(event.kind, event.model_dump_json(), str(i))
        yield SseEvent("analysed", json.dumps({"kind": "analysed", "strategy": "x"}), None)  # malformed
        yield SseEvent("finished", json.dumps({"kind": "finished", "run_id": "r", "status": "succeeded"}), None)
        if self.gate is not None:
            self.gate.wait(10)
        yield SseEvent("end", json.dumps(self.final), None)


RESULT = {
    "run_id": "abcdefabcdef",
    "status": "succeeded",
    "exit_code": 0,
    "message": "exited with code 0",
    "image": "harness-sandbox:x",
    "pooled": True,
    "duration_s": 0.05,
    "stdout_bytes": 3,
    "stdout_tail": "hi\n",
    "policy": {},
    "output_dir": "/srv/harness/runs/abcdefabcdef/output",
}


def test_script_body_carries_the_files_as_a_tar() -> None:
    body = script_body("print(1)", {"a.txt": b"x", "b.bin": b"\x00"}, LimitOverrides(timeout_s=5))
    assert body["source"] == "print(1)" and body["limits"] == {"timeout_s": 5}
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body["inputs_tar"]))) as tar:
        members = {m.name: (m.mode, tar.extractfile(m).read()) for m in tar.getmembers()}
    assert members == {"a.txt": (0o644, b"x"), "b.bin": (0o644, b"\x00")}
    assert script_body("x", {}, LimitOverrides())["inputs_tar"] is None


def test_events_pass_on_and_the_final_view_comes_back() -> None:
    events = [RunStarted(run_id="r", image="i", pooled=True), LogEvent(message="hello")]
    stub = StubClient({"status": "finished", "result": RESULT}, events)
    seen: list[RequestEvent] = []
    final = run_job(stub, "/v1/runs", {"source": "x"}, seen.append, CancelToken())
    assert final["result"] == RESULT
    # Run events come back wrapped as they were on the server; a malformed request event is left out.
    assert [(e.kind, e.event.kind) for e in seen if e.kind == "run"] == [("run", "run_started"), ("run", "log")]
    assert [e.kind for e in seen] == ["run", "run", "finished"]
    assert stub.calls == [("POST", "/v1/runs", {"source": "x"})]


def test_problems_keep_the_servers_class_name() -> None:
    refuse = {"type": "InvalidInput", "title": "bad limits", "hint": "use 512m", "status": 422}
    with pytest.raises(RemoteError) as caught:
        run_job(StubClient({}, refuse=refuse), "/v1/runs", {}, lambda e: None, CancelToken())
    assert caught.value.kind == "InvalidInput" and "bad limits" in caught.value.one_line()
    failed = {"status": "finished", "error": {"type": "EngineUnavailable", "title": "no engine", "hint": "start it"}}
    with pytest.raises(RemoteError) as caught:
        run_job(StubClient(failed), "/v1/runs", {}, lambda e: None, CancelToken())
    assert caught.value.kind == "EngineUnavailable" and caught.value.one_line() == "no engine: start it"


def test_a_cancel_during_the_job_asks_the_server_to_cancel_it() -> None:
    stub = StubClient({"status": "cancelled", "result": {**RESULT, "status": "cancelled"}})
    stub.gate = threading.Event()
    token = CancelToken()

    def cancel_then_let_it_end() -> None:
        token.set()
        assert stub.cancelled.wait(10)
        assert stub.gate is not None
        stub.gate.set()

    threading.Thread(target=cancel_then_let_it_end).start()
    final = run_job(stub, "/v1/runs", {}, lambda e: None, token)
    assert final["status"] == "cancelled"
    assert ("POST", "/v1/runs/abcdefabcdef/cancel", None) in stub.calls


def test_run_folders_on_the_server() -> None:
    result = RunResult.model_validate(RESULT)
    runs = Path("/fallback")
    assert run_folder({"run_dir": "/srv/named"}, result, runs) == Path("/srv/named")
    assert run_folder({}, result, runs) == Path("/srv/harness/runs/abcdefabcdef")
    elsewhere = result.model_copy(update={"output_dir": Path("/elsewhere/chosen")})
    assert run_folder({}, elsewhere, runs) == runs / "abcdefabcdef"
    assert report_folder({"script_path": "/srv/runs/r1/script.py"}, runs) == Path("/srv/runs/r1")
    assert report_folder({"execution_result": {"output_dir": "/srv/runs/r2/output"}}, runs) == Path("/srv/runs/r2")
    assert report_folder({}, runs) == runs


def test_tools_use_the_server_when_one_answers() -> None:
    stub = StubClient({"status": "finished", "result": RESULT}, [LogEvent(message="hello")])
    with Services(Settings.from_env()) as services:

        async def main() -> Any:
            async with McpClient(build_server(services, find=lambda: stub)) as client:
                ok = await client.call_tool("run_python", {"code": "print('hi')", "files": {"a.txt": "x"}})
                stub.refuse = {"type": "ConfigError", "title": "invalid limit memory=1024", "status": 422}
                refused = await client.call_tool("run_python", {"code": "x", "memory": "1k"})
                return ok, refused

        ok, refused = anyio.run(main)
    assert ok.structured_content["run_folder"] == "/srv/harness/runs/abcdefabcdef"
    assert ok.structured_content["stdout"] == "hi\n" and ok.structured_content["status"] == "succeeded"
    assert refused.is_error
    assert refused.content[0].text == "Error executing tool run_python: ConfigError: invalid limit memory=1024"
