"""A script's fetches through a worker: answered by the worker, under the grant in the job, never wider."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fleetkit import Fleet, Remote

from harness.records import RunSpec


class _Api(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def api() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


SCRIPT = r"""
import sys
import harness_runtime as hr
port = int(sys.argv[1])
print("get:", hr.fetch(f"http://127.0.0.1:{port}/items").json()["path"], flush=True)
try:
    hr.fetch(f"http://127.0.0.1:{port + 1}/")
    print("reached the other port", flush=True)
except hr.FetchError as exc:
    print("refused:", exc, flush=True)
"""


def test_the_worker_fetches_for_the_script_under_the_jobs_grant(fleet: Fleet, remote: Remote, api: int) -> None:
    fleet.start("w1")
    grant = (f"127.0.0.1:{api}",)
    result = remote().run(RunSpec(script=SCRIPT, argv=(str(api),), egress=grant))
    assert result.ok, (result.stdout_tail, result.stderr_tail)
    assert "get: /items" in result.stdout_tail
    assert f"refused: 127.0.0.1:{api + 1} is not on this run's allowed hosts" in result.stdout_tail
    assert result.policy.egress == grant

    # Without a grant in the job, the worker fetches nothing.
    bare = remote().run(RunSpec(script=SCRIPT, argv=(str(api),)))
    assert not bare.ok and "get:" not in bare.stdout_tail
