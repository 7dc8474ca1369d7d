"""Real parts for the distributed tier: a redis-server and ``harness worker`` processes (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

JOB_KEY = "test-job-key-0123456789abcdef"
Remote = Callable[..., Any]  # makes a RemoteBackend on the test's broker
RUN_TIMEOUT_S = "5"  # the runs' time limit here, and the workers' longest run: redelivery within 5 + 10 s


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=True)
        found = shutil.which("redis-server")
    if not found:
        pytest.fail("redis-server is missing: apt-get install redis-server (Debian), then run the tests again")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, up: bool, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)  # a port has nothing to wait on
    raise TimeoutError(f"port {port} did not {'open' if up else 'close'} in {timeout}s")


@dataclass
class Redis:
    """A redis-server on a loopback port; ``restart`` stops it and starts an empty one on the same port."""

    binary: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.folder), "--daemonize", "no", "--protected-mode", "yes"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            _wait_port(self.port, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Worker:
    """One ``harness worker`` process."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Fleet:
    """The workers a test started, all stopped and reaped after it."""

    redis: Redis
    base: Path
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)

    def start(
        self,
        name: str,
        *,
        concurrency: int = 1,
        pool: int = 1,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Worker:
        folder = self.base / name
        folder.mkdir()
        env = {**self.env, "HARNESS_DATA_DIR": str(folder / "data"), "HARNESS_POOL_SIZE": str(pool), **(env or {})}
        log = folder / "worker.log"
        args = [sys.executable, "-m", "harness", "worker", "--broker", self.redis.url, "--hostname", name]
        args += ["--concurrency", str(concurrency), "--max-run-s", RUN_TIMEOUT_S, *extra]
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        self._wait_ready(worker)
        return worker

    def _wait_ready(self, worker: Worker, timeout: float = 60.0) -> None:
        # Celery logs "<name> ready." once it consumes; the backend and warm pool are up before that.
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if f"{worker.name} ready." in worker.text():
                return
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited: {worker.text()[-2000:]}")
            time.sleep(0.1)  # a log line from another process: nothing to wait on
        raise TimeoutError(f"worker {worker.name} not ready in {timeout}s: {worker.text()[-2000:]}")

    def stop(self, worker: Worker) -> None:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)  # warm shutdown: running jobs finish, containers removed
            try:
                worker.proc.wait(40)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    def stop_all(self) -> None:
        for worker in self.workers:
            self.stop(worker)
