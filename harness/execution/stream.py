"""Reading a run's output as it arrives: engine frames -> lines -> typed events.

The container's stdout carries, in order: whatever the script prints (protocol events
and plain output), then the entrypoint's end marker (which names the run's nonce), then
a tar stream of /output. Everything is parsed defensively and in bounded memory:
the script controls all of these bytes and is trusted for none of them.
"""

from __future__ import annotations

import json
import struct
import tempfile
import time
from collections.abc import Callable
from typing import IO, Literal

from harness.events import (
    AgentRequestEvent,
    Event,
    FetchRequestEvent,
    LineSplitter,
    parse_line,
)

__all__ = ["Demuxer", "RunReader"]

_HEADER = struct.Struct(">BxxxL")
_TAIL = 8 * 1024
_SPOOL = 8 * 1024 * 1024


class Demuxer:
    """Splits the engine's multiplexed attach stream (8-byte frame headers) into payloads."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add raw socket bytes; return complete ``(stream, payload)`` frames (1 stdout, 2 stderr)."""
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= 8:
            stream, size = _HEADER.unpack_from(buf, pos)
            if len(buf) - pos - 8 < size:
                break
            frames.append((stream, bytes(buf[pos + 8 : pos + 8 + size])))
            pos += 8 + size
        del buf[:pos]
        return frames


class RunReader:
    """Turns a run's stdout/stderr payloads into events, and collects the output archive.

    ``on_event`` receives every event at once, in order. Requests the script makes of the
    host (agent calls, fetches) also queue in ``host_requests``, for the caller to answer on
    the container's stdin.
    """

    def __init__(
        self,
        *,
        nonce: str,
        stdout_cap: int,
        archive_cap: int,
        max_events: int = 10_000,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._marker = b'{"v": 1, "kind": "_harness_end", "nonce": ' + json.dumps(nonce).encode()
        self.stdout_cap = stdout_cap
        self.archive_cap = archive_cap
        self.max_events = max_events
        self.on_event = on_event
        self.clock = clock
        self.t0 = clock()
        self._out = LineSplitter()
        self._err = LineSplitter()
        self._blank_pending = False
        self.seq = 0
        self.events: list[Event] = []
        self.events_dropped = 0
        self.first_event_s: float | None = None
        self.stdout_bytes = 0
        self.stderr_bytes = 0
        self._stdout_tail = bytearray()
        self._stderr_tail = bytearray()
        self.over_cap = False
        self.ended = False
        self.ended_s: float | None = None
        self.reported_exit: int | None = None
        self.archive: IO[bytes] | None = None
        self.archive_bytes = 0
        self.archive_over_cap = False
        self.host_requests: list[AgentRequestEvent | FetchRequestEvent] = []

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, stream: int, data: bytes) -> None:
        """Consume one payload from the container (stream 1 stdout, 2 stderr)."""
        if stream == 2:
            self.stderr_bytes += len(data)
            self._keep_tail(self._stderr_tail, data)
            self._count()
            for line, cut in self._err.feed(data):
                self._emit(line, "stderr", cut)
            return
        if self.ended:
            self._archive(data)
            return
        # Only bytes before the end marker count against the script's output cap.
        self._out_feed(data)

    def finish(self) -> None:
        """Flush unfinished lines at the end of the stream."""
        if not self.ended:
            for line, cut in self._out.flush():
                self._emit_stdout(line, cut)
        for line, cut in self._err.flush():
            self._emit(line, "stderr", cut)
        if self.archive is not None:
            self.archive.seek(0)

    def close(self) -> None:
        """Release the spooled output archive."""
        if self.archive is not None:
            self.archive.close()

    def emit(self, event: Event) -> Event:
        """Number, timestamp, keep and hand on a host-made event (seq and t are replaced)."""
        event = event.model_copy(update={"seq": self._next_seq(), "t": self.elapsed()})
        self._deliver(event)
        return event

    def elapsed(self) -> float:
        """Seconds since the reader was created (the script's hand-over)."""
        return round(self.clock() - self.t0, 6)

    @property
    def stdout_tail(self) -> str:
        """The last few KiB of the script's stdout, decoded leniently."""
        return self._stdout_tail.decode("utf-8", errors="replace")

    @property
    def stderr_tail(self) -> str:
        """The last few KiB of the script's stderr, decoded leniently."""
        return self._stderr_tail.decode("utf-8", errors="replace")

    # -- internals ---------------------------------------------------------------------------
    def _out_feed(self, data: bytes) -> None:
        # Every byte counts against the cap, including the parts of over-long lines that are dropped.
        self.stdout_bytes += len(data)
        lines = self._out.feed(data, stop=self._marker)
        for line, cut in lines:
            at = -1 if cut else line.find(self._marker)
            if at < 0:
                self._keep_tail(self._stdout_tail, line + b"\n")
                self._emit_stdout(line, cut)
                continue
            if at > 0:
                self._keep_tail(self._stdout_tail, line[:at])
                self._emit_stdout(line[:at], False)
            self._blank_pending = False
            self._end(line[at:])
            rest = self._out.rest or b""
            # The marker, its newline and what follows are the entrypoint's, not the script's.
            self.stdout_bytes -= len(line) - at + 1 + len(rest)
            if rest:
                self._archive(rest)
            return
        self._count()

    def _count(self) -> None:
        if self.stdout_bytes + self.stderr_bytes > self.stdout_cap:
            self.over_cap = True

    def _end(self, marker_line: bytes) -> None:
        self.ended = True
        self.ended_s = self.elapsed()
        try:
            info = json.loads(marker_line)
            code = info.get("exit_code")
            self.reported_exit = code if isinstance(code, int) else None
        except ValueError:
            self.reported_exit = None
        self.archive = tempfile.SpooledTemporaryFile(max_size=_SPOOL)

    def _archive(self, data: bytes) -> None:
        if self.archive is None or self.archive_over_cap:
            return
        if self.archive_bytes + len(data) > self.archive_cap:
            self.archive_over_cap = True
            return
        self.archive.write(data)
        self.archive_bytes += len(data)

    def _emit_stdout(self, line: bytes, cut: bool) -> None:
        # The entrypoint puts a newline before its end marker; a blank line is held back one
        # step so that this one never shows up as script output.
        if not line and not cut:
            if self._blank_pending:
                self._emit(b"", "stdout", False)
            self._blank_pending = True
            return
        if self._blank_pending:
            self._blank_pending = False
            self._emit(b"", "stdout", False)
        self._emit(line, "stdout", cut)

    def _emit(self, line: bytes, stream: Literal["stdout", "stderr"], cut: bool) -> None:
        if self.first_event_s is None:
            self.first_event_s = self.elapsed()
        event = parse_line(line, stream=stream, truncated=cut, seq=self._next_seq(), t=self.elapsed())
        if isinstance(event, (AgentRequestEvent, FetchRequestEvent)):
            self.host_requests.append(event)
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        if len(self.events) < self.max_events:
            self.events.append(event)
        else:
            self.events_dropped += 1
        if self.on_event is not None:
            self.on_event(event)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @staticmethod
    def _keep_tail(tail: bytearray, data: bytes) -> None:
        tail += data[-_TAIL:]
        if len(tail) > _TAIL:
            del tail[:-_TAIL]
