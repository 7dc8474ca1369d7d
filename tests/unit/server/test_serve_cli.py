"""``harness serve`` failing to start says why in one line and exits 2, leaving nothing behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def short() -> Iterator[Path]:
    """A folder with a short path (a Unix socket's path must fit in 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="hs-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _serve(*args: str, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HARNESS_DATA_DIR": str(data), **env}
    return subprocess.run(
        [sys.executable, "-m", "harness", "serve", *args], capture_output=True, text=True, env=environ, timeout=60
    )


def test_no_engine_is_one_line_and_exit_2(tmp_path: Path, short: Path) -> None:
    sock = short / "h.sock"
    done = _serve("--socket", str(sock), data=tmp_path, HARNESS_DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if line.startswith("Error: no Docker engine answered")
    ]
    assert not sock.exists()


def test_bad_listen_and_both_transports_are_refused(tmp_path: Path) -> None:
    done = _serve("--listen", "127.0.0.1:99999", data=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("Error: invalid --listen")
    both = _serve("--listen", "127.0.0.1:0", "--socket", str(tmp_path / "s.sock"), data=tmp_path)
    assert both.returncode == 2 and "exclusive" in both.stderr


def test_a_socket_someone_answers_on_is_not_taken_over(tmp_path: Path, short: Path) -> None:
    folder = short
    folder.chmod(0o700)
    path = folder / "h.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen(1)
    try:
        done = _serve("--socket", str(path), data=tmp_path)
        assert done.returncode == 2 and "already listens" in done.stderr
        assert path.exists()
    finally:
        live.close()


def test_a_socket_folder_open_to_others_is_refused(tmp_path: Path, short: Path) -> None:
    folder = short
    folder.chmod(0o755)
    done = _serve("--socket", str(folder / "h.sock"), data=tmp_path)
    assert done.returncode == 2 and "open to other users" in done.stderr
