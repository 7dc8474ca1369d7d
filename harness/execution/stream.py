"""Reading a run's output as it arrives: engine frames -> lines -> typed events.

The container's stdout carries, in order: whatever the script prints (protocol events
and plain output), then the entrypoint's end marker (which names the run's nonce), then
a tar stream of /output, then the entrypoint's trailer saying the tar is complete. Its
stderr carries what the script wrote there, then the entrypoint's stderr end marker. Both
markers and the trailer carry the nonce, which the script never learns (docs/supervisor.md).
Everything is parsed defensively and in bounded memory: the script controls all of the
other bytes and is trusted for none of them.

A script can print far more lines than anyone will read, and each line costs the host a
parse, a JSON event on disk and (for structured lines) many Python objects. So the reader
bounds three things: what it hands on (``on_event``: a count and a byte budget, after which
events are counted, not parsed where that is safe, and summed up in one ``events_dropped``
event just before ``run_finished``), what it keeps in memory (``events``: a count and an
estimate of bytes that counts every JSON container a line opens), and blank lines (a run
of them is one event: one byte of output must not become a hundred bytes of log).
"""

from __future__ import annotations

import json
import re
import struct
import tempfile
import time
from collections.abc import Callable
from typing import IO, Literal

from harness.events import (
    AgentRequestEvent,
    Event,
    EventsDropped,
    FetchRequestEvent,
    LineSplitter,
    RunFinished,
    parse_line,
)

__all__ = ["MAX_DELIVERED", "MAX_DELIVERED_BYTES", "Demuxer", "RunReader", "memory_cost"]

_HEADER = struct.Struct(">BxxxL")
_TAIL = 8 * 1024
_SPOOL = 8 * 1024 * 1024
MAX_DELIVERED = 20_000  # events handed to on_event (and so to the run's events.jsonl)
MAX_DELIVERED_BYTES = 8 * 1024 * 1024  # their raw lines' size, plus an envelope each
MAX_KEPT_BYTES = 4 * 1024 * 1024  # estimated memory of the events kept in ``events``
_ENVELOPE = 100  # seq, t, kind and quoting that a line gains as a JSON event
_HOST_EVENT = 512  # the estimate for an event the host makes itself
_BLANK_RUNS = re.compile(rb"\n\n\n+")


def memory_cost(line: bytes) -> int:
    """An estimate of the memory a line's event holds: its bytes plus a Python object per JSON value.

    ``[{},{},...]`` is three bytes per element on the wire and about 70 in memory (an empty dict
    and a list slot), so the line length alone would undercount a result line twenty-fold.
    """
    containers = line.count(b"{") + line.count(b"[")
    return len(line) + 64 * containers + 8 * line.count(b",") + 24 * line.count(b'"') + _HOST_EVENT


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
        max_kept_bytes: int = MAX_KEPT_BYTES,
        max_delivered: int = MAX_DELIVERED,
        max_delivered_bytes: int = MAX_DELIVERED_BYTES,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._marker = b'{"v": 1, "kind": "_harness_end", "nonce": ' + json.dumps(nonce).encode()
        self._trailer = json.dumps({"v": 1, "kind": "_harness_sent", "nonce": nonce}).encode() + b"\n"
        self.stdout_cap = stdout_cap
        self.archive_cap = archive_cap
        self.max_events = max_events
        self.max_kept_bytes = max_kept_bytes
        self.max_delivered = max_delivered
        self.max_delivered_bytes = max_delivered_bytes
        self.on_event = on_event
        self.clock = clock
        self.t0 = clock()
        self._out = LineSplitter()
        self._err = LineSplitter()
        self._blank_pending = False
        self._stderr_blank_pending = False
        self.seq = 0
        self.events: list[Event] = []
        self.events_dropped = 0  # handed on but not kept in ``events``
        self.kept_bytes = 0
        self.delivered = 0
        self.delivered_bytes = 0
        self.withheld = 0  # past the delivery caps: counted only
        self.withheld_bytes = 0
        self.blank_lines = 0  # blank lines folded into the one before them
        self.first_event_s: float | None = None
        self.stdout_bytes = 0
        self.stderr_bytes = 0
        self._stdout_tail = bytearray()
        self._stderr_tail = bytearray()
        self.over_cap = False
        self.skipped_bytes = 0  # stdout past the cap, while the script was being stopped: not read
        self._skipped_tail = b""
        self._marker_found = False
        self.ended = False  # the stdout end marker arrived
        self.ended_s: float | None = None
        self.reported_exit: int | None = None
        self.settled = False  # the supervisor saw no other process alive when it reported
        self.oom_kills: int | None = None  # the container's OOM-kill count it read then
        self.reported_timeout = False  # the supervisor stopped the script at the run's time limit
        self.reported_interrupt = False  # the supervisor stopped the script because the host asked (SIGUSR1)
        self.stderr_ended = False  # the stderr end marker arrived: the script's stderr is complete
        self.sent = False  # the trailer arrived: the output archive is complete
        self.sent_s: float | None = None
        self.archive: IO[bytes] | None = None
        self.archive_bytes = 0
        self.archive_over_cap = False
        self._archive_tail = b""  # the last bytes of the archive stream, to find the trailer
        self.host_requests: list[AgentRequestEvent | FetchRequestEvent] = []

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, stream: int, data: bytes) -> None:
        """Consume one payload from the container (stream 1 stdout, 2 stderr)."""
        if stream == 2:
            self._err_feed(data)
            return
        if self.ended:
            self._archive(data)
            return
        if self.over_cap and not self._marker_found:
            # Past the cap the script is being stopped: its bytes are only searched for the end
            # marker (the outputs follow it), never split, parsed or counted.
            self._skip_to_marker(data)
            return
        # Only bytes before the end marker count against the script's output cap.
        self._out_feed(data)

    def _skip_to_marker(self, data: bytes) -> None:
        window = self._skipped_tail + data
        at = window.find(self._marker)
        if at < 0:
            self.skipped_bytes += len(data)
            self._skipped_tail = window[-len(self._marker) :]
            return
        # Negative when the marker began in the kept tail: those bytes were counted as skipped already.
        self.skipped_bytes += at - len(self._skipped_tail)
        self._skipped_tail = b""
        self._marker_found = True  # the rest of its line may come in the next payload: read normally
        # The supervisor starts its marker on a fresh line: whatever line was pending is the script's, cut.
        self._out = LineSplitter()
        self._blank_pending = False
        self._out_feed(window[at:])

    def finish(self) -> None:
        """Flush unfinished lines at the end of the stream."""
        if not self.ended:
            for line, cut in self._out.flush():
                self._emit_stdout(line, cut)
        for line, cut in self._err.flush():
            self._emit_stderr(line, cut)
        if self._stderr_blank_pending and not self.stderr_ended:
            self._stderr_blank_pending = False
            self._emit_stderr_line(b"", False)
        if self.archive is not None:
            self.archive.seek(0)

    def close(self) -> None:
        """Release the spooled output archive."""
        if self.archive is not None:
            self.archive.close()

    def emit(self, event: Event) -> Event:
        """Number, timestamp, keep and hand on a host-made event (seq and t are replaced).

        ``run_finished`` always goes through; when anything was withheld or folded, one
        ``events_dropped`` event saying how much goes just before it.
        """
        final = isinstance(event, RunFinished)
        if final and (self.withheld or self.blank_lines):
            summary = EventsDropped(count=self.withheld, bytes=self.withheld_bytes, blank_lines=self.blank_lines)
            self._deliver(summary.model_copy(update={"seq": self._next_seq(), "t": self.elapsed()}), _HOST_EVENT, True)
        event = event.model_copy(update={"seq": self._next_seq(), "t": self.elapsed()})
        self._deliver(event, _HOST_EVENT, final)
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
        # Only before the end marker: the archive's bytes after it stay as they are.
        at = data.find(self._marker)
        data = self._fold_blank(self._out, data) if at < 0 else self._fold_blank(self._out, data[:at]) + data[at:]
        lines = self._out.feed(data, stop=self._marker)
        for line, cut in lines:
            at = -1 if cut else line.find(self._marker)
            if at < 0:
                self._emit_stdout(line, cut)
                continue
            if at > 0:
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

    def _err_feed(self, data: bytes) -> None:
        self.stderr_bytes += len(data)
        self._count()
        if self.stderr_ended:
            # The supervisor's own diagnostics (a deadline, a failed send): plain stderr lines.
            for line, cut in self._err.feed(data):
                self._emit_stderr(line, cut)
            return
        data = self._fold_blank(self._err, data)
        for line, cut in self._err.feed(data, stop=self._marker):
            at = -1 if cut else line.find(self._marker)
            if at < 0:
                self._emit_stderr(line, cut)
                continue
            if at > 0:
                self._emit_stderr(line[:at], False)
            # The newline before the marker is the supervisor's: a blank line held back is dropped.
            self._stderr_blank_pending = False
            self.stderr_ended = True
            rest = self._err.rest or b""
            self.stderr_bytes -= len(line) - at + 1 + len(rest)
            if rest:
                self._err_feed(rest)
            return

    def _fold_blank(self, splitter: LineSplitter, data: bytes) -> bytes:
        """Fold runs of blank lines to one, at C speed, rather than split millions of empty lines one by one."""
        if splitter.pending_size() or b"\n\n\n" not in data:
            return data  # a pending line may be the start of the end marker: leave its bytes alone
        folded = _BLANK_RUNS.sub(b"\n\n", data)
        self.blank_lines += len(data) - len(folded)
        return folded

    def _count(self) -> None:
        if self.stdout_bytes + self.stderr_bytes > self.stdout_cap:
            self.over_cap = True

    def _end(self, marker_line: bytes) -> None:
        self.ended = True
        self.ended_s = self.elapsed()
        try:
            info = json.loads(marker_line)
        except ValueError:
            info = None
        if isinstance(info, dict):
            code, kills = info.get("exit_code"), info.get("oom_kills")
            # bool is an int in Python: take neither True nor False as a number here.
            self.reported_exit = code if type(code) is int else None
            self.settled = info.get("settled") is True
            self.oom_kills = kills if type(kills) is int and kills >= 0 else None
            self.reported_timeout = info.get("timed_out") is True
            self.reported_interrupt = info.get("interrupted") is True
        self.archive = tempfile.SpooledTemporaryFile(max_size=_SPOOL)

    def _archive(self, data: bytes) -> None:
        if self.archive is None or self.archive_over_cap:
            return
        if self.archive_bytes + len(data) > self.archive_cap:
            self.archive_over_cap = True
            return
        if self.sent:
            # Bytes after the trailer: not the supervisor's protocol. The archive is not known complete.
            self.sent = False
            self.sent_s = None
            self.archive.seek(0, 2)
        self.archive.write(data)
        self.archive_bytes += len(data)
        self._archive_tail = (self._archive_tail + data)[-len(self._trailer) :]
        if self._archive_tail == self._trailer:
            # The trailer is the supervisor's, not part of the tar: cut it off.
            self.archive_bytes -= len(self._trailer)
            self.archive.truncate(self.archive_bytes)
            self.sent = True
            self.sent_s = self.elapsed()

    def _emit_stdout(self, line: bytes, cut: bool) -> None:
        # The entrypoint puts a newline before its end marker; a blank line is held back one
        # step so that this one never shows up as script output. Consecutive blank lines are
        # one event (counted in ``blank_lines``).
        if not line and not cut:
            if self._blank_pending:
                self.blank_lines += 1
            self._blank_pending = True
            return
        if self._blank_pending:
            self._blank_pending = False
            self._keep_tail(self._stdout_tail, b"\n")
            self._emit(b"", "stdout", False)
        # The tail, like the events, has each line once it is known to be the script's.
        self._keep_tail(self._stdout_tail, line + b"\n")
        self._emit(line, "stdout", cut)

    def _emit_stderr(self, line: bytes, cut: bool) -> None:
        # As on stdout, a blank line is held back one step: the supervisor's newline before its
        # stderr marker must not show up as the script's. Consecutive blank lines are one event.
        if not line and not cut:
            if self._stderr_blank_pending:
                self.blank_lines += 1
            self._stderr_blank_pending = True
            return
        if self._stderr_blank_pending:
            self._stderr_blank_pending = False
            self._emit_stderr_line(b"", False)
        self._emit_stderr_line(line, cut)

    def _emit_stderr_line(self, line: bytes, cut: bool) -> None:
        self._keep_tail(self._stderr_tail, line + b"\n")
        self._emit(line, "stderr", cut)

    def _emit(self, line: bytes, stream: Literal["stdout", "stderr"], cut: bool) -> None:
        if self.first_event_s is None:
            self.first_event_s = self.elapsed()
        size = len(line) + _ENVELOPE
        if self._full(size) and (stream == "stderr" or cut or not line.startswith(b"{") or b"_request" not in line):
            # Past the caps, a line that cannot be a request to the host is counted, not parsed (a
            # request that spells its kind with JSON escapes is not answered: the script's loss).
            self._next_seq()
            self._withhold(size)
            return
        event = parse_line(line, stream=stream, truncated=cut, seq=self._next_seq(), t=self.elapsed())
        if isinstance(event, (AgentRequestEvent, FetchRequestEvent)):
            # Requests are answered past the caps too: the broker has its own budgets.
            self.host_requests.append(event)
        self._deliver(event, size, False, memory_cost(line))

    def _full(self, size: int) -> bool:
        return self.delivered >= self.max_delivered or self.delivered_bytes + size > self.max_delivered_bytes

    def _withhold(self, size: int) -> None:
        self.withheld += 1
        self.withheld_bytes += size

    def _deliver(self, event: Event, size: int, always: bool, cost: int = _HOST_EVENT) -> None:
        if not always and self._full(size):
            self._withhold(size)
            return
        self.delivered += 1
        self.delivered_bytes += size
        if len(self.events) < self.max_events and self.kept_bytes + cost <= self.max_kept_bytes:
            self.events.append(event)
            self.kept_bytes += cost
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
