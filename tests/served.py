"""A running server for CLI tests: the real ``harness serve`` when this tree has it, else the contract server.

Either way the tests talk to it through a recording proxy on its own Unix socket, so that a test
can tell that a command really went through the server (and did not fall back to in-process).
The real server runs as a child process with the test's data dir (as a user's server and CLI
share theirs) and is stopped, with its containers, when the test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def real_server_available() -> bool:
    """True when this tree has ``harness serve``."""
    try:
        import harness.server.app  # noqa: F401
    except ImportError:
        return False
    return True


class RecordingProxy:
    """Forwards connections from ``path`` to ``target`` and records each connection's request line."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target = path, target
        self.requests: list[str] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        first = record
        try:
            while chunk := source.recv(65536):
                if first:
                    self.requests.append(chunk.split(b"\r\n", 1)[0].decode("latin-1"))
                    first = False
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()

    def close(self) -> None:
        """Stop accepting and remove the socket."""
        self._listener.close()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@contextmanager
def running_server(folder: Path) -> Iterator[RecordingProxy]:
    """A server behind a recording proxy at ``folder/proxy.sock``; clients use ``unix://<proxy.path>``."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    target = folder / "server.sock"
    if real_server_available():
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "serve", "--socket", str(target)],
            env={**os.environ, "HARNESS_URL": ""},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while not _answers(target):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"harness serve did not start: {proc.stderr.read() if proc.stderr else ''!r}")
                time.sleep(0.05)
            proxy = RecordingProxy(folder / "proxy.sock", target)
            try:
                yield proxy
            finally:
                proxy.close()
        finally:
            proc.terminate()
            proc.wait(timeout=90)
            if proc.stderr:
                proc.stderr.close()
        return
    from tests.contract_server import ContractServer

    server = ContractServer(target)
    try:
        proxy = RecordingProxy(folder / "proxy.sock", target)
        try:
            yield proxy
        finally:
            proxy.close()
    finally:
        server.close()
