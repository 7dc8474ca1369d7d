"""A real ``harness serve`` in a subprocess for the server tests, and a stdlib HTTP client for it.

The server runs with a throwaway data dir on a temp socket (or port); the fixture waits for
its "ready" line on stderr and stops it with SIGTERM (then SIGKILL if it hangs).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket."""

    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    socket_path: Path | None = None
    port: int | None = None
    token: str | None = None
    stderr: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return UnixConnection(str(self.socket_path), timeout)
        assert self.port is not None
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        auth: bool = True,
        timeout: float = 60,
    ) -> Reply:
        conn = self.connection(timeout)
        sent = dict(headers or {})
        if self.token and auth:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def submit(self, source: str, **fields: Any) -> str:
        reply = self.request("POST", "/v1/runs", {"source": source, **fields})
        assert reply.status == 202, reply.body
        run_id: str = reply.json()["run_id"]
        return run_id

    def result(self, run_id: str, wait: float = 60) -> dict[str, Any]:
        reply = self.request("GET", f"/v1/runs/{run_id}?wait={wait}", timeout=wait + 30)
        assert reply.status == 200, reply.body
        view: dict[str, Any] = reply.json()
        return view

    def events(self, run_id: str, last_event_id: int | None = None) -> Iterator[tuple[str | None, str, str]]:
        """(id, event, data) of the SSE stream, as they arrive; ends after ``end``."""
        conn = self.connection(120)
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn.request("GET", f"/v1/runs/{run_id}/events", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        try:
            fields: dict[str, str] = {}
            while True:
                line = resp.fp.readline()
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if text.startswith(":"):
                    continue
                if text:
                    key, _, value = text.partition(": ")
                    fields[key] = value
                    continue
                if fields:
                    yield fields.get("id"), fields["event"], fields.get("data", "")
                    if fields["event"] == "end":
                        return
                    fields = {}
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self.pump is not None:
                self.pump.join(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


def start_server(
    data_dir: Path,
    *args: str,
    socket_path: Path | None = None,
    listen: bool = False,
    env: dict[str, str] | None = None,
) -> Server:
    """Start ``harness serve`` and return once it says it is ready."""
    environ = {**os.environ, "HARNESS_DATA_DIR": str(data_dir), **(env or {})}
    environ.pop("XDG_RUNTIME_DIR", None)
    cmd = [sys.executable, "-m", "harness", "serve", *args]
    if listen:
        cmd += ["--listen", "127.0.0.1:0"]
    elif socket_path is not None:
        cmd += ["--socket", str(socket_path)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=environ)
    server = Server(proc, data_dir, socket_path=None if listen else (socket_path or data_dir / "run/harness.sock"))
    assert proc.stderr is not None
    ready = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            server.stderr.append(line)
            if "ready on " in line and not ready.is_set():
                url.append(line.split("ready on ", 1)[1].split()[0])
                ready.set()
        ready.set()  # the process ended: let the caller see why

    server.pump = threading.Thread(target=pump, daemon=True)
    server.pump.start()
    if not ready.wait(180) or not url:
        proc.kill()
        proc.wait()
        server.pump.join(10)
        proc.stderr.close()
        raise AssertionError("the server did not start:\n" + "\n".join(server.stderr))
    if listen:
        server.port = int(url[0].rsplit(":", 1)[1])
        server.token = (data_dir / "server-token").read_text().strip()
    return server


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
