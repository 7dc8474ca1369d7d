"""Integration fixtures: real engine, real image, real containers, nothing left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.execution.docker import DockerBackend
from harness.settings import Settings

# The tests that assert isolation, limits, status, outputs, events and the pool run under every
# runtime (runc, and gVisor's runsc); the rest run under runc only, to keep the suite's time.
BOTH_RUNTIMES = {
    "test_isolation.py",
    "test_containment.py",
    "test_run_floods.py",
    "test_runs.py",
    "test_end_report.py",
    "test_output_attacks.py",
    "test_event_lines.py",
    "test_supervisor.py",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sandbox_runtime" in metafunc.fixturenames and Path(str(metafunc.definition.fspath)).name in BOTH_RUNTIMES:
        metafunc.parametrize("sandbox_runtime", ["runc", "runsc"], indirect=True)


@pytest.fixture(autouse=True)
def sandbox_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _clean_env: None) -> str:
    """The OCI runtime this test's runs get (``HARNESS_RUNTIME``): runc, or each runtime for the isolation set.

    runsc is skipped only where the engine lacks it and this is not CI; on CI (``CI=true``),
    where the test command registers it, a missing runsc fails the test.
    """
    runtime = str(getattr(request, "param", "runc"))
    if runtime != "runc":
        from harness.execution.runtimes import registered

        if runtime not in registered(request.getfixturevalue("docker_client").info()):
            message = f"the engine has no {runtime} registered (harness sandbox setup-runtime {runtime})"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    monkeypatch.setenv("HARNESS_RUNTIME", runtime)
    return runtime


@pytest.fixture(autouse=True)
def _no_leftovers(no_leftovers: None) -> None:
    """Every integration test is checked for leftover containers."""


@pytest.fixture
def backend(sandbox_image: str, docker_client: Any) -> Iterator[DockerBackend]:
    """A cold-start backend (no pool), closed after the test."""
    with DockerBackend(Settings.from_env(pool_size=0), client=docker_client) as b:
        yield b  # type: ignore[misc]


@pytest.fixture
def pooled(sandbox_image: str, docker_client: Any) -> Iterator[DockerBackend]:
    """A backend with a warm pool of two containers, closed after the test."""
    with DockerBackend(Settings.from_env(pool_size=2), client=docker_client) as b:
        yield b  # type: ignore[misc]
