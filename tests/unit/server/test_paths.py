"""Where the server listens and its token: private folders, 0600 files, no links followed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.server.paths import (
    UnsafePath,
    default_socket,
    ensure_private_dir,
    read_token,
    token_for_serving,
)


def test_default_socket_follows_xdg_runtime_dir(tmp_path: Path) -> None:
    xdg = default_socket(tmp_path, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert xdg == Path("/run/user/1000/harness/harness.sock")
    assert default_socket(tmp_path, {}) == tmp_path / "run" / "harness.sock"
    assert default_socket(tmp_path, {"XDG_RUNTIME_DIR": "relative"}) == tmp_path / "run" / "harness.sock"


def test_paths_imports_nothing_heavy() -> None:
    code = (
        "import sys, harness.server.paths; "
        "print(','.join(sorted(m for m in sys.modules if m.startswith(('fastapi', 'docker', 'starlette')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    # harness/__init__ may still load more until the client helper makes it lazy; this module adds none itself.
    assert "fastapi" not in out and "starlette" not in out and "docker" not in out


def test_private_dir_is_made_tightened_or_refused(tmp_path: Path) -> None:
    made = ensure_private_dir(tmp_path / "run")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    os.chmod(made, 0o755)
    ensure_private_dir(made)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    os.chmod(made, 0o755)
    with pytest.raises(UnsafePath, match="open to other users"):
        ensure_private_dir(made, tighten=False)
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(UnsafePath, match="not a plain folder"):
        ensure_private_dir(tmp_path / "link")


def test_token_is_made_once_private_and_refused_when_readable(tmp_path: Path) -> None:
    assert read_token(tmp_path) is None
    token = token_for_serving(tmp_path)
    path = tmp_path / "server-token"
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token_for_serving(tmp_path) == token == read_token(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(UnsafePath, match="readable by others"):
        read_token(tmp_path)
    path.unlink()
    (tmp_path / "elsewhere").write_text("x" * 40)
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePath):
        read_token(tmp_path)
