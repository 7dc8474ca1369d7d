"""Where the server listens and keeps its token; stdlib only, because the thin client imports it too.

The socket lives in ``$XDG_RUNTIME_DIR/harness/`` (a per-user tmpfs), else in
``<data dir>/run/``; its folder is 0700 and the socket 0600: file permissions are the
authentication on a Unix socket. TCP needs the bearer token kept 0600 in the data dir.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "SOCKET_NAME",
    "TOKEN_NAME",
    "UnsafePath",
    "default_socket",
    "ensure_private_dir",
    "read_token",
    "token_for_serving",
    "token_path",
]

SOCKET_NAME = "harness.sock"
TOKEN_NAME = "server-token"  # noqa: S105 - the file name, not a token


class UnsafePath(Exception):
    """Raised when a folder or file that must be private is a link, someone else's, or open to others."""


def default_socket(settings_data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The socket path: ``$XDG_RUNTIME_DIR/harness/harness.sock``, else ``<data dir>/run/harness.sock``."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR", "")
    # A relative XDG_RUNTIME_DIR is invalid per the spec; it would also make the path depend on the cwd.
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "harness" / SOCKET_NAME
    return Path(settings_data_dir) / "run" / SOCKET_NAME


def token_path(settings_data_dir: Path) -> Path:
    """Where the bearer token for TCP lives: ``<data dir>/server-token`` (0600)."""
    return Path(settings_data_dir) / TOKEN_NAME


def ensure_private_dir(folder: Path, *, tighten: bool = True) -> Path:
    """Make ``folder`` (0700) or check it: a real folder, ours, closed to others; UnsafePath otherwise.

    ``tighten`` chmods an existing folder of ours to 0700; without it one open to others is refused
    (a folder the user named may be shared on purpose, and is not ours to change).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{folder} is not a plain folder (a link or a file)")
    if st.st_uid != os.getuid():
        raise UnsafePath(f"{folder} belongs to uid {st.st_uid}, not to this user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        if not tighten:
            raise UnsafePath(f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):o}); use a 0700 folder")
        # Ours and a real folder: tightening it is safe (and needed when it was made by hand).
        os.chmod(folder, 0o700)
    return folder


def _check_private_file(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{path} is not a plain file")
    if st.st_uid != os.getuid():
        raise UnsafePath(f"{path} belongs to uid {st.st_uid}, not to this user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise UnsafePath(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it")


def read_token(settings_data_dir: Path) -> str | None:
    """The bearer token if one was made (None otherwise); UnsafePath when its file is not private."""
    path = token_path(settings_data_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafePath(f"{path} cannot be read safely: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii") as fh:
        _check_private_file(path, os.fstat(fh.fileno()))
        token = fh.read().strip()
    if len(token) < 32:
        raise UnsafePath(f"{path} holds no usable token; remove it and start the server again")
    return token


def token_for_serving(settings_data_dir: Path) -> str:
    """The bearer token, made on first use (0600, created exclusively so no one can plant one first)."""
    existing = read_token(settings_data_dir)
    if existing is not None:
        return existing
    path = token_path(settings_data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    import secrets  # only the server makes a token; the thin client's start-up need not import it

    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return token
