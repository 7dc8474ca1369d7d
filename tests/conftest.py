"""Test-wide fixtures: a clean environment, and the real engine for integration tests."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK = ("localhost", "::1", "ip6-localhost")


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else str(host)
    if host is not None and name not in _LOOPBACK and not name.startswith("127."):
        raise ConnectionRefusedError(f"tests never leave this machine: refused a connection to {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    # Any name lookup of a real host (api.anthropic.com, a registry, ...) fails the test that made it.
    socket.getaddrinfo = _loopback_only


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never read the developer's HARNESS_* settings, and never write to their data dir.
    for name in list(os.environ):
        if name.startswith(("HARNESS_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    # Nor a harness server the developer runs: the default socket is then under the test's data dir.
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path_factory.mktemp("harness-data")))
    monkeypatch.setenv("HARNESS_GENERATED_DIR", str(tmp_path_factory.mktemp("generated")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A client for the real engine; the integration tier fails loudly without one."""
    from harness.execution.docker import connect
    from harness.settings import Settings

    client = connect(Settings.from_env(environ={}))
    yield client
    client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: Any) -> str:
    """The sandbox image for this tree, built once per session if missing."""
    from harness.execution.image import ImageBuilder
    from harness.settings import Settings

    return ImageBuilder(docker_client, Settings.from_env(environ={})).ensure()


@pytest.fixture
def leftovers(docker_client: Any) -> Any:
    """A function listing leftover harness containers.

    Leftovers are containers made by this process, or by a process that is gone (a CLI run in a
    subprocess); a live harness elsewhere on the machine keeps its own containers. Only
    containers created since the fixture was set up count: another test session sharing the
    engine (a helper's worktree, a clone's CI run) is not this test's leak.
    """
    from harness.execution.docker import LABEL, owner_alive, owner_token

    # The engine stamps Created in whole seconds; a second of slack keeps this test's own first
    # container in view.
    since = int(time.time()) - 1

    def find() -> list[str]:
        ours = owner_token()
        return [
            c["Id"][:12]
            for c in docker_client.api.containers(all=True, filters={"label": LABEL})
            if (owner := (c.get("Labels") or {}).get("harness.owner", "")) == ours
            or (not owner_alive(owner) and int(c.get("Created", since)) >= since)
        ]

    return find


@pytest.fixture
def no_leftovers(leftovers: Any) -> Iterator[None]:
    """Fails the test if it leaves any harness container behind."""
    yield
    left = leftovers()
    assert not left, f"containers left behind: {left}"


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the ``harness`` command in-process: its exit code, stdout and stderr."""
    from harness.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(params=["local", "server"])
def served(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Runs a CLI test twice: in-process, and with a server running (``HARNESS_URL``) for the thin client.

    The server is ``harness serve`` when this tree has it, else a server that speaks the HTTP API
    contract through the same library calls (tests/served.py); ``exec``, ``check`` and ``analyze``
    then go through it, every other command stays in-process.
    """
    if request.param == "local":
        yield "local"
        return
    from tests.served import running_server

    # Not in tmp_path: tests use it as an empty output folder.
    with running_server(tmp_path_factory.mktemp("server")) as proxy:
        monkeypatch.setenv("HARNESS_URL", f"unix://{proxy.path}")
        yield "server"
