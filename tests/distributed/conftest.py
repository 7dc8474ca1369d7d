"""Distributed-tier fixtures: a real redis-server and real ``harness worker`` processes.

redis-server comes from Debian (installed here when missing and we are root with apt), runs on a
free loopback port with a throwaway data dir and no persistence, and is stopped after the test.
Workers are ``harness worker`` subprocesses with their own data dirs; each is stopped with
SIGTERM (a warm shutdown that removes its containers) and reaped, or SIGKILLed if it hangs.
Every test here also runs the integration tier's leftover-container check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fleetkit import JOB_KEY, RUN_TIMEOUT_S, Fleet, Redis, Remote, free_port, redis_binary


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/distributed/" in str(item.fspath):
            item.add_marker(pytest.mark.distributed)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _no_leftovers(no_leftovers: None) -> None:
    """Every distributed test is checked for leftover containers (after its workers stopped)."""


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    """A fresh, empty redis-server for one test."""
    server = Redis(redis_binary(), free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def job_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared job key, set for this process (the submitter)."""
    monkeypatch.setenv("HARNESS_JOB_KEY", JOB_KEY)
    monkeypatch.setenv("HARNESS_TIMEOUT_S", RUN_TIMEOUT_S)
    monkeypatch.setenv("HARNESS_WORKER_MAX_RUN_S", RUN_TIMEOUT_S)
    return JOB_KEY


@pytest.fixture
def fleet(
    redis_server: Redis, job_key: str, sandbox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """Start workers with ``fleet.start(name)``; every one is stopped and reaped after the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "ANTHROPIC_"))}
    env.update(HARNESS_JOB_KEY=job_key, HARNESS_TIMEOUT_S=RUN_TIMEOUT_S, HARNESS_IMAGE=sandbox_image)
    fleet = Fleet(redis_server, tmp_path_factory.mktemp("workers"), env)
    try:
        yield fleet
    finally:
        fleet.stop_all()


@pytest.fixture
def remote(redis_server: Redis, job_key: str) -> Iterator[Remote]:
    """Make RemoteBackends on the test's broker (closed after the test)."""
    from harness.distributed.submit import RemoteBackend
    from harness.settings import Settings

    made: list[RemoteBackend] = []

    def make(**kw: Any) -> RemoteBackend:
        backend = RemoteBackend(Settings.from_env(), redis_server.url, **kw)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
