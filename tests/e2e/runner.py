"""Run the labelled requests through ``harness run`` as a user would, and score each outcome.

Outcomes: ``right`` (succeeded, and the independent check passed), ``wrong`` (succeeded with a
wrong answer: the one outcome that must never happen), ``refused`` (exit 2, nothing run),
``failed`` (ran and reported failure). Each request gets a fresh data dir and no API key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cases import Case

HARNESS = Path(sys.executable).with_name("harness")


@dataclass(frozen=True)
class Scored:
    case: Case
    outcome: str
    detail: str
    seconds: float


def run_case(case: Case, workdir: Path, *, env: dict[str, str] | None = None) -> Scored:
    """Make the case's data, run its request, and classify what came back."""
    import time

    root = workdir / case.id
    facts = case.data(root / "in")
    out = root / "out"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "HARNESS_"))}
    environment.update({"HARNESS_DATA_DIR": str(root / "data"), "NO_COLOR": "1", **(env or {})})
    start = time.monotonic()
    done = subprocess.run(
        [str(HARNESS), "run", case.request, "--input", str(facts["path"]), "--output", str(out), "--json", "--yes"],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - start
    last = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode == 2:
        return Scored(case, "refused", last, seconds)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return Scored(case, "failed", f"exit {done.returncode}: {last}", seconds)
    status = (report.get("execution_result") or {}).get("status") or report.get("status")
    template = (report.get("dispatch_decision") or {}).get("template")
    if status != "succeeded":
        return Scored(case, "failed", f"{template}: {status}: {last}", seconds)
    if case.check is None:
        return Scored(case, "wrong", f"{template}: succeeded on a request no scaffold serves", seconds)
    try:
        case.check(out, facts)
    except (AssertionError, KeyError, ValueError, StopIteration, OSError) as exc:
        return Scored(case, "wrong", f"{template}: {type(exc).__name__}: {str(exc)[:200]}", seconds)
    return Scored(case, "right", str(template), seconds)


def run_all(cases: list[Case]) -> list[Scored]:
    """Every case, each in its own temporary folder."""
    with tempfile.TemporaryDirectory(prefix="harness-e2e-") as tmp:
        return [run_case(case, Path(tmp)) for case in cases]


def summary(scored: list[Scored]) -> dict[str, dict[str, int]]:
    """Outcome counts per half, for covered and uncovered requests."""
    table: dict[str, dict[str, int]] = {}
    for item in scored:
        key = f"{item.case.half} {'covered' if item.case.covered else 'uncovered'}"
        row = table.setdefault(key, {"right": 0, "wrong": 0, "refused": 0, "failed": 0})
        row[item.outcome] += 1
    return table
