"""The live run display on stderr: phases, a progress bar, the last log line.

Every string an event carries was written by the script (or the LLM it asked), so each one
goes through ``visible`` before it reaches the terminal: an escape sequence in a phase name or
an output line is shown, not obeyed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from harness.cli.render import RunView, egress_lines
from harness.safe_text import visible

if TYPE_CHECKING:
    from harness.events import Event

__all__ = ["LiveView", "RunDisplay", "egress_lines"]

_STYLE = {"running": "yellow", "done": "green", "failed": "red"}


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


class RunDisplay(LiveView, RunView):
    """Shows a run's events as they arrive; a plain line log when stderr is not a terminal."""

    def __init__(self, console: Console, title: str) -> None:
        LiveView.__init__(self, console)
        RunView.__init__(self, title)

    def on_event(self, event: Event | Mapping[str, Any]) -> None:
        """Fold one event (a model, or its JSON from a server) into the display."""
        data = event if isinstance(event, Mapping) else event.model_dump(mode="json")
        with self._lock:
            line = visible(self.fold(data))
            if line:
                # Printed above the live area on a terminal, as plain lines otherwise.
                self.console.print(line, highlight=False, markup=False)
            if self._live is not None:
                self._live.update(self._render())

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
