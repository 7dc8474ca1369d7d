"""The thin client's transport: where the server is, 429 retries, SSE framing and resume, problems."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.render import problem_line
from harness.client.endpoint import ClientError, Endpoint, NoServer, probe, remote_endpoint, resolve
from harness.client.transport import Client, ProblemError, connect
from tests.contract_server import ContractServer, _Job


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ContractServer]:
    srv = ContractServer(tmp_path / "h.sock")
    yield srv
    srv.close()


def test_default_socket_is_under_the_data_dir_without_a_runtime_dir(tmp_path: Path) -> None:
    endpoint = resolve(None, {"HARNESS_DATA_DIR": str(tmp_path)})
    assert endpoint.path == str(tmp_path / "run" / "harness.sock")


def test_runtime_dir_wins_for_the_default_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "rt"))
    assert resolve(None, {}).path == str(tmp_path / "rt" / "harness" / "harness.sock")


def test_harness_url_forms_and_the_tcp_token(tmp_path: Path) -> None:
    assert resolve("unix:///x/y.sock", {}).path == "/x/y.sock"
    token = "t" * 40
    (tmp_path / "server-token").write_text(token + "\n")
    (tmp_path / "server-token").chmod(0o600)
    tcp = resolve(None, {"HARNESS_URL": "http://127.0.0.1:8765", "HARNESS_DATA_DIR": str(tmp_path)})
    assert (tcp.host, tcp.port, tcp.token) == ("127.0.0.1", 8765, token)
    (tmp_path / "server-token").chmod(0o644)  # readable by others: not used
    with pytest.raises(ClientError, match="cannot be used"):
        resolve(None, {"HARNESS_URL": "http://127.0.0.1:8765", "HARNESS_DATA_DIR": str(tmp_path)})
    env = {"HARNESS_URL": "http://[::1]:9/", "HARNESS_TOKEN": "from-env", "HARNESS_DATA_DIR": str(tmp_path)}
    assert (resolve(None, env).host, resolve(None, env).token) == ("::1", "from-env")
    for bad in ("http://127.0.0.1", "https://example.com:1", "ftp://x"):
        with pytest.raises(ClientError):
            resolve(bad, {})


def test_bearer_token_is_sent_over_tcp_only() -> None:
    assert "Authorization" not in Client(Endpoint(path="/s"))._headers(None)
    assert Client(Endpoint(host="127.0.0.1", port=1, token="t"))._headers(None)["Authorization"] == "Bearer t"


def test_no_server_falls_through_at_once(tmp_path: Path) -> None:
    missing = Endpoint(path=str(tmp_path / "nothing.sock"))
    stale = tmp_path / "stale.sock"
    stale.touch()  # a file left behind, nobody listening
    started = time.monotonic()
    assert not probe(missing) and not probe(Endpoint(path=str(stale)))
    assert not probe(Endpoint(host="127.0.0.1", port=1))
    assert time.monotonic() - started < 1.0
    with pytest.raises(NoServer):
        connect(f"unix://{missing.path}")
    assert remote_endpoint(["exec", "x.py"], {"HARNESS_URL": f"unix://{missing.path}"}) is None


def test_remote_only_for_the_four_commands_without_local(server: ContractServer) -> None:
    env = {"HARNESS_URL": f"unix://{server.path}"}
    assert remote_endpoint(["check", "x.py"], env) is not None
    for args in (["check", "x.py", "--local"], ["exec", "--help"], ["templates", "list"], [], ["exec", "--debug"]):
        assert remote_endpoint(args, env) is None, args


def test_429_is_retried_after_retry_after_then_given_up(server: ContractServer) -> None:
    waits: list[float] = []
    client = Client(Endpoint(path=str(server.path)), sleep=waits.append)
    server.busy = 2
    answer = client.call("POST", "/v1/check", {"source": "print(1)\n", "policy": "strict"})
    assert answer["gate"]["passed"] is True and waits == [0.0, 0.0]
    server.busy = 100
    with pytest.raises(ProblemError) as caught:
        client.call("POST", "/v1/check", {"source": "print(1)\n"})
    assert caught.value.type == "Busy" and caught.value.status == 429 and len(waits) == 2 + 5


def test_problem_becomes_the_cli_line_and_exit_code(server: ContractServer) -> None:
    from harness.client.exit_codes import exit_code_for_type

    client = Client(Endpoint(path=str(server.path)))
    with pytest.raises(ProblemError) as caught:
        client.call("POST", "/v1/check", {"source": "x = 1\n", "policy": "lenient"})
    # Refused by the server's schema: the CLI falls back to in-process, which words it the CLI's way.
    assert caught.value.schema_refused and caught.value.status == 422
    problem = {"type": "ConfigError", "title": "unknown gate policy 'lenient'", "hint": "use one of: strict, standard"}
    config = ProblemError(problem, 422)
    assert not config.schema_refused and exit_code_for_type(config.type) == 2
    assert problem_line(config.problem) == "unknown gate policy 'lenient': use one of: strict, standard"
    assert ProblemError({"type": "Draining", "title": "shutting down"}, 503).not_taken and not config.not_taken
    # A title that already carries the hint does not repeat it.
    assert problem_line({"title": "bad: do this", "hint": "do this"}) == "bad: do this"
    assert exit_code_for_type("SomethingNew") == 1


def test_structured_fixes_and_missing_inputs_are_worded_as_the_cli_words_them() -> None:
    from harness.cli.hints import error_line
    from harness.errors import Fix, MissingInputs, NotReviewed
    from harness.records import MissingInput

    not_reviewed = NotReviewed("g-1 is not approved", hint="have it reviewed", record_id="g-1")
    not_reviewed.fix = Fix("review", "g-1")
    missing = MissingInputs(
        "missing", missing=[MissingInput(name="top", type="int", example=5, description="how many")]
    )
    for exc in (not_reviewed, missing):
        data: dict[str, object] = {}
        if exc.fix is not None:
            data["fix"] = {"action": exc.fix.action, "target": exc.fix.target, "values": list(exc.fix.values)}
        if isinstance(exc, MissingInputs):
            data["missing"] = [m.model_dump(mode="json") for m in exc.missing]
        problem = {"type": type(exc).__name__, "title": exc.message, "hint": exc.hint, "data": data}
        assert problem_line(problem) == error_line(exc)


def _job(server: ContractServer, events: int) -> _Job:
    job = _Job("r1")
    server.jobs[job.run_id] = job
    for i in range(events):
        job.add("log", json.dumps({"kind": "log", "level": "info", "message": f"line {i}"}))
    job.finish(result={"status": "succeeded"}, error=None)
    return job


def test_sse_frames_come_in_order_and_end_with_the_result(server: ContractServer) -> None:
    _job(server, 3)
    client = Client(Endpoint(path=str(server.path)))
    got = list(client.events("/v1/runs/r1/events"))
    assert [(e.event, e.id) for e in got] == [
        ("log", "1"),
        ("log", "2"),
        ("log", "3"),
        ("end", "3"),
    ]  # the last id carries over (SSE)
    assert got[1].json()["message"] == "line 1" and got[-1].json()["result"] == {"status": "succeeded"}


def test_a_dropped_stream_resumes_after_the_last_event_seen(server: ContractServer) -> None:
    _job(server, 5)
    server.drop_after = 2  # every connection is cut after two events
    waits: list[float] = []
    client = Client(Endpoint(path=str(server.path)), sleep=waits.append)
    got = list(client.events("/v1/runs/r1/events"))
    assert [e.id for e in got if e.event == "log"] == ["1", "2", "3", "4", "5"] and got[-1].event == "end"
    resumed = [h.get("Last-Event-ID") for method, path, h in server.requests_seen if path.endswith("/events")]
    assert resumed == [None, "2", "4"]
