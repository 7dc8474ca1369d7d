"""Where the server listens and keeps its token. Standard library only: the thin client imports this.

The socket file's permissions are the authentication on the default transport, so it lives in the
user's runtime directory (``$XDG_RUNTIME_DIR``, private to the user) or, where that is unset, in a
0700 folder under the data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SOCKET_NAME", "TOKEN_NAME", "default_socket", "token_file"]

SOCKET_NAME = "harness.sock"
TOKEN_NAME = "server-token"  # noqa: S105  (a file name, not a secret)


def default_socket(settings_data_dir: Path) -> Path:
    """The default Unix socket: ``$XDG_RUNTIME_DIR/harness/harness.sock``, else ``<data dir>/run/harness.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "harness" / SOCKET_NAME
    return Path(settings_data_dir) / "run" / SOCKET_NAME


def token_file(settings_data_dir: Path) -> Path:
    """The bearer token a TCP listener requires (0600, made on the first ``serve --listen``)."""
    return Path(settings_data_dir) / TOKEN_NAME
