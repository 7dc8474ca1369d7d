"""The same ``harness`` command, through a running server and with ``--local``: same output, same exit code.

Each case runs the real CLI twice in a child process: once with ``HARNESS_URL`` pointing at a
server that speaks the HTTP API contract (the thin client serves the command), once with
``--local`` (the in-process CLI). What differs by nature (run ids, timings, the run folder's
name) is normalised; everything else must be byte-identical, stdout and stderr.
"""

from __future__ import annotations

import difflib
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
    # A request run would refuse (no column named): analyze exits 2 too, through either path.
    code, out, _ = both(server, "analyze", "summarise the csv files", "--json")
    assert code == 2 and json.loads(out)["decision"]["missing"][0]["name"] == "group_by"


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


# `harness run`: a request's confidence and estimate learn from the history the first of the two runs wrote.
_CONFIDENCE = re.compile(r"\b(confidence|score) \d\.\d\d\b")
# (``_harness`` may already have written the seconds as Ns; the basis differs with each side's history.)
_ESTIMATE = re.compile(r"(~|estimated )(?:\d+(?:\.\d+)?|N)s\b( \([^)]*\))?")
_HISTORY = re.compile(r"history: .*")
_RUN_VARIES = {"confidence", "workflow_confidence", "score", "created_at", "script_path", "plan_id", "id"}
_RUN_VARIES |= {"total_s", "stages_s", "container_s", "wall_s", "busy_s", "estimate_error", "tokens", "started_s"}
_RUN_VARIES |= {"finished_s", "parallel_execution_percentage", "basis"}
_RUN_VARIES |= {"estimated_duration_s", "estimate_basis", "estimated_coordination_s", "duration_s", "sequential_s"}


def _run_scrub(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("argv"), list):  # the local run's command line says --local
            value = {**value, "argv": [a for a in value["argv"] if a != "--local"]}
        return {k: "*" if k in _RUN_VARIES else _run_scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_run_scrub(v) for v in value]
    if isinstance(value, str):
        return _HISTORY.sub("history: *", value)
    return value


def _run_normal(text: str) -> str:
    try:
        return json.dumps(_run_scrub(json.loads(text)), indent=1)
    except ValueError:
        return _ESTIMATE.sub(r"\1Ns", _CONFIDENCE.sub(r"\1 N", text))  # with the estimate's basis


def both_runs(server: RecordingProxy, *args: str) -> tuple[int, str, str]:
    """``both`` for ``harness run``: the request went to the server's request endpoint, and both paths agree."""
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    before = len(server.requests)
    code, out, err = _harness(["run", *args], env)
    assert "POST /v1/requests HTTP/1.1" in server.requests[before:], "the request did not go through the server"
    remote = code, _run_normal(out), _run_normal(err)
    code, out, err = _harness(["run", *args, "--local"], env)
    local = code, _run_normal(out), _run_normal(err)
    for one, other in zip(remote[1:], local[1:], strict=True):
        differ = difflib.unified_diff(one.splitlines(), other.splitlines(), "server", "local", lineterm="", n=1)
        assert one == other, "\n".join(differ)
    assert remote[0] == local[0]
    return remote


def _sales(tmp_path: Path) -> str:
    data = tmp_path / "sales.csv"
    data.write_text("region,amount\nnorth,3\nsouth,4\nnorth,5\n")
    return str(data)


def test_run_template_text_and_json(server: RecordingProxy, tmp_path: Path) -> None:
    sales = _sales(tmp_path)
    code, out, err = both_runs(server, "summarise the csv files by region", "--input", sales, "--yes")
    assert code == 0 and out.startswith("succeeded · csv_summary · 4 phase(s)") and "assertions: 2/2 passed" in out
    assert "decision use_template csv_summary" in err and "▶ discover" in err and "│ | north | 2 | 8 |" in err
    code, out, _ = both_runs(server, "summarise the csv files by region", "--input", sales, "--json")
    assert code == 0 and json.loads(out)["execution_result"]["status"] == "succeeded"


def test_run_refusals_and_usage_errors(server: RecordingProxy, tmp_path: Path) -> None:
    # A missing parameter: exit 2, one error line, and with --json the refusal on stdout.
    code, out, err = both_runs(server, "summarise the csv files", "--json")
    refusal = json.loads(out)
    assert code == 2 and refusal["status"] == "refused" and refusal["missing"][0]["name"] == "group_by"
    assert err.splitlines()[-1].startswith("Error: cannot run this request yet: missing --param group_by")
    code, out, err = both_runs(server, "summarise the csv files")
    assert code == 2 and out == "" and "Error: cannot run this request yet" in err
    code, _, err = both_runs(server, "do it", "--template", "no_such_scaffold")
    assert code == 2 and err.startswith("Error: ")
    code, _, err = both_runs(server, "summarise by region", "--strategy", "guess", "--json")
    assert code == 2 and "Error: unknown strategy 'guess'" in err
    code, out, err = both_runs(server, "summarise by region", "--memory", "lots", "--input", _sales(tmp_path))
    assert code == 2 and out == "" and err.startswith("Error: invalid limit memory='lots'")


def test_run_dry_run_shows_script_and_findings(server: RecordingProxy) -> None:
    code, out, err = both_runs(server, "summarise every CSV by region", "--dry-run")
    assert code == 0 and "GROUP_BY = 'region'" in out
    assert "┃ code" in err and err.rstrip().endswith("dry run: the script passes the standard gate; nothing was run")


def test_run_a_plan(server: RecordingProxy) -> None:
    request = (
        "research these papers, then build a python package called inventory, "
        "then audit the code for hard-coded secrets"
    )
    papers = str(ROOT / "scaffolds/research_digest/example/papers")
    code, out, err = both_runs(server, request, "--input", papers, "--yes")
    assert code == 0 and out.startswith("succeeded · 3/3 phases")
    assert "plan stage 2: project_skeleton (project_skeleton, use_template) after research_digest" in err
    assert "✓ security_audit: succeeded" in err
    code, out, _ = both_runs(server, request, "--input", papers, "--json")
    assert code == 0 and [p["status"] for p in json.loads(out)["phases"]] == ["succeeded"] * 3


@pytest.fixture
def gate_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A server (and CLI) whose log_analysis scaffold imports subprocess, which the gate refuses."""
    import shutil

    from harness.generation.scaffolds import scaffolds_root

    library = tmp_path_factory.mktemp("scaffolds")
    shutil.copytree(scaffolds_root() / "log_analysis", library / "log_analysis")
    template = library / "log_analysis" / "template.py.j2"
    template.write_text(template.read_text().replace("import json\n", "import json\nimport subprocess\n", 1))
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    with running_server(tmp_path_factory.mktemp("server")) as proxy:
        yield proxy


def test_run_a_refused_gate(gate_server: RecordingProxy) -> None:
    code, out, err = both_runs(gate_server, "find errors in the logs", "--template", "log_analysis", "--json")
    report = json.loads(out)
    assert code == 1 and report["execution_result"]["status"] == "gate_failed"
    assert "HP101" in err and "the static-check gate refused the script; script, findings and report are in" in err


@pytest.fixture
def llm_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A server (and CLI) whose LLM is the fake Messages API: yields (proxy, fake)."""
    from harness.testing import FakeAnthropic

    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        monkeypatch.setenv("HARNESS_LLM_RETRIES", "1")
        monkeypatch.setenv("HARNESS_LLM_ANALYSIS", "off")
        with running_server(tmp_path_factory.mktemp("server")) as proxy:
            yield proxy, fake


def test_run_a_generated_script_against_the_fake_llm(llm_server: Any) -> None:
    from harness.testing import Reply

    proxy, fake = llm_server
    code = "import json\nimport os\nprint('hello from the model')\n"
    for _ in range(2):
        fake.add(Reply.tool_use("write_script", {"code": code, "explanation": "greets"}))
    done = both_runs(proxy, "write a greeting script", "--strategy", "generate_custom", "--yes")
    status, out, err = done
    assert status == 0 and out.startswith("succeeded · None · ")
    assert "generating (LLM call 1)…" in err and "generated g-ID in 1 attempt(s)" in err
    assert "│ hello from the model" in err and fake.pending == 0


OUTPUTS = """
from pathlib import Path
Path("/output/a.txt").write_text("hi")
Path("/output/sub").mkdir()
Path("/output/sub/b.txt").write_text("yo")
Path("/output/.hidden").write_text("x")
"""


def both_outputs(
    server: RecordingProxy, tmp_path: Path, setup: Any, *args: str, fetched: bool = True
) -> tuple[int, str, str, dict[str, bytes]]:
    """``both`` with ``--output DEST`` (DEST in ``args``), each path into its own folder made alike by ``setup``.

    ``fetched``: the served command downloaded the outputs from the server (else it was refused, or in-process).
    """
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    seen: dict[str, tuple[int, str, str]] = {}
    trees: dict[str, dict[str, bytes]] = {}
    for mode in ("server", "local"):
        dest = tmp_path / f"dest-{mode}"
        setup(dest)
        before = len(server.requests)
        local = ["--local"] if mode == "local" else []
        code, out, err = _harness([a.replace("DEST", str(dest)) for a in args] + local, env)
        if mode == "server":
            downloads = [line for line in server.requests[before:] if line.startswith("GET") and "/outputs " in line]
            assert len(downloads) == int(fetched), (server.requests[before:], out, err)
        seen[mode] = code, _run_normal(out.replace(str(dest), "DEST")), _run_normal(err.replace(str(dest), "DEST"))
        trees[mode] = {
            # A plan's report names its ids and timings: the file must be there alike, not hold the same bytes.
            str(p.relative_to(dest)): b"<report>"
            if p.name.endswith("report.json")
            else p.read_bytes()
            if p.is_file()
            else b"<dir>"
            for p in sorted(dest.rglob("*"))
            if p.name != ".harness-output"
        }
    for one, other in zip(seen["server"][1:], seen["local"][1:], strict=True):
        assert one == other, "\n".join(difflib.unified_diff(one.splitlines(), other.splitlines(), lineterm="", n=1))
    assert seen["server"][0] == seen["local"][0] and trees["server"] == trees["local"]
    return (*seen["server"], trees["server"])


def _nothing(dest: Path) -> None:
    return None


def _taken(dest: Path) -> None:
    (dest / "sub").mkdir(parents=True)
    (dest / "a.txt").write_text("mine")


def test_exec_output_new_merge_and_overwrite(server: RecordingProxy, tmp_path: Path) -> None:
    source = script(tmp_path, "outs.py", OUTPUTS)
    code, out, _, tree = both_outputs(server, tmp_path / "new", _nothing, "exec", source, "--output", "DEST")
    assert code == 0 and tree == {"a.txt": b"hi", "sub": b"<dir>", "sub/b.txt": b"yo"}
    assert "outputs partial" in out and "refused .hidden: names starting with a dot are never written" in out
    assert "  outputs: DEST" in out
    code, out, _, tree = both_outputs(
        server, tmp_path / "merge", _taken, "exec", source, "-o", "DEST", "--merge", "--json"
    )
    result = json.loads(out)
    assert code == 0 and tree["a.txt"] == b"mine" and tree["sub/b.txt"] == b"yo"
    assert result["output_conflicts"] == ["a.txt"] and [a["path"] for a in result["artifacts"]] == ["sub/b.txt"]
    code, _, err, tree = both_outputs(server, tmp_path / "refused", _taken, "exec", source, "-o", "DEST", fetched=False)
    assert code == 2 and err.startswith("Error: output folder DEST is not empty") and tree["a.txt"] == b"mine"


def test_run_output_and_a_plan_output(server: RecordingProxy, tmp_path: Path) -> None:
    sales = _sales(tmp_path)
    request = "summarise the csv files by region"
    code, out, _, tree = both_outputs(
        server, tmp_path / "one", _nothing, "run", request, "-i", sales, "-o", "DEST", "-y"
    )
    assert code == 0 and set(tree) == {"summary.json", "summary.md"} and "  outputs: DEST" in out
    # A plan's outputs are made in-process (the server says before any work that it would be a plan).
    plan = "research these papers, then build a python package called inventory, then audit the code for secrets"
    papers = str(ROOT / "scaffolds/research_digest/example/papers")
    code, out, _, tree = both_outputs(
        server, tmp_path / "plan", _nothing, "run", plan, "-i", papers, "-o", "DEST", "-y", fetched=False
    )
    assert code == 0 and "  outputs: DEST" in out and "security_audit/findings.json" in tree


def test_served_run_and_output_load_nothing_heavy(server: RecordingProxy, tmp_path: Path) -> None:
    heavy = ("pydantic", "docker", "rich", "typer", "jinja2", "bandit", "celery", "anthropic")
    outs = script(tmp_path, "outs.py", OUTPUTS)
    sales = _sales(tmp_path)
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}"}
    for args in (
        ["run", "summarise the csv files by region", "-i", sales, "-y", "-o", str(tmp_path / "run-out")],
        ["exec", outs, "-o", str(tmp_path / "exec-out")],
    ):
        code = (
            "import json, sys\nfrom harness.cli import main\n"
            f"code = main({args!r})\n"
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\nsys.exit(code)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1]) == [], args
    assert (tmp_path / "run-out" / "summary.md").is_file() and (tmp_path / "exec-out" / "sub" / "b.txt").is_file()


def _expect(fd: int, wanted: str, seen: list[str], timeout: float = 60) -> None:
    """Read the terminal until ``wanted`` has appeared (in what was read since the last call)."""
    import select

    deadline = time.monotonic() + timeout
    text = ""
    while wanted not in text:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        assert ready, f"{wanted!r} never came; the terminal showed {''.join(seen) + text!r}"
        try:
            chunk = os.read(fd, 65536).decode(errors="replace")
        except OSError:  # the child closed the terminal
            chunk = ""
        assert chunk, f"the terminal closed before {wanted!r}; it showed {''.join(seen) + text!r}"
        text += chunk
    seen.append(text)


def test_a_served_run_at_a_terminal_asks_for_missing_parameters_and_to_confirm(
    server: RecordingProxy, tmp_path: Path
) -> None:
    import pty

    primary, secondary = pty.openpty()
    env = {**os.environ, "HARNESS_URL": f"unix://{server.path}", "COLUMNS": "200"}
    before = len(server.requests)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "summarise the csv files", "--input", _sales(tmp_path)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    seen: list[str] = []
    try:
        _expect(primary, "[region]: ", seen)  # asked, with the data's one candidate as the default
        os.write(primary, b"\n")
        _expect(primary, "Run it? [Y/n]: ", seen)  # asked once the script is vetted
        os.write(primary, b"y\n")
        assert proc.wait(120) == 0, "".join(seen)
        try:
            while chunk := os.read(primary, 65536):
                seen.append(chunk.decode(errors="replace"))
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(seen))
    assert "csv_summary needs group_by: the request does not say what to group by" in shown
    assert "succeeded" in shown and "group_by='region'" in shown
    posts = [line for line in server.requests[before:] if line.startswith("POST /v1/requests")]
    confirms = [line for line in server.requests[before:] if line.startswith("POST /v1/runs/")]
    assert len(posts) == 2 and len(confirms) == 1  # refused for the parameter, then asked to confirm
