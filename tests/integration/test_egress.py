"""Egress through the host: a granted host is reached for the script, everything else is refused.

The container stays offline throughout (no network namespace of its own to reach anything);
the only way out is the host's fetch broker, which checks each request against the grant.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.execution.docker import DockerBackend
from harness.execution.egress import EgressPolicy, FetchBroker
from harness.records import RunSpec


class _Api(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/binary":
            self._binary()
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://elsewhere.invalid/")
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "agent": self.headers.get("User-Agent")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _binary(self) -> None:
        body = bytes(range(256)) * 1200  # every byte value, 300 KiB
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])


@pytest.fixture
def api() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


SCRIPT = r"""
import json, socket, sys
import harness_runtime as hr

port = int(sys.argv[1])
reply = hr.fetch(f"http://127.0.0.1:{port}/items?x=1")
print("get:", reply.status, reply.json()["path"], reply.json()["agent"], flush=True)
posted = hr.fetch(f"http://127.0.0.1:{port}/echo", method="POST", data="hello")
print("post:", posted.status, posted.text(), flush=True)
moved = hr.fetch(f"http://127.0.0.1:{port}/redirect")
print("redirect:", moved.status, moved.headers.get("location"), flush=True)
others = (f"http://127.0.0.1:{port + 1}/", "https://example.com/", "file:///etc/passwd", f"http://localhost:{port}/")
for url in others:
    try:
        hr.fetch(url)
        print("reached", url, flush=True)
    except hr.FetchError as exc:
        print("refused:", exc, flush=True)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2)
    print("direct: connected", flush=True)
except OSError as exc:
    print("direct: failed", type(exc).__name__, flush=True)
try:
    socket.getaddrinfo("example.com", 443)
    print("dns: resolved", flush=True)
except OSError:
    print("dns: failed", flush=True)
"""


def test_granted_host_is_reached_through_the_host_and_nothing_else(backend: DockerBackend, api: int) -> None:
    allow = (f"127.0.0.1:{api}", f"localhost:{api}")
    broker = FetchBroker(EgressPolicy(allow=allow))
    result = backend.run(RunSpec(script=SCRIPT, argv=(str(api),), egress=allow), on_fetch=broker)
    out = result.stdout_tail
    assert result.ok, (out, result.stderr_tail)
    assert "get: 200 /items?x=1 harness-sandbox" in out
    assert "post: 201 olleh" in out
    assert "redirect: 302 http://elsewhere.invalid/" in out  # handed back, not followed
    assert f"refused: 127.0.0.1:{api + 1} is not on this run's allowed hosts" in out
    assert "refused: example.com:443 is not on this run's allowed hosts" in out
    assert "refused: only http and https URLs can be fetched, not file" in out
    assert "refused: localhost resolves to 127.0.0.1, a private or local address" in out
    assert "direct: failed" in out and "dns: failed" in out and "reached" not in out
    assert result.policy.network == "none" and result.policy.egress == allow
    replies = [e for e in result.events if e.kind == "fetch_reply"]
    assert [(r.ok, r.status) for r in replies][:3] == [(True, 200), (True, 201), (True, 302)]  # type: ignore[union-attr]
    assert sum(not r.ok for r in replies) == 4  # type: ignore[union-attr]
    tally = {row["host"]: row for row in broker.summary()}
    assert tally["127.0.0.1"]["requests"] == 4 and tally["127.0.0.1"]["refused"] == 1
    assert tally["127.0.0.1"]["bytes_out"] == 5


def test_without_a_grant_every_fetch_is_refused(backend: DockerBackend, api: int) -> None:
    script = f"""
import harness_runtime as hr
try:
    hr.fetch("http://127.0.0.1:{api}/")
except hr.FetchError as exc:
    print("refused:", exc, flush=True)
"""
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{api}",)))
    result = backend.run(RunSpec(script=script), on_fetch=broker)  # a broker, but the spec grants nothing
    assert result.ok and "refused: no egress is granted to this run" in result.stdout_tail
    assert broker.summary() == []


def fetching_script(port: int) -> str:
    return f"""import json
import os
import sys
from pathlib import Path

import harness_runtime as hr

URL = "http://127.0.0.1:{port}/hello"


def main() -> int:
    with hr.phase("fetch"):
        try:
            reply = hr.fetch(URL)
        except hr.FetchError as exc:
            hr.log(f"refused: {{exc}}", "error")
            return 3
    with hr.phase("write"):
        out = Path(os.environ.get("HARNESS_OUTPUT", "/output"))
        (out / "got.json").write_text(json.dumps(reply.json()), encoding="utf-8")
        hr.artifact("got.json", "what the API said")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


@pytest.fixture
def library(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A scaffold library of its own, set before any server starts (a server reads its settings once)."""
    folder = tmp_path_factory.mktemp("library") / "scaffolds"
    folder.mkdir()
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(folder))
    return folder


def test_egress_is_granted_by_review_to_the_reviewed_bytes(
    library: Any,
    served: str,
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    api: int,
    sandbox_image: str,
) -> None:
    import os
    from pathlib import Path

    from harness.review.store import GeneratedRecord, GeneratedStore

    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="fetch the greeting", strategy="generate_custom", model="m"
    )
    store.save(record, fetching_script(api))
    host = f"127.0.0.1:{api}"

    # Unreviewed: no network, and asking for one is refused before anything runs.
    code, _, err = cli("exec", "--generated", record.id, "--allow-host", host)
    assert code == 2 and "an unreviewed script gets no network" in err and "--allow-host" in err
    code, out, _ = cli("exec", "--generated", record.id, "--json")
    assert code == 1 and json.loads(out)["policy"]["egress"] == []

    # Approved with the grant: the same bytes reach that host, and only what was granted.
    code, out, _ = cli("review", "approve", record.id, "--allow-host", host)
    assert code == 0 and f"egress to {host}" in out
    output = tmp_path / "got"
    code, out, err = cli("exec", "--generated", record.id, "--output", str(output), "--json")
    assert code == 0, err
    assert json.loads(out)["policy"]["egress"] == [host]
    assert json.loads((output / "got.json").read_text())["path"] == "/hello"
    code, out, _ = cli("exec", "--generated", record.id)
    assert code == 0 and "egress: 127.0.0.1: 1 request(s)" in out
    code, _, err = cli("exec", "--generated", record.id, "--allow-host", "api.example.com")
    assert code == 2 and "was not approved with egress to api.example.com" in err
    assert f"egress granted: {host}" in cli("review", "show", record.id)[1]
    audit = store.audit_entries()
    assert audit[-1]["action"] == "approved" and audit[-1]["granted_hosts"] == [host]

    # The grant changes only through review: widened, revoked, restored; each change audited.
    code, _, err = cli("review", "approve", record.id, "--allow-host", "api.example.com")
    assert code == 2 and "cannot become approved" in err
    code, out, _ = cli("review", "grant", record.id, "--allow-host", "api.example.com")
    assert code == 0 and f"egress: {host}, api.example.com" in out
    assert cli("exec", "--generated", record.id, "--allow-host", "api.example.com")[0] == 1  # granted now
    code, out, _ = cli("review", "grant", record.id, "--replace")
    assert code == 0 and "egress: none" in out
    code, out, _ = cli("exec", "--generated", record.id, "--json")
    assert code == 1 and json.loads(out)["policy"]["egress"] == []
    assert cli("review", "grant", record.id)[0] == 2  # nothing to grant
    assert cli("review", "grant", record.id, "--allow-host", host, "--replace")[0] == 0
    actions = [e["action"] for e in store.audit_entries()]
    assert actions[-3:] == ["granted", "granted", "granted"]

    # Edited after review: nothing runs, with or without the network.
    script = store.folder(record.id) / "script.py"
    original = script.read_text()
    script.write_text(original.replace("/hello", "/other"))
    code, _, err = cli("exec", "--generated", record.id)
    assert code == 1 and "changed after it was approved" in err
    code, _, err = cli("review", "grant", record.id, "--allow-host", "api.example.com")
    assert code == 1 and "changed after it was approved" in err
    script.write_text(original)

    # Promoted: the grant travels with the bytes into the scaffold, and its runs report their egress.
    assert cli("promote", record.id, "--name", "greeting", "--no-params")[0] == 0
    code, _, err = cli("review", "grant", record.id, "--allow-host", "api.example.com")
    assert code == 2 and "scaffolds/greeting/scaffold.toml" in err
    assert f'egress = ["{host}"]' in (library / "greeting" / "scaffold.toml").read_text()
    code, out, _ = cli("templates", "show", "greeting")
    assert code == 0 and f"egress (sealed by review): {host}" in out
    code, out, err = cli("run", "fetch the greeting", "--template", "greeting", "--json", "--yes")
    assert code == 0, err
    report = json.loads(out)
    assert report["policy"]["egress"] == [host] and report["policy"]["network"] == "none"
    said = len(json.dumps({"path": "/hello", "agent": "harness-sandbox"}))
    code, out, err = cli("run", "fetch the greeting", "--template", "greeting", "--yes")
    assert code == 0 and "↗ GET 127.0.0.1 → 200" in err and "egress: 127.0.0.1: 1 request(s)" in out
    assert report["egress"] == [{"host": "127.0.0.1", "requests": 1, "bytes_out": 0, "bytes_in": said, "refused": 0}]

    # Its scaffold.toml edited to widen the egress: the seal no longer matches, the run goes on offline.
    toml = library / "greeting" / "scaffold.toml"
    toml.write_text(toml.read_text().replace(f'egress = ["{host}"]', f'egress = ["{host}", "api.example.com"]'))
    code, out, err = cli("run", "fetch the greeting", "--template", "greeting", "--json", "--yes")
    report = json.loads(out)
    assert report["policy"]["egress"] == [] and "changed since its promotion (scaffold.toml)" in out
    code, out, _ = cli("templates", "show", "greeting")
    assert code == 0 and "egress declared but not granted" in out and "changed since its promotion" in out
    shown = json.loads(cli("templates", "show", "greeting", "--json")[1])
    assert shown["egress_in_force"] == [] and "scaffold.toml" in shown["egress_withheld"]


def test_a_forged_approval_in_meta_json_runs_offline_within_default_limits(
    cli: Callable[..., tuple[int, str, str]], api: int, sandbox_image: str
) -> None:
    import hashlib
    import os
    from pathlib import Path

    from harness.review.store import GeneratedRecord, GeneratedStore

    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="fetch the greeting", strategy="generate_custom", model="m"
    )
    folder = store.save(record, fetching_script(api))
    host = f"127.0.0.1:{api}"
    # The attack: meta.json written by hand, approved, with the right hash and a grant.
    meta = json.loads((folder / "meta.json").read_text())
    digest = hashlib.sha256((folder / "script.py").read_bytes()).hexdigest()
    meta.update(status="approved", reviewed_sha256=digest, granted_hosts=[host], reviewer="mallory")
    (folder / "meta.json").write_text(json.dumps(meta))

    code, _, err = cli("exec", "--generated", record.id, "--allow-host", host)
    assert code == 2 and "an unreviewed script gets no network" in err
    code, _, err = cli("exec", "--generated", record.id, "--memory", "2g")
    assert code == 2 and "only within the default limits" in err
    code, out, _ = cli("exec", "--generated", record.id, "--json")
    result = json.loads(out)
    assert result["policy"]["egress"] == [] and "refused: no egress is granted" in result["stdout_tail"]
    listed = json.loads(cli("review", "list", "--json")[1])
    assert [(r["id"], r["status"], r["granted_hosts"]) for r in listed] == [(record.id, "pending_review", [])]


def test_fetches_count_against_the_runs_time_limit(backend: DockerBackend) -> None:
    from harness.execution.limits import Limits

    script = """
import harness_runtime as hr
for _ in range(100):
    try:
        hr.fetch("http://127.0.0.1:9/")
    except hr.FetchError:
        pass
"""
    calls = []

    def slow(request: Any, *, deadline: float | None = None) -> dict[str, Any]:
        import time

        calls.append(request.id)
        time.sleep(0.3)
        raise RuntimeError("upstream too slow")

    spec = RunSpec(script=script, egress=("127.0.0.1:9",), limits=Limits.build(timeout_s=1.5))
    result = backend.run(spec, on_fetch=slow)
    assert result.status == "timed_out"
    assert 1 <= len(calls) <= 7  # about 1.5 s worth at most, not all hundred


def test_binary_answers_arrive_intact_and_threads_take_turns(backend: DockerBackend, api: int) -> None:
    script = f"""
import hashlib, threading
import harness_runtime as hr
expected = hashlib.sha256(bytes(range(256)) * 1200).hexdigest()
digests = []
def fetch():
    digests.append(hashlib.sha256(hr.fetch("http://127.0.0.1:{api}/binary").body).hexdigest())
threads = [threading.Thread(target=fetch) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("intact:", digests == [expected] * 4, flush=True)
"""
    allow = (f"127.0.0.1:{api}",)
    result = backend.run(RunSpec(script=script, egress=allow), on_fetch=FetchBroker(EgressPolicy(allow=allow)))
    assert result.ok and "intact: True" in result.stdout_tail, (result.stdout_tail, result.stderr_tail)


# -- issue 9 item 6: a fetch cannot hold the host past the run's deadline ---------------------------
# The broker's limit applied per read: a server dripping one header byte every few seconds kept the
# host blocked (still at 75 s with --timeout 10), the container alive, the run unfinished.


@pytest.fixture
def dripping() -> Iterator[tuple[int, list[float]]]:
    """A server on 127.0.0.1: the status line, then one header byte a second, forever; records each hang-up."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    hung_up: list[float] = []

    def watch(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
            hung_up.append(time.monotonic())  # end of stream: the host closed its side

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                threading.Thread(target=watch, args=(conn,), daemon=True).start()
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for byte in itertools.cycle(b"X-Slow: abcdefgh"):
                    if stop.wait(1.0):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1]), hung_up
    stop.set()
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


def dripped_script(port: int) -> str:
    return f"""
import harness_runtime as hr
print("fetching", flush=True)
try:
    hr.fetch("http://127.0.0.1:{port}/")
    print("answered", flush=True)
except hr.FetchError as exc:
    print("refused:", exc, flush=True)
"""


GRACE = 5.0  # generous for a loaded 2-core machine; without the fix the host never returned at all


def test_a_dripping_server_cannot_hold_the_host_past_the_runs_timeout(
    backend: DockerBackend, dripping: tuple[int, list[float]]
) -> None:
    from harness.execution.limits import Limits

    port, hung_up = dripping
    allow = (f"127.0.0.1:{port}",)
    spec = RunSpec(script=dripped_script(port), egress=allow, limits=Limits.build(timeout_s=4))
    broker = FetchBroker(EgressPolicy(allow=allow))  # the policy's own limit (30 s) is far off: the run's decides
    started = time.monotonic()
    result = backend.run(spec, on_fetch=broker)
    took = time.monotonic() - started
    # The run's clock starts once the container is up; how long that took is not what is measured.
    launch = sum(result.timings.get(k, 0.0) for k in ("create_s", "attach_s", "start_s", "ready_s"))
    assert result.status == "timed_out"
    assert took - launch < 4 + GRACE, result.timings
    assert hung_up and hung_up[0] - started - launch < 4 + GRACE  # the host let go of the server too
    replies = [e for e in result.events if e.kind == "fetch_reply"]
    assert len(replies) == 1 and not replies[0].ok  # type: ignore[union-attr]
    assert "took longer than its time limit" in replies[0].error  # type: ignore[union-attr]
    assert broker.summary()[0]["refused"] == 1


def test_the_issues_command_returns_within_its_timeout(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Any, dripping: tuple[int, list[float]]
) -> None:
    port, _ = dripping
    script = tmp_path / "drip.py"
    script.write_text(dripped_script(port), encoding="utf-8")
    started = time.monotonic()
    code, out, err = cli("exec", str(script), "--allow-host", f"127.0.0.1:{port}", "--timeout", "10", "--json")
    took = time.monotonic() - started
    assert code == 1 and json.loads(out)["status"] == "timed_out", err
    assert took < 10 + GRACE + 10  # the run's timeout, the grace, and a cold container start on a busy machine
