"""`harness mcp` end to end: the SDK's own stdio client spawns the command and calls every tool.

Runs happen in real containers; the data directory is a throwaway one; the pool's containers
must be gone once the client hangs up (the leftovers check of every integration test).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_types import CallToolResult

HARNESS = str(Path(sys.executable).parent / "harness")

Session = Callable[[ClientSession], Awaitable[None]]


def _with_server(tmp_path: Path, body: Session, extra: dict[str, str] | None = None) -> str:
    """Spawn ``harness mcp`` with a fresh data dir, run ``body`` on a session; return the server's stderr."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("HARNESS_", "DOCKER_"))}
    env["HARNESS_DATA_DIR"] = str(tmp_path / "data")
    env["HARNESS_POOL_SIZE"] = "1"
    env.update(extra or {})
    params = StdioServerParameters(command=HARNESS, args=["mcp"], env=env)
    errlog = tmp_path / "stderr.txt"

    async def main() -> None:
        with errlog.open("w") as err:
            async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                await body(session)

    anyio.run(main)
    return errlog.read_text()


def _data(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error(result: CallToolResult) -> str:
    assert result.is_error
    (content,) = result.content
    text = getattr(content, "text", "")
    assert "\n" not in text, text
    return str(text)


SCRIPT = """\
import json, pathlib
import harness_runtime as hr
rows = pathlib.Path('/input/numbers.csv').read_text().split()
blob = pathlib.Path('/input/blob.bin').read_bytes()
with hr.phase('sum'):
    for i, row in enumerate(rows, 1):
        hr.progress(i, len(rows), f'row {i}')
total = sum(int(r) for r in rows)
pathlib.Path('/output/total.json').write_text(json.dumps({'total': total, 'blob': len(blob)}))
pathlib.Path('/output/big.bin').write_bytes(bytes(range(256)) * 100)
print('total', total)
"""


def test_every_tool_over_stdio_with_real_containers(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(session: ClientSession) -> None:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        seen["tools"] = tools
        notes: list[tuple[float, str | None]] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            notes.append((done, message))

        seen["run"] = _data(
            await session.call_tool(
                "run_python",
                {
                    "code": SCRIPT,
                    "files": {"numbers.csv": "1\n2\n3\n4\n"},
                    "files_base64": {"blob.bin": base64.b64encode(b"\x00\xff\x10").decode()},
                    "timeout_s": 30,
                },
                progress_callback=progress,
            )
        )
        seen["notes"] = notes
        seen["failed"] = _data(await session.call_tool("run_python", {"code": "import sys\nsys.exit('boom')\n"}))
        seen["request"] = _data(
            await session.call_tool(
                "run_request",
                {
                    "request": "create a sha256 checksum manifest of the files",
                    "template": "checksum_manifest",
                    "files": {"notes.txt": "hello\n", "data.csv": "a,b\n1,2\n"},
                },
            )
        )
        seen["check"] = _data(await session.call_tool("check_code", {"code": "import os\nos.system('rm -rf /')\n"}))
        seen["templates"] = _data(await session.call_tool("list_templates", {}))
        seen["template"] = _data(await session.call_tool("show_template", {"name": "checksum_manifest"}))
        seen["reviews"] = _data(await session.call_tool("list_pending_reviews", {}))
        seen["bad_name"] = _error(await session.call_tool("run_python", {"code": "x", "files": {"../etc": "x"}}))
        seen["bad_type"] = _error(await session.call_tool("run_python", {"code": "x", "timeout_s": "soon"}))
        seen["unknown"] = _error(await session.call_tool("show_template", {"name": "no_such_scaffold"}))
        seen["missing"] = _error(await session.call_tool("run_python", {}))

    stderr = _with_server(tmp_path, body)

    assert set(seen["tools"]) == {
        "run_python",
        "run_request",
        "check_code",
        "list_templates",
        "show_template",
        "list_pending_reviews",
    }
    schema = seen["tools"]["run_python"].input_schema
    assert schema["required"] == ["code"] and "files" in schema["properties"]

    run = seen["run"]
    assert run["status"] == "succeeded" and run["exit_code"] == 0, run
    assert "total 10" in run["stdout"]
    folder = Path(run["run_folder"])
    assert folder.parent == tmp_path / "data" / "runs"
    assert (folder / "events.jsonl").is_file() and (folder / "result.json").is_file()
    outputs = {o["path"]: o for o in run["outputs"]}
    assert json.loads(outputs["total.json"]["text"]) == {"total": 10, "blob": 3}
    assert outputs["big.bin"]["size"] == 25600 and outputs["big.bin"]["text"] is None
    assert (folder / "output" / "big.bin").stat().st_size == 25600

    # Progress came from the run's events: its start and end, and the script's phase.
    messages = [m or "" for _, m in seen["notes"]]
    assert any("started" in m for m in messages) and any("succeeded" in m for m in messages), messages
    assert any("phase sum" in m for m in messages), messages
    assert [d for d, _ in seen["notes"]] == sorted({d for d, _ in seen["notes"]})

    failed = seen["failed"]
    assert failed["status"] == "failed" and failed["exit_code"] == 1 and "boom" in failed["stderr"]

    request = seen["request"]
    assert request["status"] == "succeeded", request
    assert request["strategy"] == "use_template" and request["template"] == "checksum_manifest"
    manifest = {o["path"]: o for o in request["outputs"]}["MANIFEST.sha256"]["text"]
    assert "  notes.txt" in manifest and "  data.csv" in manifest
    assert Path(request["report"]).is_file()

    assert seen["check"]["passed"] is False and seen["check"]["counts"]["error"] >= 1
    assert "checksum_manifest" in {t["name"] for t in seen["templates"]["result"]}
    assert seen["template"]["parameters"]["mode"]["choices"] == ["create", "verify"]
    assert seen["reviews"] == {"result": []}

    assert "InvalidInput" in seen["bad_name"] and "folder separator" in seen["bad_name"]
    assert "invalid arguments: timeout_s" in seen["bad_type"]
    assert "NotFound" in seen["unknown"] and "no_such_scaffold" in seen["unknown"]
    assert "invalid arguments: code" in seen["missing"]
    assert "Traceback" not in stderr, stderr


def test_a_cancelled_call_stops_its_container(tmp_path: Path) -> None:
    runs: list[str] = []

    async def body(session: ClientSession) -> None:
        started = anyio.Event()

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if message and message.startswith("run ") and "started" in message:
                runs.append(message.split()[1])
                started.set()

        arguments = {"code": "import time\ntime.sleep(120)\n", "timeout_s": 300}
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: session.call_tool("run_python", arguments, progress_callback=progress))
            with anyio.fail_after(60):
                await started.wait()
            group.cancel_scope.cancel()  # the agent gives up: notifications/cancelled
        # The server is still there for the next call, and the run is over well before its 120 s.
        with anyio.fail_after(30):
            listed = await session.call_tool("list_templates", {})
        assert not listed.is_error
        result = tmp_path / "data" / "runs" / runs[0] / "result.json"
        with anyio.fail_after(30):
            while not result.exists():
                await anyio.sleep(0.1)

    _with_server(tmp_path, body)
    (run_id,) = runs
    result = json.loads((tmp_path / "data" / "runs" / run_id / "result.json").read_text())
    assert result["status"] == "cancelled" and result["duration_s"] < 60, result


def test_runs_go_through_a_running_harness_serve(tmp_path: Path) -> None:
    from serverkit import start_server

    base = Path(tempfile.mkdtemp(prefix="hm-"))  # short: a Unix socket's path must fit in 108 bytes
    server = start_server(base / "data", env={"HARNESS_POOL_SIZE": "1"})
    seen: dict[str, Any] = {}
    try:

        async def body(session: ClientSession) -> None:
            notes: list[str] = []

            async def progress(done: float, total: float | None, message: str | None) -> None:
                notes.append(message or "")

            seen["run"] = _data(
                await session.call_tool(
                    "run_python",
                    {"code": SCRIPT, "files": {"numbers.csv": "5\n6\n"}, "files_base64": {"blob.bin": "AA=="}},
                    progress_callback=progress,
                )
            )
            seen["notes"] = notes
            seen["request"] = _data(
                await session.call_tool(
                    "run_request",
                    {
                        "request": "create a sha256 checksum manifest of the files",
                        "template": "checksum_manifest",
                        "files": {"notes.txt": "hello\n"},
                    },
                )
            )
            seen["refused"] = _error(await session.call_tool("run_python", {"code": "x", "memory": "1k"}))

        assert server.socket_path is not None
        _with_server(tmp_path, body, {"HARNESS_URL": f"unix://{server.socket_path}"})
        stopped = server.stop()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert stopped == 0, "\n".join(server.stderr)

    # The runs were the server's: their folders are in its data dir, not the MCP process's.
    run = seen["run"]
    assert run["status"] == "succeeded" and "total 11" in run["stdout"], run
    assert Path(run["run_folder"]).parent == base / "data" / "runs"
    assert json.loads({o["path"]: o for o in run["outputs"]}["total.json"]["text"]) == {"total": 11, "blob": 1}
    assert any("phase sum" in note for note in seen["notes"]), seen["notes"]
    assert not (tmp_path / "data" / "runs").exists()

    request = seen["request"]
    assert request["status"] == "succeeded" and request["template"] == "checksum_manifest", request
    assert Path(request["report"]).parent.parent == base / "data" / "runs"
    assert "  notes.txt" in {o["path"]: o for o in request["outputs"]}["MANIFEST.sha256"]["text"]

    assert seen["refused"].startswith("Error executing tool run_python: ConfigError: invalid limit memory")
