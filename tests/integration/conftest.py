"""Integration fixtures: real engine, real image, real containers, nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.execution.docker import DockerBackend
from harness.settings import Settings


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
