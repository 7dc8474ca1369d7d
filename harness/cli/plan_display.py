"""The live plan display on stderr: every phase at once, with its state and progress.

Notes come from the scripts' events and failure messages, so they pass through ``visible``.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from harness.cli.display import LiveView
from harness.events import Event
from harness.safe_text import visible

__all__ = ["PlanDisplay"]

_STYLE = {"waiting": "dim", "running": "yellow", "succeeded": "green", "skipped": "dim"}
_MARK = {"waiting": "·", "running": "▶", "succeeded": "✓", "skipped": "-"}


class PlanDisplay(LiveView):
    """Shows all phases of a plan (waiting, running, done, failed) and each one's progress."""

    transient = False  # the final table stays on screen

    def __init__(self, console: Console, phases: list[dict[str, Any]]) -> None:
        super().__init__(console)
        self.rows = {row["phase"]: {"stage": row["stage"], "state": "waiting", "note": ""} for row in phases}

    def on_phase(self, name: str, state: str, message: str | None = None) -> None:
        """A phase changed state (running, succeeded, failed, skipped, ...); ``message`` says why it ended so."""
        with self._lock:
            self.rows[name]["state"] = state
            if message is not None and state != "succeeded":
                self.rows[name]["note"] = visible(message)[:80]
            self._refresh(visible(f"{_MARK.get(state, '✗')} {name}: {state}"))

    def on_event(self, name: str, event: Event) -> None:
        """A phase's run reported progress."""
        if event.kind == "progress" and event.total:
            with self._lock:
                self.rows[name]["note"] = visible(f"{event.done:g}/{event.total:g} {event.message}")[:80]
                self._refresh(None)
        elif event.kind == "phase" and event.status == "start":
            with self._lock:
                self.rows[name]["note"] = visible(event.name)
                self._refresh(None)

    def _refresh(self, line: str | None) -> None:
        if self._live is not None:
            self._live.update(self._render())
        elif line:
            self.console.print(line, highlight=False, markup=False)

    def _render(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        table.add_row(Text(f"plan · {time.monotonic() - self.started:5.1f}s", style="bold"))
        for name, row in self.rows.items():
            state = str(row["state"])
            table.add_row(
                Text(_MARK.get(state, "✗"), style=_STYLE.get(state, "red")),
                Text(f"stage {row['stage']}"),
                Text(visible(name), style="bold" if state == "running" else ""),
                Text(state, style=_STYLE.get(state, "red")),
                Text(str(row["note"]), style="dim"),
            )
        return table
