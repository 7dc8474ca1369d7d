"""The same ``harness`` command, through a running server and with ``--local``: same output, same exit code.

Each case runs the real CLI twice in a child process: once with ``HARNESS_URL`` pointing at a
server that speaks the HTTP API contract (the thin client serves the command), once with
``--local`` (the in-process CLI). What differs by nature (run ids, timings, the run folder's
name) is normalised; everything else must be byte-identical, stdout and stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.served import RecordingProxy, running_server

ROOT = Path(__file__).resolve().parents[2]

# What differs by nature: ids and timings, and whether a warm pool served the run (a server keeps
# one, the in-process CLI does not; a pooled container gets its inputs copied, not bind-mounted).
_VARIES = ("run_id", "duration_s", "first_event_s", "timings", "output_dir", "durations_ms", "pooled", "input_mode")
_POOLED = re.compile(r"\b(pooled|cold) container\b")
_ID = re.compile(r"\b[0-9a-f]{12}\b")
_SECONDS = re.compile(r"\b\d+\.\d+s\b")
_MS = re.compile(r"\b\d+ ms\)")


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingProxy]:
    with running_server(tmp_path_factory.mktemp("server")) as proxy:
        yield proxy


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in _VARIES else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _normal(text: str) -> str:
    try:
        return json.dumps(_scrub(json.loads(text)), indent=1)
    except ValueError:
        return _POOLED.sub("X container", _MS.sub("N ms)", _SECONDS.sub("Ns", _ID.sub("ID", text))))


def _harness(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, timeout=180
    )
    return done.returncode, _normal(done.stdout), _normal(done.stderr)


def both(server: RecordingProxy, *args: str) -> tuple[int, str, str]:
    """Run ``harness ARGS`` through the server and locally; assert they agree, and return what they gave."""
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    before = len(server.requests)
    remote = _harness(list(args), env)
    assert len(server.requests) > before, "the command did not go through the server"
    local = _harness([*args, "--local"], env)
    assert remote == local
    return remote


def script(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


EVENTS = """
import harness_runtime as hr
with hr.phase("load"):
    hr.progress(1, 2, "half")
    hr.log("careful \\x1b[2K", level="warning")
    print("plain\\tline \\x1b]0;title\\x07")
"""


def test_exec_text_and_json(server: RecordingProxy, tmp_path: Path) -> None:
    tiny = script(tmp_path, "tiny.py", "print('hi')\n")
    code, out, err = both(server, "exec", tiny)
    assert code == 0 and out.startswith("succeeded (exit code 0) in Ns · 3 events · X container") and err == "│ hi\n"
    code, out, _ = both(server, "exec", tiny, "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"


def test_exec_events_are_shown_alike_and_made_visible(server: RecordingProxy, tmp_path: Path) -> None:
    code, _, err = both(server, "exec", script(tmp_path, "events.py", EVENTS))
    assert code == 0 and "\x1b" not in err
    assert "▶ load" in err and "warning: careful \\x1b[2K" in err and "✓ load" in err
    assert "│ plain line \\x1b]0;title\\x07" in err  # the tab expanded to the next 8-column stop, as rich does


def test_exec_failure_inputs_env_and_limits(server: RecordingProxy, tmp_path: Path) -> None:
    code, out, _ = both(server, "exec", script(tmp_path, "fail.py", "raise SystemExit(3)\n"), "--json")
    assert code == 1 and json.loads(out)["exit_code"] == 3
    code, out, _ = both(server, "exec", script(tmp_path, "fail.py", "raise SystemExit(3)\n"))
    assert code == 1 and out.startswith("failed (exit code 3)")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    reader = script(
        tmp_path, "read.py", "import os\nprint(open('/input/data.csv').read().split()[1], os.environ['WHO'])\n"
    )
    code, _, err = both(server, "exec", reader, "--input", str(data), "-e", "WHO=me", "--timeout", "30")
    assert code == 0 and err == "│ 1,2 me\n"
    code, out, err = both(server, "exec", reader, "--memory", "lots")
    assert code == 2 and out == "" and err.startswith("Error: invalid limit memory='lots'") and err.count("\n") == 1


def test_check_table_json_and_errors(server: RecordingProxy, tmp_path: Path) -> None:
    bad = script(tmp_path, "bad.py", "import os\nos.system('id')  # [bold]shown[/bold]\n")
    code, out, _ = both(server, "check", bad)
    assert code == 1 and "HP103" in out and "bad.py: gate failed under the strict policy" in out
    assert both(server, "check", bad, "--info")[0] == 1
    code, out, _ = both(server, "check", bad, "--json")
    assert code == 1 and json.loads(out)["gate"]["passed"] is False
    good = script(tmp_path, "good.py", "import json\nprint(json.dumps(1))\n")
    assert both(server, "check", good, "--policy", "standard")[0] == 0
    code, _, err = both(server, "check", good, "--policy", "lenient")
    assert code == 2 and err.startswith("Error: unknown gate policy 'lenient'")


def test_analyze_text_and_json(server: RecordingProxy) -> None:
    code, out, err = both(server, "analyze", "summarise every CSV in the sales data by region")
    assert code == 0 and "decision use_template csv_summary" in err and "candidate csv_summary" in out
    code, out, _ = both(server, "analyze", "audit this repository for hard-coded secrets", "--json")
    assert code == 0 and json.loads(out)["decision"]["template"] == "security_audit"
    code, _, err = both(server, "analyze", "   ")
    assert code == 2 and err.startswith("Error: ")


def test_rich_loads_only_to_draw_the_live_display(server: RecordingProxy, tmp_path: Path) -> None:
    import pty

    tiny = script(tmp_path, "tiny.py", "print('hi')\n")
    heavy = ("pydantic", "docker", "rich", "typer", "jinja2", "anthropic")
    code = (
        "import json, sys\nfrom harness.cli import main\n"
        f"code = main(['exec', {tiny!r}])\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\nsys.exit(code)\n"
    )
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    loaded = {}
    for terminal in (False, True):
        primary, secondary = pty.openpty() if terminal else (None, None)
        done = subprocess.run(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=secondary if terminal else subprocess.DEVNULL,
            text=True,
            env=env,
            timeout=120,
        )
        if terminal:
            assert primary is not None and secondary is not None
            os.close(secondary)
            drawn = os.read(primary, 65536).decode(errors="replace")
            os.close(primary)
            assert "hi" in drawn and "\x1b[" in drawn  # rich drew on the terminal
        assert done.returncode == 0
        loaded[terminal] = json.loads(done.stdout.splitlines()[-1])
    assert loaded == {False: [], True: ["rich"]}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_served_exec_cancels_the_run(
    server: RecordingProxy, tmp_path: Path, docker_client: Any, sig: int
) -> None:
    slow = script(tmp_path, "slow.py", "import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "exec", slow],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "│ started\n"  # the run is live in the server's container
    run_id = next(line.split("/")[3] for line in server.requests if line.startswith("GET /v1/runs/"))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "Interrupted: containers of this run were removed."
    from harness.client.endpoint import Endpoint
    from harness.client.transport import Client

    final = Client(Endpoint(path=str(server.path))).call("GET", f"/v1/runs/{run_id}?wait=30")
    assert final["status"] in ("finished", "cancelled") and final["result"]["status"] == "cancelled"

    def gone() -> bool:
        return docker_client.api.containers(all=True, filters={"label": f"harness.run_id={run_id}"}) == []

    # The run has ended; a server may remove its container a moment later (its reaper thread).
    deadline = time.monotonic() + 30
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone()
