"""The supervisor's and the runtime's pure parts, on the host (the container tests are in integration)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ConfigError
from harness.execution.limits import Limits

SANDBOX = Path(__file__).resolve().parents[3] / "sandbox"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def entrypoint() -> ModuleType:
    return _load("harness_sandbox_entrypoint", SANDBOX / "entrypoint.py")


@pytest.fixture
def runtime() -> ModuleType:
    return _load("harness_sandbox_runtime", SANDBOX / "harness_runtime" / "__init__.py")


def test_the_import_path_keeps_nothing_a_script_can_write(entrypoint: ModuleType, tmp_path: Path) -> None:
    writable = tmp_path / "mine"
    writable.mkdir()
    path = ["", "/work", "/tmp", "/output", "/input/x", "/dev/shm", str(writable), *sys.path[1:3]]
    kept = entrypoint._import_path(path)
    assert kept[0] == entrypoint.RUNTIME_DIR
    assert not {"", "/work", "/tmp", "/output", "/input/x", "/dev/shm", str(writable)} & set(kept)
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in kept[1:])


def test_the_traceback_starts_at_the_scripts_first_frame(
    entrypoint: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "main.py"
    script.write_text("def f():\n    raise ValueError('boom')\n\nf()\n")
    try:
        import runpy

        runpy.run_path(str(script), run_name="__main__")
    except ValueError as exc:
        entrypoint._print_script_traceback(exc, str(script))
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.count('File "') == 2 and str(script) in err and "runpy" not in err
    assert err.strip().endswith("ValueError: boom")


def test_idle_timeout_comes_from_the_command_line(entrypoint: ModuleType) -> None:
    assert entrypoint._idle_timeout([]) == entrypoint.IDLE_TIMEOUT_S
    assert entrypoint._idle_timeout(["--idle-timeout", "4"]) == 4
    assert entrypoint._idle_timeout(["--idle-timeout", "0.2"]) == 1


def test_replies_are_read_from_the_fd_the_supervisor_names(
    runtime: ModuleType, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    read, write = os.pipe()
    monkeypatch.setenv("HARNESS_REPLY_FD", str(read))
    # stdin must not be consulted: it is at end of file in the sandbox.
    monkeypatch.setattr(sys, "stdin", None)
    answer = json.dumps({"id": "a1", "ok": True, "text": "hello"}).encode() + b"\n"
    threading.Thread(target=lambda: (os.write(write, b"noise\n" + answer), os.close(write))).start()
    try:
        assert runtime.agent("writer", "hi") == "hello"
        assert '"kind":"agent_request"' in capfd.readouterr().out
        with pytest.raises(runtime.AgentError, match="closed the channel"):
            runtime.agent("writer", "again")
    finally:
        os.close(read)


def test_inodes_is_a_limit_with_a_floor_and_a_receipt() -> None:
    assert Limits().inodes == 32768 and Limits().receipt()["inodes"] == 32768
    assert Limits.build(inodes=2000).inodes == 2000
    with pytest.raises(ConfigError, match="inodes"):
        Limits.build(inodes=10)
    assert "shm_size" not in Limits.model_fields  # there is no /dev/shm to size


@pytest.mark.parametrize(
    ("files", "limit", "kills"),
    [
        ({"memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n", "memory.max": "134217728\n"}, 134217728, 2),
        ({"memory.events": "oom_kill 1\n", "memory.max": "99999744\n"}, 100_000_000, 1),  # rounded to pages
        ({"memory.events": "oom_kill 5\n", "memory.max": "max\n"}, 134217728, None),  # not the container's cgroup
        ({"memory.events": "oom_kill 5\n", "memory.max": "268435456\n"}, 134217728, None),  # another limit
        ({"memory.max": "134217728\n"}, 134217728, None),  # no count to read
        ({}, 134217728, None),
        ({"memory.events": "oom_kill 5\n", "memory.max": "134217728\n"}, 0, None),  # no limit in the job header
    ],
)
def test_the_oom_count_is_read_only_from_the_containers_own_cgroup(
    entrypoint: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    limit: int,
    kills: int | None,
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(entrypoint, "CGROUP_MEMORY", ((str(tmp_path / "memory.events"), str(tmp_path / "memory.max")),))
    assert entrypoint._oom_kills(limit) == kills


def test_the_oom_count_is_read_from_a_v1_cgroup_too(
    entrypoint: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (tmp_path / "memory.limit_in_bytes").write_text("536870912\n")
    v1 = (str(tmp_path / "memory.oom_control"), str(tmp_path / "memory.limit_in_bytes"))
    monkeypatch.setattr(entrypoint, "CGROUP_MEMORY", (("/nonexistent/memory.events", "/nonexistent/memory.max"), v1))
    assert entrypoint._oom_kills(512 * 1024 * 1024) == 3
