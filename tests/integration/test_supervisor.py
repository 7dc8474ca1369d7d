"""The in-container supervisor (docs/supervisor.md), attacked from the script it runs.

Every run here goes through ``backend.run`` directly: no static gate, so the script is as
hostile as it likes and only the container and the supervisor stand in its way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.execution.docker import LABEL, DockerBackend
from harness.execution.limits import Limits
from harness.records import RunSpec
from harness.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


# -- item 10: nothing the script writes is importable -------------------------------------------
@pytest.mark.parametrize("folder", ["/work", "/tmp", "/output"])
def test_a_planted_winreg_module_is_never_imported(backend: DockerBackend, folder: str) -> None:
    # mimetypes does `import winreg` (missing on Linux) at import time: a winreg.py on the
    # import path would run here. The marker is what its code would leave behind.
    script = textwrap.dedent(
        f"""
        import os, sys
        target = os.path.join({folder!r}, "win" + "reg.py")
        with open(target, "w") as fh:
            fh.write("open('/output/pwned', 'w').write('ran')\\nimport os; os.system('true')\\n")
        import mimetypes, copy
        mimetypes.guess_type("a.txt")
        import json
        print(json.dumps({{"marker": os.path.exists("/output/pwned"), "path": sys.path}}))
        """
    )
    result = backend.run(RunSpec(script=script))
    assert result.ok, result.stderr_tail
    info = _last_json(result.stdout_tail)
    assert info["marker"] is False
    writable = ("/work", "/tmp", "/output", "/input", "/dev/shm")
    assert not [p for p in info["path"] if not p or p.startswith(writable)], info["path"]


def test_the_scripts_own_folder_is_not_on_the_path_of_pythons_it_starts(backend: DockerBackend) -> None:
    script = textwrap.dedent(
        """
        import subprocess, sys
        open("/work/helper.py", "w").write("import json, sys; print(json.dumps(sys.path))")
        open("/work/base64.py", "w").write("raise SystemExit('shadowed')")
        out = subprocess.run([sys.executable, "/work/helper.py"], capture_output=True, text=True, check=True)
        print(out.stdout.strip())
        """
    )
    result = backend.run(RunSpec(script=script))
    assert result.ok, result.stderr_tail
    assert not [p for p in _last_json(result.stdout_tail) if p.startswith("/work")]


# -- item 11: the supervisor and init are out of the script's reach -----------------------------
REACH = textwrap.dedent(
    r"""
    import ctypes, errno, json, os, signal
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH, PTRACE_DETACH = 16, 17

    def attempt(fn):
        try:
            fn()
            return "ok"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))

    def ptrace(pid):
        if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
            libc.ptrace(PTRACE_DETACH, pid, None, None)
            return "ok"
        return errno.errorcode[ctypes.get_errno()]

    def read(path):
        return attempt(lambda: open(path, "rb").read(64))

    def names(path):
        try:
            return sorted(v.split(b"=")[0].decode() for v in open(path, "rb").read().split(b"\0") if v)
        except OSError:
            return None

    def mem(pid):
        def go():
            with open(f"/proc/{pid}/mem", "rb") as fh:
                fh.seek(0x400000)
                fh.read(16)
        return attempt(go)

    supervisor = os.getppid()
    out = {"supervisor": supervisor, "uid": os.getuid()}
    for name, pid in (("supervisor", supervisor), ("init", 1)):
        out[name + "_uid"] = os.stat(f"/proc/{pid}").st_uid
        out[name + "_ptrace"] = ptrace(pid)
        out[name + "_environ"] = read(f"/proc/{pid}/environ")
        out[name + "_environ_names"] = names(f"/proc/{pid}/environ")
        out[name + "_mem"] = mem(pid)
        out[name + "_stop"] = attempt(lambda: os.kill(pid, signal.SIGSTOP))
        out[name + "_kill"] = attempt(lambda: os.kill(pid, signal.SIGKILL))
    out["setuid0"] = attempt(lambda: os.setuid(0))
    out["work"] = attempt(lambda: open("/work/x", "w").write("x"))
    out["output"] = attempt(lambda: open("/output/kept.txt", "w").write("still collected"))
    print(json.dumps(out))
    """
)


# What init and the supervisor start with: the image's ENV and the engine's HOSTNAME and HOME.
IMAGE_ENV = {"HOME", "HOSTNAME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("mode", ["cold", "pooled"])
def test_the_script_cannot_trace_signal_or_read_the_supervisor_or_init(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path, sandbox_runtime: str
) -> None:
    backend: DockerBackend = request.getfixturevalue("backend" if mode == "cold" else "pooled")
    if mode == "pooled":
        assert backend.wait_pool(60)
    result = backend.run(RunSpec(script=REACH, output_dir=tmp_path / "out"))
    assert result.ok, result.stderr_tail
    assert result.pooled is (mode == "pooled")
    info = _last_json(result.stdout_tail)
    assert info["uid"] == 10001
    assert info["supervisor"] != 1
    for name in ("supervisor", "init"):
        assert info[name + "_uid"] == 0, info
        assert info[name + "_ptrace"] == "EPERM", info
        if sandbox_runtime == "runc":
            assert info[name + "_environ"] == "EACCES", info
        else:
            # gVisor (20221219) lets any process read another's environ: it holds only the
            # image's fixed variables (no job, nonce or secret travels in it); memory stays closed.
            assert set(info[name + "_environ_names"]) <= IMAGE_ENV, info
        assert info[name + "_mem"] == "EACCES", info
        assert info[name + "_stop"] == "EPERM", info
        assert info[name + "_kill"] == "EPERM", info
    assert info["setuid0"] == "EPERM"
    # The tmpfs folders are still the script's, and its outputs still travel.
    assert info["work"] == "ok" and info["output"] == "ok"
    assert (tmp_path / "out" / "kept.txt").read_text() == "still collected"
    assert not result.output_warnings


def test_stdin_is_at_end_of_file_and_agent_replies_still_arrive(backend: DockerBackend) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        import harness_runtime as hr
        t0 = time.monotonic()
        try:
            input()
            print("got a line")
        except EOFError:
            print("eof after", round(time.monotonic() - t0, 3), flush=True)
        print("stdin read:", repr(sys.stdin.read()), flush=True)
        print("answer:", hr.agent("writer", "one"), flush=True)
        try:
            input()
        except EOFError:
            print("eof again", flush=True)
        print("answer:", hr.agent("writer", "two"), flush=True)
        """
    )
    result = backend.run(RunSpec(script=script, limits=Limits.build(timeout_s=20)), on_agent=lambda r: f"re {r.prompt}")
    assert result.ok, (result.message, result.stderr_tail)
    lines = result.stdout_tail.splitlines()
    assert lines[0].startswith("eof after") and float(lines[0].split()[-1]) < 1
    assert "stdin read: ''" in lines
    assert "answer: re one" in lines and "eof again" in lines and "answer: re two" in lines
    assert result.duration_s < 10


# -- item 11: inodes and shared memory -----------------------------------------------------------
FILL = textwrap.dedent(
    """
    import errno, json, os, sys
    counts = {}
    for folder in sys.argv[1:]:
        n = 0
        try:
            while n < 300_000:
                open(os.path.join(folder, f"f{n}"), "w").close()
                n += 1
            counts[folder] = [n, "none"]
        except OSError as exc:
            counts[folder] = [n, errno.errorcode.get(exc.errno, "?")]
    try:
        open("/dev/shm/x", "w").write("x")
        counts["/dev/shm"] = "ok"
    except OSError as exc:
        counts["/dev/shm"] = errno.errorcode.get(exc.errno, "?")
    print(json.dumps(counts))
    """
)


def test_every_tmpfs_runs_out_of_inodes_at_the_cap(backend: DockerBackend, sandbox_runtime: str) -> None:
    if sandbox_runtime == "runsc":
        pytest.skip("gVisor (20221219) accepts nr_inodes but does not enforce it: docs/supervisor.md")
    limits = Limits.build(inodes=2000, timeout_s=60)
    result = backend.run(RunSpec(script=FILL, argv=("/tmp", "/work", "/output"), limits=limits))
    assert result.ok, result.stderr_tail
    counts = _last_json(result.stdout_tail)
    for folder in ("/tmp", "/work", "/output"):
        made, error = counts[folder]
        assert error == "ENOSPC" and 1900 <= made < 2000, (folder, made, error)
    assert counts["/dev/shm"] == "ENOENT"
    assert result.policy is not None and result.policy.limits["inodes"] == 2000


# -- item 13b: the traceback is the script's ------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "last"),
    [
        ("def f():\n    raise ValueError('boom')\n\nf()\n", "ValueError: boom"),
        ("x = (\n", "SyntaxError"),
    ],
)
def test_tracebacks_show_only_the_scripts_frames(backend: DockerBackend, script: str, last: str) -> None:
    result = backend.run(RunSpec(script=script))
    assert result.exit_code == 1
    err = result.stderr_tail
    assert last in err.strip().splitlines()[-1]
    assert "/work/main.py" in err
    assert "entrypoint.py" not in err and "runpy" not in err and "<frozen" not in err


# -- item 12: an orphaned container ends itself -------------------------------------------------
ORPHAN_HOST = f"orphan-test-{os.getpid()}"

CHILD = """
import sys, time
import harness.execution.docker as d
# Another host's token: no sweep by a parallel harness removes these containers, so only the
# container itself can stop them.
d.owner_token = lambda pid=None: {token!r}
from harness.execution.limits import Limits
from harness.records import RunSpec
from harness.settings import Settings

backend = d.DockerBackend(Settings.from_env(pool_size={pool}), idle_timeout_s={idle})
if {pool}:
    assert backend.wait_pool(120)
    print("ready", flush=True)
    time.sleep(3600)
def on_event(event):
    if event.kind == "output":
        print("running", flush=True)
spin = "print('spinning', flush=True)\\nwhile True:\\n    pass\\n"
backend.run(RunSpec(script=spin, limits=Limits.build(timeout_s={timeout})), on_event=on_event)
"""


def _orphans(docker_client: Any, token: str) -> list[dict[str, Any]]:
    found = docker_client.api.containers(all=True, filters={"label": [LABEL, f"harness.owner={token}"]})
    return [docker_client.api.inspect_container(c["Id"]) for c in found]


def _kill_host_and_watch(docker_client: Any, code: str, token: str, ready: str, within: float) -> list[dict[str, Any]]:
    """Start ``code`` in a subprocess, SIGKILL it once it prints ``ready``, return its containers once stopped."""
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            if line.strip() != ready:
                proc.kill()
                raise AssertionError((line, proc.stderr.read()))
            assert any(c["State"]["Running"] for c in _orphans(docker_client, token))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed = time.monotonic()
            while time.monotonic() - killed < within:
                states = _orphans(docker_client, token)
                if states and not any(c["State"]["Running"] for c in states):
                    return states
                time.sleep(0.25)
            raise AssertionError(f"still running {within:g} s after the host died: {[c['Id'][:12] for c in states]}")
        finally:
            if proc.poll() is None:
                proc.kill()
            for info in _orphans(docker_client, token):
                docker_client.api.remove_container(info["Id"], force=True)


def test_a_run_whose_host_was_killed_stops_at_its_own_deadline(sandbox_image: str, docker_client: Any) -> None:
    token = f"{ORPHAN_HOST}:run:1"
    code = CHILD.format(token=token, pool=0, idle=600, timeout=3)
    # timeout 3 s + the supervisor's 2 s grace + a margin for a loaded machine
    stopped = _kill_host_and_watch(docker_client, code, token, "running", within=3 + 2 + 8)
    # The supervisor stopped the script at its limit and ended with its code (137: the SIGKILL it
    # sent), or, blocked writing to a host that is gone, at its own deadline (124); never the engine.
    assert len(stopped) == 1 and stopped[0]["State"]["ExitCode"] in (124, 137)
    assert all(c["HostConfig"]["RestartPolicy"]["Name"] in ("", "no") for c in stopped)


def test_a_waiting_pool_container_whose_host_was_killed_stops_when_idle(sandbox_image: str, docker_client: Any) -> None:
    token = f"{ORPHAN_HOST}:pool:1"
    code = CHILD.format(token=token, pool=2, idle=4, timeout=3)
    stopped = _kill_host_and_watch(docker_client, code, token, "ready", within=4 + 8)
    # The supervisor ended each: at its idle deadline (124), or earlier when the engine closed
    # its stdin with the dead host's connection (125, "stdin closed before the nonce arrived").
    assert len(stopped) == 2 and {c["State"]["ExitCode"] for c in stopped} <= {124, 125}


def test_the_pool_replaces_containers_that_ended_idle(sandbox_image: str, docker_client: Any) -> None:
    with DockerBackend(Settings.from_env(pool_size=1), client=docker_client, idle_timeout_s=6) as backend:
        assert backend.wait_pool(60)
        time.sleep(8)  # the waiting container's idle deadline passes; it exits
        first = backend.run(RunSpec(script="print('after idle')"))
        assert first.ok and not first.pooled and "after idle" in first.stdout_tail
        assert backend.wait_pool(60)
        second = backend.run(RunSpec(script="print('refilled')"))
        assert second.ok and second.pooled
        assert backend.wait_pool(60)  # refilled after the second run
        time.sleep(6 - 1.5 + 0.3)  # past idle minus the margin: this one is no longer handed out
        third = backend.run(RunSpec(script="print('not stale')"))
        assert third.ok and not third.pooled


@pytest.mark.parametrize("close_output", [False, True])
def test_private_outputs_are_still_collected(backend: DockerBackend, tmp_path: Path, close_output: bool) -> None:
    # The supervisor (uid 0, no CAP_DAC_*) cannot read 0600 files; a child under the script's
    # uid sends them instead.
    script = textwrap.dedent(
        f"""
        import os
        os.makedirs("/output/secret", mode=0o700)
        with open("/output/secret/a.txt", "w") as fh:
            fh.write("private")
        os.chmod("/output/secret/a.txt", 0o600)
        open("/output/public.txt", "w").write("public")
        if {close_output}:
            os.chmod("/output", 0o700)
        """
    )
    result = backend.run(RunSpec(script=script, output_dir=tmp_path / "out"))
    assert result.ok, result.stderr_tail
    assert (tmp_path / "out" / "secret" / "a.txt").read_text() == "private"
    assert (tmp_path / "out" / "public.txt").read_text() == "public"
    assert not result.output_warnings


def test_a_reply_that_arrives_after_the_script_ended_does_not_stop_the_outputs(
    backend: DockerBackend, tmp_path: Path
) -> None:
    # The script asks and leaves at once: the answer reaches the supervisor when nobody reads
    # the reply pipe any more, while it is sending /output.
    script = textwrap.dedent(
        """
        import os
        import harness_runtime as hr
        with open("/output/big.bin", "wb") as fh:
            fh.write(os.urandom(24 * 1024 * 1024))
        hr.emit("agent_request", id="a1", role="writer", prompt="x" * 100)
        os._exit(0)
        """
    )
    result = backend.run(
        RunSpec(script=script, output_dir=tmp_path / "out"), on_agent=lambda request: "late answer " * 20000
    )
    assert result.ok, (result.message, result.stderr_tail)
    assert (tmp_path / "out" / "big.bin").stat().st_size == 24 * 1024 * 1024
    assert not result.output_warnings
