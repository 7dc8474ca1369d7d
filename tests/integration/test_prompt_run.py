"""A person at a terminal answers what the request left open, confirms, and gets the right answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.ptyterm import Terminal

HARNESS = [sys.executable, "-m", "harness"]


def test_an_answered_prompt_runs_with_that_value(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text("Region,Product,Units\nNorth,widget,3\nSouth,gizmo,4\nNorth,gizmo,2\n")
    out = tmp_path / "out"
    term = Terminal([*HARNESS, "run", "summarise the units sold", "-i", str(data), "-o", str(out), "--local"])
    term.expect("group_by (one of: Region, Product, Units)")
    term.send("region")
    term.expect("Run it?")
    term.send("y")
    assert term.finish() == 0, term.seen
    assert "succeeded · csv_summary" in term.seen
    summary = json.loads((out / "summary.json").read_text())
    assert summary["group_by"] == "Region"
    assert {name: group["columns"]["Units"]["sum"] for name, group in summary["groups"].items()} == {
        "North": 5,
        "South": 4,
    }
