"""The live run display on stderr: phases, a progress bar, the last log line.

Every string an event carries was written by the script (or the LLM it asked), so each one
goes through ``visible`` before it reaches the terminal: an escape sequence in a phase name or
an output line is shown, not obeyed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from harness.events import Event
from harness.safe_text import visible

__all__ = ["LiveView", "RunDisplay", "egress_lines"]

_STYLE = {"running": "yellow", "done": "green", "failed": "red"}
_SHOWN_LINES = 200  # plain output lines echoed; the rest stay in events.jsonl


class LiveView:
    """A rich Live area on a terminal (nothing otherwise), entered and left with the view."""

    transient = True

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._live: Live | None = None

    def _render(self) -> RenderableType:
        raise NotImplementedError

    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=10, transient=self.transient)
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None


class RunDisplay(LiveView):
    """Shows a run's events as they arrive; a plain line log when stderr is not a terminal."""

    def __init__(self, console: Console, title: str) -> None:
        super().__init__(console)
        self.title = visible(title)
        self.phases: dict[str, str] = {}
        self.current: str | None = None
        self.done: float = 0
        self.total: float | None = None
        self.message = ""
        self.last_log = ""
        self.plain_lines = 0

    def on_event(self, event: Event) -> None:
        """Fold one event into the display."""
        with self._lock:
            line = visible(self._fold(event))
            if line:
                # Printed above the live area on a terminal, as plain lines otherwise.
                self.console.print(line, highlight=False, markup=False)
            if self._live is not None:
                self._live.update(self._render())

    def _fold(self, event: Event) -> str:
        if event.kind == "phase":
            if event.status == "start":
                self.phases[visible(event.name)] = "running"
                self.current, self.done, self.total, self.message = visible(event.name), 0, None, ""
                return f"▶ {event.name}"
            self.phases[visible(event.name)] = "failed" if event.ok is False else "done"
            return f"{'✗' if event.ok is False else '✓'} {event.name}"
        if event.kind == "progress":
            self.done, self.total, self.message = event.done, event.total, visible(event.message)
            return ""
        if event.kind == "log":
            self.last_log = visible(f"{event.level}: {event.message}")
            return self.last_log if event.level in ("warning", "error") else ""
        if event.kind == "output":
            self.plain_lines += 1
            if self.plain_lines <= _SHOWN_LINES:
                return f"{'│' if event.stream == 'stdout' else '!'} {event.text}"
            if self.plain_lines == _SHOWN_LINES + 1:
                return "… more output is in the run folder's events.jsonl"
            return ""
        if event.kind == "agent_request":
            self.last_log = visible(f"asking agent {event.role}…")
            return self.last_log
        if event.kind == "fetch_reply":
            # Every request to the network is worth a line: it is what a reviewer granted.
            if event.ok:
                return f"↗ {event.method} {event.host} → {event.status} ({event.bytes_in} bytes)"
            return f"✗ {event.method} {event.host or '?'} refused: {event.error}"
        if event.kind == "unknown":
            return f"? ignored event: {event.reason}"
        return ""

    def _render(self) -> RenderableType:
        elapsed = time.monotonic() - self.started
        header = Text.assemble((self.title, "bold"), f"  {elapsed:5.1f}s")
        rows: list[RenderableType] = [header]
        if self.phases:
            table = Table.grid(padding=(0, 1))
            for name, state in self.phases.items():
                mark = {"running": "▶", "done": "✓", "failed": "✗"}[state]
                table.add_row(Text(mark, style=_STYLE[state]), Text(name))
            rows.append(table)
        if self.total and self.total > 0:
            bar = Table.grid(padding=(0, 1))
            # The numbers come from the script: drawn as a fraction, so no size of them overflows the bar.
            fraction = max(0.0, min(self.done / self.total, 1.0))
            bar.add_row(
                ProgressBar(total=1.0, completed=fraction, width=30),
                Text(f"{self.done:g}/{self.total:g}"),
                Text(self.message[:60], style="dim"),
            )
            rows.append(bar)
        if self.last_log:
            rows.append(Text(self.last_log[:100], style="dim"))
        return Group(*rows)


def egress_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One summary line per host a run fetched from through the host."""
    lines = []
    for row in rows:
        refused = f", {row['refused']} refused" if row["refused"] else ""
        host = visible(str(row["host"]))
        lines.append(f"  egress: {host}: {row['requests']} request(s), {row['bytes_in']} bytes in{refused}")
    return lines
