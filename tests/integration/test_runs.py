"""Live events, outputs, the warm pool, concurrency, cleanup after interruption, and the sweep."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.events import Event, parse_line
from harness.execution.docker import LABEL, DockerBackend, owner_token
from harness.execution.limits import Limits
from harness.records import RunSpec
from harness.settings import Settings

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"

CONTRACT = r"""
import harness_runtime as hr
with hr.phase("one"):
    hr.progress(1, 2, "half")
    hr.progress(2, 2, "all")
hr.log("a warning", level="warning")
hr.metric("rows", 12, "count")
open("/output/r.txt", "w").write("r")
hr.artifact("/output/r.txt", "a file")
hr.result({"nested": {"list": [1, 2.5, "x", None, True]}})
try:
    hr.agent("analyst", "hello?")
except hr.AgentError as exc:
    hr.log("declined: " + str(exc))
print("plain text")
"""


def test_runtime_helper_and_host_models_agree(backend: DockerBackend, tmp_path: Path) -> None:
    """Contract test: the real helper, in a real container, parsed by the host's models."""
    result = backend.run(RunSpec(script=CONTRACT, output_dir=tmp_path))
    assert result.ok, result.stderr_tail
    kinds = [e.kind for e in result.events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "unknown" not in kinds
    for kind in ("phase", "progress", "log", "metric", "artifact", "result", "agent_request", "agent_reply", "output"):
        assert kind in kinds, kind
    by_kind = {e.kind: e for e in result.events}
    assert by_kind["result"].data == {"nested": {"list": [1, 2.5, "x", None, True]}}  # type: ignore[union-attr]
    assert by_kind["agent_reply"].ok is False  # type: ignore[union-attr]
    assert [e.seq for e in result.events] == list(range(1, len(result.events) + 1))
    assert result.artifacts[0].path == "r.txt" and result.artifacts[0].declared
    assert (tmp_path / "r.txt").read_text() == "r"


def test_runtime_helper_lines_parse_locally(tmp_path: Path) -> None:
    """The same contract without a container: the helper's exact bytes through parse_line."""
    import subprocess
    import sys

    script = tmp_path / "s.py"
    script.write_text("import harness_runtime as hr\nhr.progress(1, 3, 'x')\nhr.metric('m', 1.5)\n")
    out = subprocess.run(
        [sys.executable, str(script)], env={"PYTHONPATH": str(SANDBOX)}, capture_output=True, check=True
    ).stdout
    events = [parse_line(line) for line in out.splitlines()]
    assert [e.kind for e in events] == ["progress", "metric"]


def test_events_arrive_while_the_script_runs(backend: DockerBackend) -> None:
    script = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second', flush=True)"
    seen: list[tuple[float, str]] = []

    def on_event(event: Event) -> None:
        if event.kind == "output":
            seen.append((time.monotonic(), event.text))  # type: ignore[union-attr]

    started = time.monotonic()
    result = backend.run(RunSpec(script=script), on_event=on_event)
    finished = time.monotonic()
    assert result.ok
    assert [text for _, text in seen] == ["first", "second"]
    assert finished - seen[0][0] > 1.0, "the first line only arrived at the end"
    assert seen[0][0] - started < 1.0


def test_outputs_never_follow_links_out(backend: DockerBackend, tmp_path: Path) -> None:
    script = r"""
import os
os.makedirs("/output/deep/er", exist_ok=True)
open("/output/deep/er/ok.txt", "w").write("fine")
os.symlink("/etc/passwd", "/output/passwd")
os.symlink("..", "/output/up")
os.mkfifo("/output/fifo")
"""
    out = tmp_path / "out"
    result = backend.run(RunSpec(script=script, output_dir=out))
    assert result.ok, result.stderr_tail
    assert (out / "deep/er/ok.txt").read_text() == "fine"
    assert not (out / "passwd").exists() and not (out / "passwd").is_symlink()
    assert not (out / "up").exists()
    assert sorted(a.path for a in result.artifacts) == ["deep/er/ok.txt"]
    assert any("symlink" in w for w in result.output_warnings)


def test_missing_input_and_unwritable_output_are_clear_errors(backend: DockerBackend, tmp_path: Path) -> None:
    from harness.errors import InputError

    with pytest.raises(InputError, match="does not exist"):
        backend.run(RunSpec(script="pass", inputs=(tmp_path / "nope",)))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not writable"):
        backend.run(RunSpec(script="pass", output_dir=blocker / "sub"))


def test_pooled_runs_take_ready_containers_and_copy_inputs(pooled: DockerBackend, tmp_path: Path) -> None:
    assert pooled.wait_pool(60)
    data = tmp_path / "in"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.csv").write_text("x,y\n1,2\n")
    script = "import os\nprint(sorted(os.listdir('/input/in/sub')))\nprint(open('/input/in/sub/a.csv').read())"
    result = pooled.run(RunSpec(script=script, inputs=(data,)))
    assert result.ok and result.pooled
    assert "['a.csv']" in result.stdout_tail and "1,2" in result.stdout_tail
    assert result.policy.input_mode == "copied_read_only"
    # Different limits than the pool's: a cold run, same semantics.
    cold = pooled.run(RunSpec(script="print('hi')", limits=Limits.build(timeout_s=9)))
    assert cold.ok and not cold.pooled


def test_concurrent_runs_do_not_cross_talk(pooled: DockerBackend, tmp_path: Path) -> None:
    script = r"""
import os, sys, time
me = os.environ["WHO"]
for i in range(20):
    print(f"{me}:{i}", flush=True)
    time.sleep(0.01)
open("/output/who.txt", "w").write(me)
"""
    results: dict[str, Any] = {}
    seen: dict[str, list[str]] = {}

    def one(who: str) -> None:
        seen[who] = []
        results[who] = pooled.run(
            RunSpec(script=script, env={"WHO": who}, output_dir=tmp_path / who),
            on_event=lambda e: seen[who].append(e.text) if e.kind == "output" else None,  # type: ignore[union-attr]
        )

    threads = [threading.Thread(target=one, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for who, result in results.items():
        assert result.ok, result.stderr_tail
        assert seen[who] == [f"{who}:{i}" for i in range(20)]
        assert (tmp_path / who / "who.txt").read_text() == who
    assert len({r.run_id for r in results.values()}) == 4


def test_interrupt_removes_the_container_at_once(backend: DockerBackend, docker_client: Any, leftovers: Any) -> None:
    def on_event(event: Event) -> None:
        if event.kind == "output":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend.run(RunSpec(script="import time\nprint('go', flush=True)\ntime.sleep(60)"), on_event=on_event)
    assert leftovers() == []


def test_start_up_sweep_removes_leftovers_of_dead_processes(sandbox_image: str, docker_client: Any) -> None:
    dead = owner_token().rsplit(":", 2)[0] + ":999999:12345"
    alive = owner_token()
    ids = [
        docker_client.api.create_container(sandbox_image, labels={LABEL: "1", "harness.owner": owner})["Id"]
        for owner in (dead, alive)
    ]
    try:
        with DockerBackend(Settings.from_env(pool_size=0), client=docker_client) as b:
            assert ids[0][:12] in b.swept and ids[1][:12] not in b.swept
        remaining = {c["Id"] for c in docker_client.api.containers(all=True, filters={"label": LABEL})}
        assert ids[0] not in remaining and ids[1] in remaining
    finally:
        import docker.errors

        for cid in ids:
            try:
                docker_client.api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass


def test_agent_requests_reach_the_handler_and_answers_reach_the_script(backend: DockerBackend) -> None:
    from harness.execution.backend import AgentDeclined

    script = r"""
import harness_runtime as hr
print("answer:", hr.agent("writer", "say hi"), flush=True)
try:
    hr.agent("nobody", "?")
except hr.AgentError as exc:
    print("declined:", exc, flush=True)
"""

    def handler(request: Any) -> str:
        if request.role == "writer":
            return f"hi ({request.prompt})"
        raise AgentDeclined(f"unknown role {request.role!r}")

    result = backend.run(RunSpec(script=script), on_agent=handler)
    assert result.ok, result.stderr_tail
    assert "answer: hi (say hi)" in result.stdout_tail
    assert "declined: unknown role 'nobody'" in result.stdout_tail
    replies = [e for e in result.events if e.kind == "agent_reply"]
    assert [r.ok for r in replies] == [True, False]  # type: ignore[union-attr]


def test_json_result_round_trips(backend: DockerBackend) -> None:
    from harness.records import RunResult

    result = backend.run(RunSpec(script="print('x')"))
    again = RunResult.model_validate(json.loads(result.model_dump_json()))
    assert again == result


def test_a_pooled_container_killed_from_outside_is_not_used(pooled: DockerBackend, docker_client: Any) -> None:
    assert pooled.wait_pool(60)
    for info in docker_client.api.containers(filters={"label": "harness.run_id=pool"}):
        if (info.get("Labels") or {}).get("harness.owner") == pooled.owner:
            docker_client.api.kill(info["Id"])
    time.sleep(0.5)
    result = pooled.run(RunSpec(script="print('still fine')"))
    assert result.ok and "still fine" in result.stdout_tail
