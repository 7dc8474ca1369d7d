"""What ran and how it went: recent runs, plans, per-scaffold statistics, and a run's report by id.

The history store answers with rows; these functions hand front-ends typed models in the
same shapes (``harness history --json`` and ``harness stats --json`` print exactly these).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from harness.errors import NotFound
from harness.report import Report

if TYPE_CHECKING:
    from harness.services import Services

__all__ = [
    "PlanRow",
    "PlanRunRow",
    "PlanStats",
    "RunRow",
    "Stats",
    "TemplateStats",
    "WorkflowStats",
    "get_report",
    "list_plans",
    "list_runs",
    "stats",
]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRow(_Row):
    """One request's run as history keeps it (columns in the store's order)."""

    run_id: str
    started_at: str
    finished_at: str | None = None
    owner: str
    request: str
    workflow_type: str | None = None
    complexity: str | None = None
    strategy: str | None = None
    template: str | None = None
    status: str
    exit_code: int | None = None
    duration_s: float | None = None
    estimated_duration_s: float | None = None
    tokens_used: int | None = 0
    estimated_tokens: int | None = 0
    generated_id: str | None = None
    plan_id: str | None = None
    phase: str | None = None
    attempt: int | None = 1
    confidence: float | None = None
    gate_passed: int | None = None
    llm_calls: int | None = 0
    analysis: dict[str, JsonValue] | None = None
    decision: dict[str, JsonValue] | None = None
    template_version: str | None = None
    cause: str | None = Field(None, description="whose fault a failure was: input, scaffold or environment")


class PlanRunRow(_Row):
    """One phase attempt of a plan."""

    run_id: str
    phase: str | None
    attempt: int | None
    status: str
    template: str | None
    duration_s: float | None


class PlanRow(_Row):
    """One plan, with its phases' runs in the order they started."""

    plan_id: str
    started_at: str
    finished_at: str | None
    request: str
    status: str
    phases: int | None
    stages: int | None
    partial: int | None
    wall_s: float | None
    estimated_s: float | None
    tokens_used: int | None
    runs: tuple[PlanRunRow, ...]


class TemplateStats(_Row):
    """How the runs of one scaffold went."""

    template: str
    runs: int
    success_rate: float
    failures_by_cause: dict[str, int] = Field(default_factory=dict, description="input, scaffold, environment")
    median_duration_s: float | None
    median_tokens: int | float
    median_estimate_error: float | None


class WorkflowStats(_Row):
    """How the runs of one workflow type went."""

    workflow_type: str
    runs: int
    success_rate: float
    failures_by_cause: dict[str, int] = Field(default_factory=dict, description="input, scaffold, environment")
    median_duration_s: float | None
    median_tokens: int | float
    median_estimate_error: float | None


class PlanStats(_Row):
    """How plans went, all together."""

    plans: int
    success_rate: float
    partial: int
    median_wall_s: float | None
    median_tokens: int | float
    median_estimate_error: float | None


class Stats(_Row):
    """Per scaffold, per workflow type, and for plans."""

    by_template: tuple[TemplateStats, ...]
    by_workflow_type: tuple[WorkflowStats, ...]
    plans: tuple[PlanStats, ...]


def list_runs(services: Services, limit: int = 20) -> tuple[RunRow, ...]:
    """The latest runs, newest first, with the stored analysis and decision as JSON objects."""
    return tuple(RunRow.model_validate({**row, **_parsed(row)}) for row in services.history.recent(limit))


def list_plans(services: Services, limit: int = 20) -> tuple[PlanRow, ...]:
    """The latest plans, newest first, each with its phases' runs."""
    return tuple(PlanRow.model_validate(plan) for plan in services.history.plans(limit))


def stats(services: Services) -> Stats:
    """Runs, success rate, median duration and tokens and estimate error, per scaffold and workflow type."""
    return Stats.model_validate(services.history.stats())


def get_report(services: Services, run_id: str) -> Report:
    """The report of run ``run_id``; NotFound when it has none (yet), RunPrunedError when retention removed it."""
    folder = services.runs.load(run_id)
    path = folder.path / "report.json"
    if not path.is_file():
        raise NotFound(f"run {run_id} has no report", hint="a script run (exec) has result.json only", id=run_id)
    return Report.model_validate_json(path.read_bytes())


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    """The stored analysis and decision as JSON objects rather than strings (None when unreadable)."""
    out: dict[str, Any] = {}
    for key in ("analysis", "decision"):
        try:
            value = json.loads(row[key]) if row.get(key) else None
        except ValueError:
            value = None
        out[key] = value if isinstance(value, dict) else None
    return out
