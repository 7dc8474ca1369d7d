"""Drive a command in a real pseudo-terminal, as a person at a terminal would."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A child process whose stdin, stdout and stderr are one pseudo-terminal."""

    def __init__(self, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.master, slave = pty.openpty()
        environ = dict(env if env is not None else os.environ)
        environ.setdefault("TERM", "xterm")
        environ["COLUMNS"] = "200"
        self.proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=environ, start_new_session=True
        )
        os.close(slave)
        self.seen = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        if not chunk:
            return False
        self.seen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        return True

    def expect(self, text: str, timeout: float = 60) -> str:
        """Wait until ``text`` has been shown; everything shown so far."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.proc.poll() is not None):
                if text in self.seen:
                    break
                raise AssertionError(f"{text!r} never shown; the terminal showed:\n{self.seen}")
        return self.seen

    def send(self, line: str) -> None:
        """Type ``line`` and Enter."""
        os.write(self.master, (line + "\r").encode())

    def finish(self, timeout: float = 120) -> int:
        """Wait for the child to exit, reading what it still shows; its exit code."""
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                self._read(0.2)
            while self._read(0.05):
                pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"still running after {timeout}s; the terminal showed:\n{self.seen}")
            return self.proc.returncode
        finally:
            os.close(self.master)
