"""Where a ``harness serve`` listens, and whether one answers there: the thin CLI's first, cheap step.

Nothing here imports ``http.client``: when no server answers, the CLI falls through to working
in-process having spent a ``stat`` or a refused ``connect``.
"""

from __future__ import annotations

import os
import socket

from harness.server.paths import UnsafePath, default_socket, read_token

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

__all__ = [
    "REMOTE_COMMANDS",
    "ClientError",
    "Endpoint",
    "NoServer",
    "data_dir",
    "probe",
    "remote_endpoint",
    "resolve",
]

PROBE_TIMEOUT_S = 0.25  # a server on this machine accepts in well under a millisecond
# The commands a server can serve, and the flags that keep a command in-process.
REMOTE_COMMANDS = frozenset({"exec", "run", "check", "analyze"})
_LOCAL_FLAGS = frozenset({"--local", "--help", "-h", "--debug"})


class ClientError(Exception):
    """Root of the errors the client raises."""


class NoServer(ClientError):
    """Raised when nothing answers at the server address."""


class Endpoint:
    """Where the server is: a Unix socket path, or a TCP host and port with the token it requires."""

    __slots__ = ("host", "path", "port", "token")

    def __init__(self, *, path: str = "", host: str = "", port: int = 0, token: str = "") -> None:
        self.path, self.host, self.port, self.token = path, host, port, token

    def __repr__(self) -> str:
        return f"unix://{self.path}" if self.path else f"http://{self.host}:{self.port}"


_UNUSED: Any = None  # the data dir, where default_socket does not read it


def data_dir(environ: Mapping[str, str]) -> Path:
    """The data dir as ``Settings`` resolves it (``HARNESS_DATA_DIR``, else the platform's), without Settings."""
    from pathlib import Path

    if environ.get("HARNESS_DATA_DIR"):
        return Path(environ["HARNESS_DATA_DIR"])
    # harness.settings.default_data_dir, whose module would load pydantic.
    from platformdirs import user_data_path

    return user_data_path("harness", appauthor=False)


def resolve(url: str | None = None, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint for ``url``, else ``HARNESS_URL``, else the default socket; TCP gets its bearer token."""
    env = os.environ if environ is None else environ
    url = url or env.get("HARNESS_URL") or ""
    if not url:
        # With a runtime directory the socket does not depend on the data dir: skip finding it (platformdirs).
        known = env.get("HARNESS_DATA_DIR") or not os.environ.get("XDG_RUNTIME_DIR")
        return Endpoint(path=str(default_socket(data_dir(env) if known else _UNUSED)))
    if url.startswith("unix://"):
        return Endpoint(path=url[len("unix://") :])
    if url.startswith("http://"):
        hostport = url[len("http://") :].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ClientError(f"HARNESS_URL {url!r} has no port: use http://127.0.0.1:PORT")
        token = env.get("HARNESS_TOKEN", "")
        if not token:
            try:
                # Read as the server reads it: a private plain file, no link followed.
                token = read_token(data_dir(env)) or ""
            except UnsafePath as exc:
                raise ClientError(f"the server token cannot be used: {exc}") from None
        return Endpoint(host=host.strip("[]"), port=int(port), token=token)
    raise ClientError(f"HARNESS_URL {url!r} is neither unix:///PATH nor http://HOST:PORT")


def probe(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when something accepts connections at the endpoint (no HTTP: a connect only)."""
    if endpoint.path:
        if not os.path.exists(endpoint.path):
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = endpoint.path
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET)
        address = (endpoint.host, endpoint.port)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def remote_endpoint(args: list[str], environ: Mapping[str, str] | None = None) -> Endpoint | None:
    """The server that should serve ``args``, or None when the in-process CLI should (no server, ``--local``)."""
    if not args or args[0] not in REMOTE_COMMANDS or not _LOCAL_FLAGS.isdisjoint(args):
        return None
    try:
        endpoint = resolve(None, environ)
    except ClientError:
        return None
    return endpoint if probe(endpoint) else None
