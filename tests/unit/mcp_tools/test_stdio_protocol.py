"""`harness mcp` as a process: stdout carries JSON-RPC and nothing else, and it ends when stdin closes.

No tool here starts a container, so no engine is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HARNESS = str(Path(sys.executable).parent / "harness")

MESSAGES = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    # bandit's plugin loading and the checks run here: neither may write to stdout.
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "check_code", "arguments": {"code": "1"}}},
    {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "show_template", "arguments": {}}},
]


def test_stdout_is_only_protocol_and_the_server_exits_on_hangup() -> None:
    with subprocess.Popen(
        [HARNESS, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    ) as server:
        assert server.stdin is not None and server.stdout is not None and server.stderr is not None
        try:
            server.stdin.write("".join(json.dumps(m) + "\n" for m in MESSAGES))
            server.stdin.flush()
            replies = []
            # Replies to calls still running when stdin closes are cancelled: hang up once all are in.
            while len([r for r in replies if "id" in r]) < 4:
                line = server.stdout.readline()
                assert line, "the server ended early"
                replies.append(json.loads(line))  # every line is JSON
            server.stdin.close()
            server.wait(timeout=60)
            rest, stderr = server.stdout.read(), server.stderr.read()
        finally:
            if server.poll() is None:
                server.kill()
    assert server.returncode == 0, stderr
    assert rest == ""
    assert all(reply["jsonrpc"] == "2.0" for reply in replies)
    by_id = {reply["id"]: reply for reply in replies if "id" in reply}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"]["serverInfo"]["name"] == "harness"
    assert len(by_id[2]["result"]["tools"]) == 6
    assert by_id[3]["result"]["structuredContent"]["passed"] is True
    # A bad call is a tool result with isError, not a JSON-RPC error.
    assert "error" not in by_id[4] and by_id[4]["result"]["isError"] is True
    assert "Traceback" not in stderr
