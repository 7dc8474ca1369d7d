"""The supervisor's end report decides a run's status when it may, and the result is the engine's.

Every case runs through two backends on the same engine: ``end_report="engine"`` (the status
always waits for the container's exit, as before) and ``end_report="trusted"`` (the status
comes from the supervisor's end report when it is complete; the container's exit and removal
happen in the background). Status, exit code, message and stderr must be the same; the timings
say which path decided (``wait_s`` only when the engine's exit code was waited for).
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.events import Event
from harness.execution.docker import LABEL, DockerBackend
from harness.execution.limits import Limits
from harness.records import RunResult, RunSpec
from harness.settings import Settings


@pytest.fixture
def both(sandbox_image: str, docker_client: Any) -> Iterator[dict[str, DockerBackend]]:
    """A cold backend for each path, closed after the test."""
    with (
        DockerBackend(Settings.from_env(pool_size=0), client=docker_client, end_report="engine") as engine,
        DockerBackend(Settings.from_env(pool_size=0), client=docker_client, end_report="trusted") as trusted,
    ):
        yield {"engine": engine, "trusted": trusted}


def _engine_decided(result: RunResult) -> bool:
    return "wait_s" in result.timings


OOM_CHILD = textwrap.dedent(
    """
    import subprocess, sys
    hog = "blocks = []\\nwhile True:\\n    blocks.append(bytearray(16 * 1024 * 1024))"
    child = subprocess.run([sys.executable, "-c", hog])
    print("child ended with", child.returncode, flush=True)
    sys.exit(3)
    """
)
FORK_BOMB = textwrap.dedent(
    """
    import os, time
    for _ in range(100000):
        try:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
        except OSError:
            break
    time.sleep(30)
    """
)
STDERR_THEN_EXIT = textwrap.dedent(
    """
    import sys
    for i in range(3000):
        print(f"stderr line {i}", file=sys.stderr)
    sys.stderr.write("the last words, without a newline")
    sys.exit(2)
    """
)
OUTPUTS = textwrap.dedent(
    """
    import os
    open("/output/public.txt", "w").write("public")
    os.makedirs("/output/private", mode=0o700)
    open("/output/private/a.txt", "w").write("private")
    os.chmod("/output/private/a.txt", 0o600)
    print("done")
    """
)

DAEMON = textwrap.dedent(
    """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                print("daemon still here", flush=True)
                time.sleep(0.01)
        os._exit(0)
    time.sleep(0.2)
    print("parent done", flush=True)
    """
)

# (script, limits, status, exit code, decided by the engine on the trusted path)
CASES: dict[str, tuple[str, Limits | None, str, int | None, bool]] = {
    "ok": ("print('hello')", None, "succeeded", 0, False),
    "nonzero": ("import sys\nprint('claims success')\nsys.exit(3)", None, "failed", 3, False),
    "exception": ("def f():\n    raise ValueError('boom')\n\nf()\n", None, "failed", 1, False),
    "stderr then exit": (STDERR_THEN_EXIT, None, "failed", 2, False),
    "outputs, some private": (OUTPUTS, None, "succeeded", 0, False),
    "daemon left running": (DAEMON, Limits.build(timeout_s=20), "succeeded", 0, False),
    # The kernel keeps the limit rounded down to whole pages; the OOM count is still read.
    "odd memory limit, exit 3": ("raise SystemExit(3)", Limits.build(memory=100_000_000), "failed", 3, False),
    "sigkill itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", None, "failed", 137, True),
    # The supervisor stops the script at the limit itself (and still sends /output): the report decides.
    "timeout": ("while True:\n    pass", Limits.build(timeout_s=3), "timed_out", 137, False),
    "oom": (
        "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))",
        Limits.build(timeout_s=30, memory="128m"),
        "oom_killed",
        137,
        True,
    ),
    "oom of a child, then exit 3": (OOM_CHILD, Limits.build(timeout_s=30, memory="128m"), "oom_killed", 3, False),
    "fork bomb": (FORK_BOMB, Limits.build(timeout_s=5, pids=64), "timed_out", 137, False),
    # At the cap the host asks the supervisor to stop the script (and still send /output): the report decides.
    "stdout flood": (
        "import sys\nline = 'x' * 1023 + '\\n'\nwhile True:\n    sys.stdout.write(line)\n",
        Limits.build(timeout_s=60, stdout_cap="4m"),
        "output_limit",
        137,
        False,
    ),
}


# Under gVisor the supervisor reads no OOM count (no cgroup files inside), so every failure is
# left to the engine; an OOM kill ends the whole sandbox, not one child; and every process costs
# more memory, so the fork bomb gets room to meet its process limit rather than the memory limit.
RUNSC_CASES: dict[str, tuple[str, Limits | None, str, int | None, bool]] = {
    "oom of a child, then exit 3": (OOM_CHILD, Limits.build(timeout_s=30, memory="128m"), "oom_killed", 137, True),
    "fork bomb": (FORK_BOMB, Limits.build(timeout_s=5, pids=64, memory="2g"), "timed_out", 137, True),
}


def _case(case: str, runtime: str) -> tuple[str, Limits | None, str, int | None, bool]:
    if runtime == "runc":
        return CASES[case]
    script, limits, status, code, engine_decides = RUNSC_CASES.get(case, CASES[case])
    return script, limits, status, code, engine_decides or status != "succeeded"


@pytest.mark.parametrize("case", list(CASES))
def test_status_parity_between_the_engine_and_the_end_report(
    both: dict[str, DockerBackend], case: str, tmp_path: Path, sandbox_runtime: str
) -> None:
    script, limits, status, code, engine_decides = _case(case, sandbox_runtime)
    results = {}
    for path, backend in both.items():
        spec = RunSpec(script=script, limits=limits, output_dir=tmp_path / path)
        results[path] = backend.run(spec)
    engine, trusted = results["engine"], results["trusted"]
    for result in (engine, trusted):
        assert (result.status, result.message) == (status, engine.message), (case, result.message)
        if code is not None:  # killed runs: the engine's code for a killed container
            assert result.exit_code == code, (case, result.exit_code)
    assert trusted.exit_code == engine.exit_code
    assert trusted.stderr_tail == engine.stderr_tail
    assert [a.path for a in trusted.artifacts] == [a.path for a in engine.artifacts]
    assert _engine_decided(engine)
    assert _engine_decided(trusted) is engine_decides, trusted.timings


def test_stderr_is_complete_when_the_report_decides(both: dict[str, DockerBackend], sandbox_runtime: str) -> None:
    result = both["trusted"].run(RunSpec(script=STDERR_THEN_EXIT))
    assert _engine_decided(result) is (sandbox_runtime == "runsc")  # a failure, with no OOM count under gVisor
    assert result.stderr_tail.endswith("stderr line 2999\nthe last words, without a newline\n")
    assert result.message == "exited with code 2: the last words, without a newline"
    lines = [e.text for e in result.events if e.kind == "output" and e.stream == "stderr"]  # type: ignore[union-attr]
    assert len(lines) == 3001 and "_harness" not in "".join(lines)


def test_outputs_are_complete_when_the_report_decides(both: dict[str, DockerBackend], tmp_path: Path) -> None:
    result = both["trusted"].run(RunSpec(script=OUTPUTS, output_dir=tmp_path / "out"))
    assert result.ok and not _engine_decided(result)
    assert (tmp_path / "out" / "public.txt").read_text() == "public"
    assert (tmp_path / "out" / "private" / "a.txt").read_text() == "private"
    assert not result.output_warnings


FORGE = textwrap.dedent(
    r"""
    import errno, json, os, sys
    tried = {}

    def attempt(name, fn):
        try:
            fn()
            tried[name] = "ok"
        except OSError as exc:
            tried[name] = errno.errorcode.get(exc.errno, str(exc.errno))

    forged = {"v": 1, "kind": "_harness_end", "exit_code": 0, "settled": True, "oom_kills": 0}
    lines = []
    for nonce in ("0" * 32, "f" * 32, "guess"):
        lines += [json.dumps({**forged, "nonce": nonce, "exit_code": EXIT_FORGED}),
                  json.dumps({"v": 1, "kind": "_harness_sent", "nonce": nonce})]
    blob = ("\n" + "\n".join(lines) + "\n").encode()
    # fd 3 is the read end of the reply pipe, which belongs to the supervisor's uid; so are
    # the supervisor's own stdout and stderr.
    attempt("fd3", lambda: os.write(3, blob))
    attempt("fd3 via proc", lambda: os.write(os.open("/proc/self/fd/3", os.O_WRONLY), blob))
    attempt("supervisor stdout", lambda: os.open(f"/proc/{os.getppid()}/fd/1", os.O_WRONLY))
    attempt("supervisor stderr", lambda: os.open(f"/proc/{os.getppid()}/fd/2", os.O_WRONLY))
    # The supervisor's lines, imitated on both streams and in an output file.
    sys.stdout.buffer.write(blob)
    sys.stdout.flush()
    for nonce in ("0" * 32, "guess"):
        err = {"v": 1, "kind": "_harness_end", "nonce": nonce, "stream": "stderr"}
        print("\n" + json.dumps(err), file=sys.stderr, flush=True)
    open("/output/forged.txt", "wb").write(blob)
    print(json.dumps(tried), flush=True)
    sys.exit(EXIT_REAL)
    """
)


@pytest.mark.parametrize(("real", "forged"), [(7, 0), (0, 3)])
def test_a_script_cannot_forge_the_end_report(
    both: dict[str, DockerBackend], tmp_path: Path, real: int, forged: int, sandbox_runtime: str
) -> None:
    script = FORGE.replace("EXIT_FORGED", str(forged)).replace("EXIT_REAL", str(real))
    for path, backend in both.items():
        result = backend.run(RunSpec(script=script, output_dir=tmp_path / path))
        assert result.exit_code == real, (path, result.message, result.stderr_tail)
        assert result.status == ("succeeded" if real == 0 else "failed")
        tried = json.loads(result.stdout_tail.strip().splitlines()[-1])
        assert (tried["fd3"], tried["fd3 via proc"]) == ("EBADF", "EACCES")
        assert tried["supervisor stdout"] == tried["supervisor stderr"] == "EACCES"
        # The real report still arrived whole and decided (trusted), and the forged file is just a file.
        assert _engine_decided(result) is (path == "engine" or (real != 0 and sandbox_runtime == "runsc"))
        assert [a.path for a in result.artifacts] == ["forged.txt"]
        assert b"_harness_sent" in (tmp_path / path / "forged.txt").read_bytes()
        assert "_harness_end" in result.stdout_tail  # the imitations are plain output


def _kill_supervisor(docker_client: Any, run_id: str) -> None:
    """SIGKILL the supervisor of the run's container, from a root process exec'd into it."""
    (info,) = docker_client.api.containers(filters={"label": [LABEL, f"harness.run_id={run_id}"]})
    finder = (
        "import os, signal\n"
        "for p in filter(str.isdigit, os.listdir('/proc')):\n"
        "    status = open(f'/proc/{p}/status').read()\n"
        "    if int(p) != os.getpid() and '\\nPPid:\\t1\\n' in status and '\\nUid:\\t0\\t' in status:\n"
        "        os.kill(int(p), signal.SIGKILL)\n"
    )
    exec_id = docker_client.api.exec_create(info["Id"], ["python3", "-c", finder], user="0:0")
    docker_client.api.exec_start(exec_id)


def test_a_killed_supervisor_leaves_the_status_to_the_engine(
    both: dict[str, DockerBackend], docker_client: Any
) -> None:
    script = "import time\nprint('running', flush=True)\ntime.sleep(30)\n"
    results = {}
    for path, backend in both.items():
        spec = RunSpec(script=script, limits=Limits.build(timeout_s=20))

        def on_event(event: Event, run_id: str = spec.run_id) -> None:
            if event.kind == "output" and event.text == "running":  # type: ignore[union-attr]
                threading.Thread(target=_kill_supervisor, args=(docker_client, run_id)).start()

        results[path] = backend.run(spec, on_event=on_event)
    for result in results.values():
        assert (result.status, result.exit_code) == ("failed", 137), result.message
        assert result.duration_s < 15
        assert _engine_decided(result)
        assert "the container ended without sending its outputs" in result.output_warnings


def test_pooled_runs_decided_by_the_report_refill_and_leave_nothing(
    sandbox_image: str, docker_client: Any, leftovers: Any
) -> None:
    with DockerBackend(Settings.from_env(pool_size=1), client=docker_client) as backend:
        assert backend.end_report == "trusted"
        for i in range(4):
            assert backend.wait_pool(60)
            result = backend.run(RunSpec(script=f"print({i})"))
            assert result.ok and result.pooled and not _engine_decided(result)
            assert result.stdout_tail == f"{i}\n"
        backend.wait_removed()
        # Only the refilled, waiting container is left while the backend is open.
        assert len(leftovers()) == 1
    assert not leftovers()


def test_closing_right_after_a_run_still_removes_its_container(
    sandbox_image: str, docker_client: Any, leftovers: Any
) -> None:
    # The container may still be exiting when run() returns; close() must not leave it behind.
    backend = DockerBackend(Settings.from_env(pool_size=0), client=docker_client)
    try:
        result = backend.run(RunSpec(script="print('bye')"))
        assert result.ok and not _engine_decided(result)
    finally:
        backend.close()
    assert not leftovers()
