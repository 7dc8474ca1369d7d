"""Running the app: the listening socket, uvicorn, and the drain on SIGTERM.

The socket is made here, not by uvicorn (which would chmod a Unix socket to 0666): the
folder is checked (ours, a real folder, 0700), the socket is bound under a 0177 umask and
then set to 0600. SIGTERM or Ctrl-C drains: new jobs get 503 while the server keeps
answering, running jobs get ``grace`` seconds, the rest are cancelled (their containers
killed), then uvicorn stops and the lifespan closes the backend, which removes every
container it made. A second signal stops at once (the backend still removes its containers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from harness.errors import ConfigError, Conflict
from harness.server.paths import UnsafePath, default_socket, ensure_private_dir, token_for_serving, token_path

if TYPE_CHECKING:
    import uvicorn

    from harness.server.app import ServeOptions
    from harness.settings import Settings

__all__ = ["Endpoint", "bind_tcp", "bind_unix", "parse_listen", "serve"]


@dataclass(frozen=True)
class Endpoint:
    """Where the server listens: a bound socket and how a client names it."""

    sock: socket.socket
    url: str
    path: Path | None = None  # the Unix socket's file, removed on exit


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) → (host, port); ConfigError otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"invalid --listen {value!r}", hint="use HOST:PORT, e.g. 127.0.0.1:8765")
    return host, int(port)


def bind_tcp(listen: str) -> Endpoint:
    """A listening TCP socket for ``HOST:PORT`` (port 0 picks a free one)."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}", hint="pick another port") from None
    sock.listen(512)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return Endpoint(sock, f"http://{shown}:{bound}")


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def bind_unix(path: Path, *, default: bool) -> Endpoint:
    """A listening Unix socket at ``path`` (0600) in a private folder; Conflict when a server answers there."""
    try:
        ensure_private_dir(path.parent, tighten=default)
    except UnsafePath as exc:
        raise ConfigError(f"unsafe socket folder: {exc}", hint="use a folder only you can enter") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigError(f"{path} exists and is not a socket", hint="remove it or pass another --socket")
        if _answers(path):
            raise Conflict(f"a server already listens at {path}", hint="stop it first, or pass another --socket")
        path.unlink()  # a socket nobody answers on: what a killed server left
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is never, even for an instant, open to others
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(512)
    return Endpoint(sock, f"unix://{path}", path)


def _uvicorn_server(config: uvicorn.Config, drain: Callable[[], object]) -> uvicorn.Server:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn, with SIGTERM and SIGINT turned into a drain (a second one stops at once)."""

        _drain_started = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Not recorded as captured: uvicorn would raise it again after a clean shutdown (exit 143).
            if self._drain_started:
                self.should_exit = self.force_exit = True
                return
            self._drain_started = True

            def run() -> None:
                try:
                    drain()
                finally:
                    self.should_exit = True

            threading.Thread(target=run, name="harness-drain", daemon=True).start()

    return _Server(config)


def serve(
    settings: Settings,
    options: ServeOptions,
    *,
    listen: str | None = None,
    socket_path: Path | None = None,
    grace: float = 30.0,
    announce: Callable[[str], None] = lambda line: None,
) -> int:
    """Serve until SIGTERM or Ctrl-C, then drain; 0 on a clean stop."""
    import uvicorn

    from harness.server.app import ServeOptions, create_app

    if listen is not None and socket_path is not None:
        raise ConfigError("--listen and --socket are exclusive", hint="pick one transport")
    if listen is not None:
        token = token_for_serving(settings.data_dir)
        endpoint = bind_tcp(listen)
        options = ServeOptions(options.concurrency, options.queue, token, options.max_body)
        where = f"{endpoint.url} (bearer token in {token_path(settings.data_dir)})"
    else:
        path = socket_path or default_socket(settings.data_dir)
        endpoint = bind_unix(path, default=socket_path is None)
        where = endpoint.url

    def ready() -> None:
        if listen is not None:
            # A browser can send neither the token nor reach the socket: it signs in once with this link.
            code = app.state.review_sessions.issue_login_code()
            announce(f"harness serve: review page {endpoint.url}/review/login?code={code} (works once)")
        announce(f"harness serve: ready on {where}")

    app = create_app(settings, options=options, on_ready=ready)
    state = app.state.server
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # SSE streams end with their jobs, which the drain has ended by the time uvicorn stops.
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
    )
    server = _uvicorn_server(config, lambda: state.registry.drain(grace))
    config.load()  # sets uvicorn's logging up, so the filter below is not replaced

    def quiet_startup_error(record: logging.LogRecord) -> bool:
        # A start-up failure we raise ourselves is shown once, as the CLI's one-line error.
        return state.startup_error is None or record.levelno < logging.ERROR

    logging.getLogger("uvicorn.error").addFilter(quiet_startup_error)
    try:
        server.run(sockets=[endpoint.sock])
    except SystemExit:
        # uvicorn exits when the lifespan fails (no engine, no image): say why, as the CLI does.
        if state.startup_error is not None:
            raise state.startup_error from None
        raise
    finally:
        endpoint.sock.close()
        if endpoint.path is not None:
            with contextlib.suppress(OSError):
                endpoint.path.unlink()
    return 0
