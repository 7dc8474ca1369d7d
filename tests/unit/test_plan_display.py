"""The plan display: every phase's state, as lines off a terminal and as a live table on one."""

from __future__ import annotations

import io

from rich.console import Console

from harness.cli.plan_display import PlanDisplay
from harness.events import PhaseEvent, ProgressEvent

PHASES = [{"phase": "a", "stage": 1}, {"phase": "b", "stage": 1}, {"phase": "c", "stage": 2}]


def test_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with PlanDisplay(Console(file=out, force_terminal=False), PHASES) as display:
        display.on_phase("a", "running")
        display.on_event("a", ProgressEvent(done=1, total=2, message="half"))
        display.on_phase("a", "succeeded")
        display.on_phase("c", "skipped")
    assert out.getvalue().splitlines() == ["▶ a: running", "✓ a: succeeded", "- c: skipped"]
    assert display.rows["a"]["note"] == "1/2 half" and display.rows["b"]["state"] == "waiting"


def test_live_table_shows_every_phase() -> None:
    out = io.StringIO()
    with PlanDisplay(Console(file=out, force_terminal=True, width=100), PHASES) as display:
        display.on_phase("b", "running")
        display.on_event("b", PhaseEvent(name="scan", status="start"))
        display.on_phase("b", "failed")
    text = out.getvalue()
    assert "stage 1" in text and "stage 2" in text and "failed" in text and "waiting" in text


def test_run_display_shows_every_fetch_and_refusal() -> None:
    from harness.cli.display import RunDisplay
    from harness.events import FetchReply

    out = io.StringIO()
    with RunDisplay(Console(file=out, force_terminal=False), "run") as display:
        display.on_event(FetchReply(id="f1", ok=True, method="GET", host="api.example.com", status=200, bytes_in=512))
        display.on_event(FetchReply(id="f2", ok=False, method="POST", host="evil.example", error="not allowed"))
    assert out.getvalue().splitlines() == [
        "↗ GET api.example.com → 200 (512 bytes)",
        "✗ POST evil.example refused: not allowed",
    ]
