"""A small server that speaks the HTTP API contract (docs: /work/briefs/api-contract.md) for client tests.

It serves ``POST /v1/runs`` (with the job's events as Server-Sent Events and ``GET /v1/runs/{id}``),
``POST /v1/check``, ``POST /v1/analyze`` and ``GET /healthz`` over a Unix socket, through the same
library calls as the in-process commands, so that the thin client can be tested for parity until
``harness serve`` is on main. ``busy`` answers that many ``429`` first; ``drop_after`` cuts each
event stream after that many events, so that the client has to resume with ``Last-Event-ID``.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import socket
import socketserver
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, MissingInputs, http_status


class _Job:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.events: list[tuple[int, str, str]] = []
        self.view: dict[str, Any] = {"run_id": run_id, "kind": "script", "status": "running"}
        self.changed = threading.Condition()
        self.done = False
        from harness.app.cancel import CancelToken

        self.cancel = CancelToken()

    def add(self, kind: str, data: str) -> None:
        with self.changed:
            self.events.append((len(self.events) + 1, kind, data))
            self.changed.notify_all()

    def finish(self, **view: Any) -> None:
        with self.changed:
            self.view.update(view, status="finished")
            self.done = True
            self.changed.notify_all()


def _problem(exc: HarnessError) -> tuple[int, dict[str, Any]]:
    status = http_status(exc)
    body = {"type": type(exc).__name__, "title": exc.message, "status": status, "detail": exc.one_line()}
    if exc.hint:
        body["hint"] = exc.hint
    # The structured parts a client words as the CLI does (harness.cli.render.problem_line).
    data: dict[str, Any] = {}
    if exc.fix is not None:
        data["fix"] = {"action": exc.fix.action, "target": exc.fix.target, "values": list(exc.fix.values)}
    if isinstance(exc, MissingInputs):
        data["missing"] = [item.model_dump(mode="json") for item in exc.missing]
    if data:
        body["data"] = data
    return status, body


def _run(job: _Job, body: dict[str, Any], services: Any) -> None:
    """The job: ``app.scripts.exec_script`` with the run's inputs unpacked, its events going to the job."""
    from harness.app.scripts import LimitOverrides, ScriptRun, exec_script

    try:
        with tempfile.TemporaryDirectory() as scratch:
            inputs: list[Path] = []
            if body.get("inputs_tar"):
                with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body["inputs_tar"]))) as tar:
                    tar.extractall(scratch, filter="data")
                inputs = sorted(Path(scratch).iterdir())
            run = ScriptRun(
                source=body.get("source") if body.get("generated_id") is None else None,
                name=body.get("name") or "main.py",
                generated_id=body.get("generated_id"),
                env=body.get("env") or {},
                inputs=tuple(inputs),
                limits=LimitOverrides(**(body.get("limits") or {})),
                allow_hosts=tuple(body.get("allow_hosts") or ()),
                run_id=job.run_id,
            )
            sink = lambda event: job.add(event.kind, event.model_dump_json())  # noqa: E731
            outcome = exec_script(services, run, sink=sink, cancel=job.cancel)
        job.finish(
            result=json.loads(outcome.result.model_dump_json(exclude={"events"})),
            # What the CLI prints beside the result: the run folder, the log's dropped count, egress per host.
            run_dir=str(outcome.run_dir),
            events_dropped=outcome.events_dropped,
            egress=list(outcome.egress),
            error=None,
        )
    except HarnessError as exc:
        job.finish(result=None, error=_problem(exc)[1])


class ContractServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The contract over a Unix socket, served by threads; ``close()`` stops it and removes the socket."""

    address_family = socket.AF_UNIX
    daemon_threads = True

    def __init__(self, path: Path, *, busy: int = 0, drop_after: int | None = None, backend: Any = None) -> None:
        from harness.services import Services
        from harness.settings import Settings

        self.path = path
        # One Services for every job, as a server holds one: with ``backend`` (a warm pool), else a cold one.
        settings = Settings.from_env(pool_size=0)
        self.services = Services(settings, backend=backend) if backend is not None else Services(settings)
        self.jobs: dict[str, _Job] = {}
        self.busy = busy
        self.draining = False
        self.drop_after = drop_after
        self.requests_seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(str(path), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def server_bind(self) -> None:
        """Bind the socket file (no host name to look up)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0

    def close(self) -> None:
        """Stop serving, wait for the serving thread, remove the socket."""
        self.shutdown()
        self.server_close()
        self._thread.join()
        self.services.close()
        self.path.unlink(missing_ok=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ContractServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what the client printed."""

    def address_string(self) -> str:
        return "unix"

    def _send(
        self, status: int, body: Any, *, kind: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def do_GET(self) -> None:
        self.server.requests_seen.append(("GET", self.path, dict(self.headers)))
        if self.path == "/healthz":
            self._send(200, {"status": "ok", "version": "test", "pool": {"ready": 0, "size": 0}, "draining": False})
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        job = self.server.jobs.get(parts[2]) if len(parts) >= 3 else None
        if job is None:
            self._send(
                404, {"type": "NotFound", "title": "no such run", "status": 404}, kind="application/problem+json"
            )
        elif parts[-1] == "events":
            self._events(job)
        else:
            with job.changed:
                job.changed.wait_for(lambda: job.done, timeout=600 if "wait=" in self.path else 0)
                self._send(200, dict(job.view))

    def _events(self, job: _Job) -> None:
        after = int(self.headers.get("Last-Event-ID") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        sent = 0
        while True:
            with job.changed:
                job.changed.wait_for(lambda seen=after: job.done or len(job.events) > seen)
                fresh, done = job.events[after:], job.done
            for seq, kind, data in fresh:
                if self.server.drop_after is not None and sent >= self.server.drop_after:
                    return  # the connection drops: the client resumes after the last id it saw
                self.wfile.write(f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode())
                self.wfile.flush()
                after, sent = seq, sent + 1
            if done and after >= len(job.events):
                self.wfile.write(f"event: end\ndata: {json.dumps(job.view)}\n\n".encode())
                return

    def do_POST(self) -> None:
        self.server.requests_seen.append(("POST", self.path, dict(self.headers)))
        body = self._body()  # read even when refused: closing on an unread body resets the connection
        if self.server.draining:
            problem = {"type": "Draining", "title": "the server is shutting down", "status": 503}
            self._send(503, problem, kind="application/problem+json")
            return
        if self.server.busy > 0:
            self.server.busy -= 1
            problem = {"type": "Busy", "title": "the server is busy", "status": 429}
            self._send(429, problem, kind="application/problem+json", headers={"Retry-After": "0"})
            return
        try:
            if self.path == "/v1/runs":
                from harness.records import new_run_id

                job = _Job(new_run_id())
                self.server.jobs[job.run_id] = job
                threading.Thread(target=_run, args=(job, body, self.server.services), daemon=True).start()
                events, result = f"/v1/runs/{job.run_id}/events", f"/v1/runs/{job.run_id}"
                self._send(202, {"run_id": job.run_id, "status": "running", "events": events, "result": result})
            elif self.path.endswith("/cancel") and self.path.split("/")[3] in self.server.jobs:
                job = self.server.jobs[self.path.split("/")[3]]
                job.cancel.set()
                self._send(202, dict(job.view))
            elif self.path == "/v1/check":
                self._send(200, _check(body))
            elif self.path == "/v1/analyze":
                self._send(200, _analyze(body, self.server.services))
            else:
                self._send(404, {"type": "NotFound", "title": self.path, "status": 404})
        except HarnessError as exc:
            status, problem = _problem(exc)
            self._send(status, problem, kind="application/problem+json")
        except _SchemaRefused as exc:
            self._send(422, exc.problem, kind="application/problem+json")


class _SchemaRefused(Exception):
    """The request body does not fit the server's schema (FastAPI's 422, as harness serve words it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.problem = {
            "type": "InvalidInput",
            "title": f"invalid {field}: {message}",
            "status": 422,
            "detail": f"invalid {field}: {message}",
            "data": {"errors": [{"loc": ["body", field], "msg": message}]},
        }


def _check(body: dict[str, Any]) -> dict[str, Any]:
    from harness.checks import gate, run_checks

    if body.get("policy", "strict") not in ("standard", "strict"):
        raise _SchemaRefused("policy", "input should be 'standard' or 'strict'")
    report = run_checks(body["source"].encode("utf-8"), body.get("policy", "strict"))
    decision = gate(report, body.get("policy", "strict"))
    return {**report.model_dump(mode="json"), "gate": decision.model_dump(mode="json"), "passed": decision.passed}


def _analyze(body: dict[str, Any], services: Any) -> dict[str, Any]:
    from harness.app import requests as app_requests

    analyzed: dict[str, Any] = json.loads(app_requests.analyse(services, body["request"]).model_dump_json())
    return analyzed
