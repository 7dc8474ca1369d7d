"""Podman as the engine: the same hardened runs through ``podman system service``'s Docker-compatible socket.

The module installs Debian's podman (and catatonit, its init) when missing, starts a rootful
``podman system service`` on a throwaway socket with a throwaway store, copies the sandbox
image in from Docker, runs the isolation checks through it, and stops it. It needs root and
apt; elsewhere it is skipped (on CI, ``CI=true``, it fails instead).
"""

from __future__ import annotations

import json
import os
import shutil
import socket as socketlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.execution.docker import DockerBackend
from harness.execution.limits import Limits
from harness.records import RunSpec
from harness.settings import Settings
from tests.integration.test_isolation import PROBE


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _install() -> None:
    missing = [
        p
        for p, binary in (("podman", "podman"), ("catatonit", "/usr/libexec/podman/catatonit"))
        if not shutil.which(binary) and not Path(binary).exists()
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable(f"{', '.join(missing)} missing and this is not root with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", *missing]
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            _unavailable(f"installing {missing} failed: {done.stderr.strip()[-300:]}")


def _accepts(path: Path) -> bool:
    with socketlib.socket(socketlib.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory, sandbox_image: str) -> Iterator[str]:
    """A rootful ``podman system service`` on a throwaway socket and store, stopped after the module."""
    if os.geteuid() != 0:
        _unavailable("rootful Podman needs root (rootless cannot enforce limits on cgroup v1)")
    _install()
    base = tmp_path_factory.mktemp("podman")
    socket = base / "podman.sock"
    log = (base / "service.log").open("wb")
    service = subprocess.Popen(
        [
            "podman",
            "--root",
            str(base / "root"),
            "--runroot",
            str(base / "run"),
            "--storage-driver",
            "overlay",
            "system",
            "service",
            "--time=0",
            f"unix://{socket}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # The service signals nothing when it listens: try its socket until it accepts.
        deadline = time.monotonic() + 60
        while not _accepts(socket):
            if time.monotonic() > deadline or service.poll() is not None:
                pytest.fail(f"podman system service did not answer: {(base / 'service.log').read_text()[-500:]}")
            time.sleep(0.2)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
        # The overlay store leaves its mounts behind when the service stops.
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            mounts = [line.split()[4] for line in fh if line.split()[4].startswith(str(base))]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def podman(podman_socket: str) -> Iterator[DockerBackend]:
    """One backend on Podman (its image copied in from Docker), with a pool of one."""
    settings = Settings.from_env(environ={}, docker_host=podman_socket, pool_size=1, runtime="auto")
    with DockerBackend(settings) as backend:
        yield backend
        backend.wait_removed()
        leftover = backend.client.api.containers(all=True, filters={"label": "harness.managed"})
        assert len(leftover) <= 1  # the pool's waiting container, removed by close()
    import docker

    client = docker.DockerClient(base_url=podman_socket)
    assert client.api.containers(all=True) == [], "containers left in Podman"
    client.close()


@pytest.fixture
def _no_leftovers() -> None:
    """Podman's containers are checked by the ``podman`` fixture, not on Docker."""


def _probe(backend: DockerBackend, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from the host")
    result = backend.run(RunSpec(script=PROBE, inputs=(data,), output_dir=tmp_path / "out", env={"GREETING": "hi"}))
    assert result.status == "succeeded", (result.message, result.stderr_tail)
    return json.loads(result.stdout_tail.strip().splitlines()[-1]), result


def test_hardened_run_through_podman(podman: DockerBackend, tmp_path: Path) -> None:
    info, result = _probe(podman, tmp_path)
    assert info["uid"] == info["euid"] == 10001
    assert all(int(v, 16) == 0 for v in info["caps"].values()), info["caps"]
    assert info["no_new_privs"] == "1" and info["seccomp"] == "2"
    assert info["net"] == ["lo"] and info["routes"] == []
    assert info["egress"].startswith("OSError") or "101" in info["egress"]
    assert info["root_ro"] and info["root_write"] == "EROFS"
    assert info["work_write"] == info["tmp_write"] == info["output_write"] == "ok"
    assert info["input_read"] == "hello from the host" and info["input_write"] in ("EROFS", "EACCES")
    assert info["limits"] == {"nofile": "1024", "fsize": str(256 * 1024 * 1024)}
    assert info["docker_sock"] is False and info["hostname"] == "sandbox"
    assert set(info["env"]) <= {
        "GREETING", "PATH", "HOME", "LANG", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
        "PYTHONPATH", "PYTHONSAFEPATH", "HARNESS_REPLY_FD", "HARNESS_INPUT", "HARNESS_OUTPUT",
    }  # fmt: skip
    receipt = result.policy
    assert receipt.engine.startswith("podman ") and receipt.runtime == "runc"
    assert receipt.limits["inodes"] == "not enforced (the engine refuses nr_inodes)"
    assert "CHOWN" in receipt.cap_add  # used once by the supervisor for /work and /output, then dropped
    assert (tmp_path / "out" / "probe").exists()


def test_pooled_and_limits_through_podman(podman: DockerBackend) -> None:
    assert podman.wait_pool(120)
    pooled = podman.run(RunSpec(script="print('pooled')"))
    assert pooled.ok and pooled.pooled and pooled.stdout_tail == "pooled\n"
    hog = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))"
    oom = podman.run(RunSpec(script=hog, limits=Limits.build(timeout_s=30, memory="128m")))
    assert oom.status == "oom_killed", (oom.status, oom.message)
    slow = podman.run(RunSpec(script="while True:\n    pass", limits=Limits.build(timeout_s=2)))
    assert slow.status == "timed_out"
    fork = (
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(20)\n            os._exit(0)\n        n += 1\n"
        "except OSError:\n    print('forked', n, flush=True)\n"
    )
    held = podman.run(RunSpec(script=fork, limits=Limits.build(timeout_s=10, pids=32)))
    assert held.ok and int(held.stdout_tail.split()[-1]) < 32, held.stdout_tail
