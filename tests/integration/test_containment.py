"""Hostile and broken scripts are contained, end with the right status, and in time."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from harness.execution.docker import DockerBackend
from harness.execution.limits import Limits
from harness.records import RunSpec

SHORT = Limits.build(timeout_s=4)


def _run(backend: DockerBackend, script: str, **spec: object):
    started = time.monotonic()
    result = backend.run(RunSpec(script=script, **spec))  # type: ignore[arg-type]
    return result, time.monotonic() - started


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (1, 1), (3, 3), (42, 42), (255, 255)])
def test_exit_codes_are_faithful(backend: DockerBackend, code: int, expected: int) -> None:
    result, _ = _run(backend, f"import sys\nprint('claims success')\nsys.exit({code})")
    assert result.exit_code == expected
    assert result.status == ("succeeded" if expected == 0 else "failed")


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("raise ValueError('boom')", 1),
        ("import sys; sys.exit('a message')", 1),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 137),
        ("exit(5)", 5),
        ("def broken(:\n    pass", 1),
    ],
)
def test_script_errors_become_exit_codes(backend: DockerBackend, script: str, code: int) -> None:
    result, _ = _run(backend, script)
    assert result.exit_code == code
    assert result.status == "failed"


def test_forged_success_claims_do_not_change_the_status(backend: DockerBackend) -> None:
    script = r"""
import json, sys
forged = {"run_id": "x", "status": "succeeded", "exit_code": 0, "duration_s": 0}
print(json.dumps({"v": 1, "kind": "run_finished", **forged}))
print(json.dumps({"v": 1, "kind": "result", "data": {"status": "succeeded"}}))
print(json.dumps({"v": 1, "kind": "_harness_end", "nonce": "guess", "exit_code": 0}))
sys.stdout.buffer.write(b"\xff\xfe\x00garbage\n{not json\n")
sys.stdout.flush()
sys.exit(7)
"""
    result, _ = _run(backend, script)
    assert result.status == "failed" and result.exit_code == 7
    kinds = [e.kind for e in result.events]
    assert kinds.count("run_finished") == 1 and kinds[-1] == "run_finished"
    assert "unknown" in kinds


NONCE_HUNT = r"""
import json, os, re, sys

# Everything a script can read of its own memory and of the entrypoint's.
found, parent = set(), "readable"
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
with open("/proc/self/mem", "rb", buffering=0) as mem:
    for fields in regions:
        if "r" not in fields[1] or len(fields) > 5 and fields[5].startswith("["):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        try:
            mem.seek(start)
            found.update(re.findall(rb"(?<![0-9a-f])[0-9a-f]{24,64}(?![0-9a-f])", mem.read(end - start)))
        except (OSError, ValueError, OverflowError):
            pass
try:
    open(f"/proc/{os.getppid()}/mem", "rb").close()
except OSError as exc:
    parent = type(exc).__name__
print("candidates:", len(found), "parent memory:", parent, flush=True)
for candidate in found:
    marker = {"v": 1, "kind": "_harness_end", "nonce": candidate.decode(), "exit_code": 0}
    print()
    print(json.dumps(marker), flush=True)
print("still counted as output", flush=True)
with open("/output/real.txt", "w") as fh:
    fh.write("real\n")
sys.exit(5)
"""


def test_the_end_marker_cannot_be_forged_from_inside(backend: DockerBackend, pooled: DockerBackend) -> None:
    # The nonce is nowhere in the script's memory, and the entrypoint's memory is closed to it.
    for runner in (backend, pooled):
        result, _ = _run(runner, NONCE_HUNT)
        assert result.status == "failed" and result.exit_code == 5, result.stderr_tail
        assert "parent memory: PermissionError" in result.stdout_tail
        assert "still counted as output" in result.stdout_tail
        assert [a.path for a in result.artifacts] == ["real.txt"]
        assert not result.output_warnings


def test_cpu_spin_is_killed_at_the_timeout(backend: DockerBackend) -> None:
    result, took = _run(backend, "while True:\n    pass", limits=SHORT)
    assert result.status == "timed_out"
    assert took < SHORT.timeout_s + 5
    assert "timeout" in result.message


def test_sigterm_is_ignored_but_the_run_still_ends(backend: DockerBackend) -> None:
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)"
    result, took = _run(backend, script, limits=SHORT)
    assert result.status == "timed_out"
    assert took < SHORT.timeout_s + 5


def test_fork_bomb_is_held_by_the_pids_limit(backend: DockerBackend, sandbox_runtime: str) -> None:
    script = r"""
import os, time
children = 0
for _ in range(100000):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
    except OSError:
        break
print("forked", children, flush=True)
time.sleep(30)
"""
    # Under gVisor every process costs the sandbox more memory (measured: 64 sleeping forks of
    # Python pass 512m), so there the memory limit is raised to see the process limit itself.
    memory = "512m" if sandbox_runtime == "runc" else "2g"
    result, took = _run(backend, script, limits=Limits.build(timeout_s=6, pids=64, memory=memory))
    assert result.status == "timed_out", (result.status, result.message)
    assert took < 6 + 5
    forked = int(result.stdout_tail.split()[-1])
    assert forked < 64


def test_memory_hog_is_oom_killed(backend: DockerBackend) -> None:
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))"
    result, _took = _run(backend, script, limits=Limits.build(timeout_s=30, memory="128m"))
    assert result.status == "oom_killed", (result.status, result.message)
    assert result.exit_code == 137
    assert "128m" in result.message


def test_daemonised_child_does_not_keep_the_run_alive(backend: DockerBackend) -> None:
    script = r"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            print("daemon still here", flush=True)
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.3)
print("parent done", flush=True)
"""
    result, took = _run(backend, script, limits=Limits.build(timeout_s=20))
    assert result.status == "succeeded"
    assert took < 10


def test_zombies_are_reaped(backend: DockerBackend) -> None:
    # 120 orphaned grandchildren in all, at most ~40 alive at once: without an init reaping
    # the orphans, their zombies would use up the pids limit of 64 by the fourth round.
    script = r"""
import os, time
for _ in range(6):
    pids = []
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                os._exit(0)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    time.sleep(0.2)
print("ok", flush=True)
"""
    result, _ = _run(backend, script, limits=Limits.build(timeout_s=30, pids=64))
    assert result.status == "succeeded", result.stderr_tail


def test_stdout_flood_is_stopped_and_memory_stays_bounded(backend: DockerBackend) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    script = "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(100 * 1024):\n    sys.stdout.write(line)\n"
    result, took = _run(backend, script, limits=Limits.build(timeout_s=60, stdout_cap="8m"))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.status == "output_limit"
    assert result.stdout_bytes <= 8 * 1024 * 1024 + 256 * 1024
    assert (after - before) * 1024 < 64 * 1024 * 1024  # ru_maxrss is in KiB on Linux
    assert took < 30


def test_flood_without_newlines_is_stopped_too(backend: DockerBackend) -> None:
    script = "import sys\nchunk = 'y' * 65536\nwhile True:\n    sys.stdout.write(chunk)\n"
    result, _ = _run(backend, script, limits=Limits.build(timeout_s=60, stdout_cap="4m"))
    assert result.status == "output_limit"
    assert any(getattr(e, "truncated", False) for e in result.events)


@pytest.mark.parametrize("target", ["/tmp/fill", "/output/fill"])
def test_disk_fill_hits_the_tmpfs_cap(backend: DockerBackend, target: str, tmp_path: Path) -> None:
    script = f"""
import errno, sys
written = 0
try:
    with open({target!r}, "wb") as fh:
        while True:
            fh.write(b"z" * 1048576)
            fh.flush()
            written += 1
except OSError as exc:
    print("stopped", errno.errorcode.get(exc.errno), written, flush=True)
    sys.exit(3)
"""
    limits = Limits.build(timeout_s=30, tmp_size="16m", output_size="16m", memory="256m")
    result, _ = _run(backend, script, limits=limits, output_dir=tmp_path / "out")
    assert result.status == "failed" and result.exit_code == 3
    words = result.stdout_tail.split()
    assert words[-2] in ("ENOSPC", "EFBIG") and int(words[-1]) <= 16
    if target.startswith("/output"):
        collected = tmp_path / "out" / "fill"
        assert collected.stat().st_size <= 16 * 1024 * 1024


def test_a_timed_out_run_keeps_what_it_had_written(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The supervisor stops the script at the limit and still sends /output: kept, marked partial."""
    script = (
        "from pathlib import Path\n"
        "import time\n"
        "Path('/output/part.txt').write_text('half done\\n')\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    out = tmp_path / "out"
    result = backend.run(RunSpec(script=script, output_dir=out, limits=Limits(timeout_s=2)))
    assert result.status == "timed_out", result.message
    assert "stopped at the 2 s timeout" in result.message and "kept (partial)" in result.message
    assert "--timeout" in result.message
    assert (out / "part.txt").read_text() == "half done\n"
    assert result.outputs_partial
    assert result.duration_s < 2 + 3 + 2
