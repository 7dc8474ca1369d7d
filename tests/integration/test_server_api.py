"""``harness serve`` end to end on the real engine: runs, inputs, outputs, events, cancel, metrics, auth."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import Server, b64, start_server, tar_of

SLOW = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    # Short: a Unix socket's path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="hs-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(base: Path, sandbox_image: str) -> Iterator[Server]:
    srv = start_server(base / "data", "--concurrency", "2", env={"HARNESS_POOL_SIZE": "1"})
    yield srv
    assert srv.stop() == 0, "\n".join(srv.stderr)


def test_socket_is_private_and_answers_without_token(server: Server) -> None:
    assert server.socket_path is not None
    mode = stat.S_IMODE(os.lstat(server.socket_path).st_mode)
    assert stat.S_ISSOCK(os.lstat(server.socket_path).st_mode) and mode == 0o600
    assert stat.S_IMODE(os.lstat(server.socket_path.parent).st_mode) == 0o700
    health = server.request("GET", "/healthz")
    assert health.status == 200
    body = health.json()
    assert body["status"] == "ok" and body["draining"] is False and body["pool"]["size"] == 1
    assert "access-control-allow-origin" not in health.headers


def test_script_with_inputs_runs_and_outputs_download(server: Server) -> None:
    source = (
        "import pathlib\n"
        "text = pathlib.Path('/input/data/in.txt').read_text()\n"
        "pathlib.Path('/output/out.txt').write_text(text.upper())\n"
        "print('done')\n"
    )
    run_id = server.submit(source, inputs_tar=b64(tar_of({"data/in.txt": b"hello server"})))
    view = server.result(run_id)
    assert view["status"] == "finished" and view["kind"] == "script" and view["error"] is None
    assert not (server.data_dir / "staging" / str(server.proc.pid) / run_id).exists()  # unstaged at the end
    result = view["result"]
    assert result["status"] == "succeeded", result
    assert [a["path"] for a in result["artifacts"]] == ["out.txt"]
    assert "events" not in result
    tar_reply = server.request("GET", f"/v1/runs/{run_id}/outputs")
    assert tar_reply.status == 200 and tar_reply.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(tar_reply.body)) as tar:
        assert tar.getnames() == ["out.txt"]
        out = tar.extractfile("out.txt")
        assert out is not None and out.read() == b"HELLO SERVER"


def test_multipart_inputs(server: Server) -> None:
    boundary = "harnessboundary"
    meta = json.dumps({"source": "print(open('/input/x.txt').read())"})
    parts = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n{meta}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="inputs"; filename="in.tar"\r\n'
            "Content-Type: application/x-tar\r\n\r\n"
        ).encode()
        + tar_of({"x.txt": b"from multipart"})
        + f"\r\n--{boundary}--\r\n".encode()
    )
    reply = server.request(
        "POST", "/v1/runs", raw=parts, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert reply.status == 202, reply.body
    result = server.result(reply.json()["run_id"])["result"]
    assert result["status"] == "succeeded" and "from multipart" in result["stdout_tail"]


@pytest.mark.parametrize(
    "member",
    ["../escape.txt", "/etc/evil", "a/../../b", "link"],
)
def test_hostile_input_names_are_refused_before_anything_is_written(server: Server, member: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    before = sorted((server.data_dir / "runs").iterdir()) if (server.data_dir / "runs").exists() else []
    reply = server.request("POST", "/v1/runs", {"source": "print(1)", "inputs_tar": b64(buf.getvalue())})
    assert reply.status == 422 and reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "InvalidInput"
    after = sorted((server.data_dir / "runs").iterdir()) if (server.data_dir / "runs").exists() else []
    assert after == before  # refused at the door: no run folder, nothing extracted
    staged = server.data_dir / "staging"
    assert not staged.exists() or not any(p for folder in staged.iterdir() for p in folder.iterdir())


def test_errors_are_problem_json(server: Server) -> None:
    missing = server.request("GET", "/v1/runs/0123456789ab")
    assert missing.status == 404 and missing.json()["type"] == "NotFound"
    bad = server.request("GET", "/v1/runs/not-an-id")
    assert bad.status == 422 and bad.json()["type"] == "InvalidInput"
    invalid = server.request("POST", "/v1/runs", {"source": "print(1)", "env": {"1BAD": "x"}})
    assert invalid.status == 422 and invalid.json()["type"] == "InvalidInput"
    limits = server.request("POST", "/v1/runs", {"source": "print(1)", "limits": {"memory": "lots"}})
    assert limits.status == 422 and limits.json()["type"] == "ConfigError"
    huge = server.request(
        "POST", "/v1/runs", raw=b"{" + b" " * (200 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"}
    )
    assert huge.status == 413 and huge.json()["type"] == "TooLarge"


def test_events_stream_live_and_resume(server: Server) -> None:
    source = "import time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n"
    run_id = server.submit(source)
    seen = list(server.events(run_id))
    kinds = [kind for _, kind, _ in seen]
    assert kinds[0] == "run_started" and kinds[-2:] == ["run_finished", "end"]
    outputs = [json.loads(data)["text"] for _, kind, data in seen if kind == "output"]
    assert outputs == ["line 0", "line 1", "line 2"]
    ids = [int(i) for i, kind, _ in seen if i is not None]
    assert ids == list(range(1, len(ids) + 1))
    end = json.loads(seen[-1][2])
    assert end["status"] == "finished" and end["result"]["status"] == "succeeded"
    # Resume after the second event: the rest, same numbers, same end.
    resumed = list(server.events(run_id, last_event_id=2))
    assert [int(i) for i, _, _ in resumed if i is not None] == ids[2:]
    assert resumed[-1][1] == "end"


def test_cancel_running_run_removes_its_container(server: Server, docker_client: object) -> None:
    run_id = server.submit(SLOW)
    stream = server.events(run_id)
    for _, kind, _ in stream:
        if kind == "output":
            break  # the script is running in its container now
    reply = server.request("POST", f"/v1/runs/{run_id}/cancel")
    assert reply.status == 202
    view = server.result(run_id, wait=30)
    assert view["status"] == "cancelled"
    assert view["result"]["status"] == "cancelled"
    assert [kind for _, kind, _ in stream][-1] == "end"  # the open stream ended too
    api = docker_client.api  # type: ignore[attr-defined]
    running = api.containers(filters={"label": f"harness.run_id={run_id}"})
    assert running == []


def test_client_disconnect_mid_stream_still_yields_a_result(server: Server) -> None:
    source = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('last')\n"
    run_id = server.submit(source)
    stream = server.events(run_id)
    for _, kind, _ in stream:
        if kind == "output":
            break
    stream.close()  # the client goes away mid-run
    view = server.result(run_id)
    assert view["status"] == "finished" and view["result"]["status"] == "succeeded"
    assert "last" in view["result"]["stdout_tail"]


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_change_after_runs(server: Server) -> None:
    before = server.request("GET", "/metrics")
    assert before.status == 200 and before.headers["content-type"].startswith("text/plain")
    runs_before = _metric(before.body.decode(), 'harness_runs_total{kind="script",status="failed"}')
    check = server.request("POST", "/v1/check", {"source": "import os\nos.system('ls')\n"})
    assert check.status == 200 and check.json()["passed"] is False
    run_id = server.submit("raise SystemExit(3)")
    assert server.result(run_id)["result"]["status"] == "failed"
    after = server.request("GET", "/metrics").body.decode()
    assert _metric(after, 'harness_runs_total{kind="script",status="failed"}') == runs_before + 1
    assert _metric(after, "harness_gate_refusals_total") >= 1
    assert _metric(after, "harness_run_duration_seconds_count") >= 1
    assert _metric(after, "harness_pool_size") == 1


def test_catalog_and_history_routes(server: Server) -> None:
    templates = server.request("GET", "/v1/templates")
    assert templates.status == 200 and templates.json()
    name = templates.json()[0]["name"]
    one = server.request("GET", f"/v1/templates/{name}")
    assert one.status == 200 and one.json()["name"] == name
    assert server.request("GET", "/v1/templates/no-such-template").status == 404
    analysis = server.request("POST", "/v1/analyze", {"request": "summarise the sales csv by region"})
    assert analysis.status == 200 and {"analysis", "decision"} <= set(analysis.json())
    assert server.request("GET", "/v1/history?limit=5").status == 200
    assert server.request("GET", "/v1/stats").status == 200
    assert server.request("GET", "/v1/review?status=pending").json() == []


def test_tcp_needs_the_token(base: Path, sandbox_image: str) -> None:
    srv = start_server(base / "tcp", "--concurrency", "1", listen=True, env={"HARNESS_POOL_SIZE": "0"})
    try:
        token_file = base / "tcp" / "server-token"
        assert stat.S_IMODE(os.lstat(token_file).st_mode) == 0o600
        none = srv.request("GET", "/healthz", auth=False)
        assert none.status == 401 and none.headers["www-authenticate"].startswith("Bearer")
        assert none.json()["type"] == "Unauthorized"
        wrong = srv.request("GET", "/v1/templates", headers={"Authorization": "Bearer " + "x" * 43}, auth=False)
        assert wrong.status == 401
        assert srv.request("POST", "/v1/runs", {"source": "print(1)"}, auth=False).status == 401
        assert srv.request("GET", "/healthz").status == 200
        run_id = srv.submit("print('over tcp')")
        assert srv.result(run_id)["result"]["status"] == "succeeded"
    finally:
        assert srv.stop() == 0, "\n".join(srv.stderr)


def test_request_through_a_template_with_inputs(server: Server) -> None:
    csv = Path(__file__).resolve().parents[2] / "scaffolds/csv_summary/example/sales/sales_2026.csv"
    body = {
        "request": "summarise every CSV in ./data by region",
        "template": "csv_summary",
        "params": {"group_by": "region"},
        "inputs_tar": b64(tar_of({"sales/sales_2026.csv": csv.read_bytes()})),
    }
    reply = server.request("POST", "/v1/requests", body)
    assert reply.status == 202, reply.body
    run_id = reply.json()["run_id"]
    seen = list(server.events(run_id))
    assert "run_started" in [kind for _, kind, _ in seen]
    end = json.loads(seen[-1][2])
    assert end["kind"] == "request" and end["error"] is None
    report = end["report"]
    assert report["execution_result"]["status"] == "succeeded", report["execution_result"]
    assert report["dispatch_decision"]["template"] == "csv_summary"
    outputs = server.request("GET", f"/v1/runs/{run_id}/outputs")
    with tarfile.open(fileobj=io.BytesIO(outputs.body)) as tar:
        assert {"summary.json", "summary.md"} <= set(tar.getnames())


def test_request_dry_run_and_a_refused_one(server: Server) -> None:
    reply = server.request("POST", "/v1/requests", {"request": "summarise the csv files by region", "dry_run": True})
    view = server.result(reply.json()["run_id"])
    assert view["status"] == "finished" and view["report"]["outcome"] == "dry_run"
    assert {"analysis", "decision", "run_id"} <= set(view["report"])
    missing = server.request("POST", "/v1/requests", {"request": "x", "template": "no_such_template"})
    failed = server.result(missing.json()["run_id"])
    assert failed["error"]["type"] == "NotFound" and failed["error"]["status"] == 404


def test_a_request_that_splits_runs_as_one_plan_job(server: Server) -> None:
    papers = Path(__file__).resolve().parents[2] / "scaffolds/research_digest/example/papers"
    files = {f"papers/{p.relative_to(papers)}": p.read_bytes() for p in sorted(papers.rglob("*")) if p.is_file()}
    request = (
        "research these papers, then build a python package called inventory, "
        "then audit the code for hard-coded secrets"
    )
    reply = server.request("POST", "/v1/requests", {"request": request, "inputs_tar": b64(tar_of(files))})
    seen = list(server.events(reply.json()["run_id"]))
    phases = [json.loads(data) for _, kind, data in seen if kind == "phase_changed"]
    assert {(p["phase"], p["state"]) for p in phases} >= {
        ("research_digest", "running"),
        ("security_audit", "succeeded"),
    }
    started = [json.loads(data)["phase"] for _, kind, data in seen if kind == "run_started"]
    assert sorted(started) == ["project_skeleton", "research_digest", "security_audit"]
    end = json.loads(seen[-1][2])
    assert end["kind"] == "plan" and end["error"] is None
    assert [(p["name"], p["status"]) for p in end["report"]["phases"]] == [
        ("research_digest", "succeeded"),
        ("project_skeleton", "succeeded"),
        ("security_audit", "succeeded"),
    ]


def test_egress_by_host_is_counted(server: Server) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hi")

        def log_message(self, *args: object) -> None:
            pass

    api = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        port = api.server_address[1]
        source = f"import harness_runtime as hr\nprint(hr.fetch('http://127.0.0.1:{port}/').status)\n"
        run_id = server.submit(source, allow_hosts=[f"127.0.0.1:{port}"])
        result = server.result(run_id)["result"]
        assert result["status"] == "succeeded" and "200" in result["stdout_tail"], result
    finally:
        api.shutdown()
        api.server_close()
    metrics = server.request("GET", "/metrics").body.decode()
    assert _metric(metrics, 'harness_egress_requests_total{host="127.0.0.1"}') >= 1


def test_a_flood_past_the_job_buffer_is_counted_and_a_late_resume_is_told_of_the_gap(server: Server) -> None:
    before = _metric(server.request("GET", "/metrics").body.decode(), "harness_events_dropped_total")
    run_id = server.submit("for i in range(5000):\n    print(i)\n")
    view = server.result(run_id)
    assert view["result"]["status"] == "succeeded"
    frames = list(server.events(run_id, last_event_id=0))
    assert frames[0][1] == "gap"
    gap = json.loads(frames[0][2])
    assert gap["first"] == 1 and gap["last"] >= 5002 - 4096  # run_started + 5000 lines + run_finished, 4096 kept
    kept = [int(i) for i, _, _ in frames if i is not None]
    assert kept[0] == gap["last"] + 1 and kept == list(range(kept[0], kept[0] + len(kept)))
    assert frames[-1][1] == "end"
    after = _metric(server.request("GET", "/metrics").body.decode(), "harness_events_dropped_total")
    assert after - before >= gap["last"]
