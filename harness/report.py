"""The per-request report: what was asked, how it was served, what came of it, and what it cost.

Shaped after the seed orchestrator's progress report (workflow analysis, dispatch decision,
execution result, quality and performance metrics). ``docs/report.schema.json`` is this
model's JSON schema; a test keeps the two in step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from harness.assertions import AssertionOutcome, processed_line
from harness.provenance import Provenance
from harness.records import Analysis, Decision, PolicyReceipt, RunResult, RunStatus

__all__ = [
    "SCHEMA_VERSION",
    "DispatchDecision",
    "ExecutionResult",
    "PerformanceMetrics",
    "QualityMetrics",
    "Report",
    "WorkflowAnalysis",
    "write_schema",
]

# 2: ``provenance`` (what the run was made from); reports of version 1 still load, without it.
SCHEMA_VERSION = 2
ReportStatus = RunStatus | Literal["gate_failed", "not_run", "dry_run"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowAnalysis(_Part):
    """What the request was understood to be."""

    workflow_type: str
    confidence: float
    features: tuple[str, ...]
    complexity: str
    complexity_features: tuple[str, ...]
    roles: tuple[str, ...]
    role_confidence: dict[str, float] = Field(default_factory=dict)
    llm: str = Field("", description="what an LLM analysis contributed, or why there was none")
    estimated_duration_s: float
    estimated_tokens: int
    estimate_basis: str
    estimated_coordination_s: float = 0.0

    @classmethod
    def of(cls, analysis: Analysis) -> WorkflowAnalysis:
        """Summarise an Analysis for the report."""
        return cls(
            workflow_type=analysis.workflow_type,
            confidence=analysis.workflow_confidence,
            features=analysis.workflow_features,
            complexity=analysis.complexity,
            complexity_features=analysis.complexity_features,
            roles=analysis.roles,
            role_confidence=analysis.role_confidence,
            llm=analysis.llm,
            estimated_duration_s=analysis.estimate.duration_s,
            estimated_tokens=analysis.estimate.tokens,
            estimate_basis=analysis.estimate.basis,
            estimated_coordination_s=analysis.estimate.coordination_s,
        )


class DispatchDecision(_Part):
    """How the request was served and why."""

    strategy: str
    template: str | None
    params: dict[str, JsonValue]
    confidence: float
    reasoning: str
    candidates: tuple[dict[str, JsonValue], ...] = ()

    @classmethod
    def of(cls, decision: Decision, analysis: Analysis, params: dict[str, Any]) -> DispatchDecision:
        """Summarise a Decision (with the validated parameters) for the report."""
        return cls(
            strategy=decision.strategy,
            template=decision.template,
            params=json.loads(json.dumps(params, default=str)),
            confidence=decision.confidence,
            reasoning=decision.reasoning,
            candidates=tuple(
                {"name": c.name, "confidence": c.confidence, "score": c.score} for c in analysis.candidates[:3]
            ),
        )


class Deliverable(_Part):
    """A file the run produced."""

    path: str
    size: int
    description: str = ""


class ExecutionResult(_Part):
    """What the run did; ``status`` is the host's verdict."""

    status: ReportStatus
    exit_code: int | None = None
    message: str = ""
    phases_completed: int = 0
    phases: tuple[dict[str, JsonValue], ...] = ()
    deliverables: tuple[Deliverable, ...] = ()
    output_dir: str | None = None
    outputs_partial: bool = Field(False, description="some of /output was refused, skipped or past a cap")
    output_conflicts: tuple[str, ...] = Field((), description="outputs skipped because the destination had them")
    result: JsonValue = None
    processed: str = Field("", description="what the script went through, e.g. '600 lines read, 598 parsed, 2 skipped'")
    events_count: int = 0

    @classmethod
    def of(cls, run: RunResult) -> ExecutionResult:
        """Summarise a RunResult for the report."""
        phases: dict[str, bool | None] = {}
        data: JsonValue = None
        for event in run.events:
            if event.kind == "phase":
                phases[event.name] = None if event.status == "start" else event.ok is not False
            elif event.kind == "result":
                data = event.data
        return cls(
            status=run.status,
            exit_code=run.exit_code,
            message=run.message,
            phases_completed=sum(1 for ok in phases.values() if ok),
            phases=tuple({"name": name, "ok": ok} for name, ok in phases.items()),
            deliverables=tuple(Deliverable(path=a.path, size=a.size, description=a.description) for a in run.artifacts),
            output_dir=str(run.output_dir) if run.output_dir else None,
            outputs_partial=run.outputs_partial,
            output_conflicts=run.output_conflicts,
            result=data,
            processed=processed_line(run),
            events_count=run.events_count,
        )


class QualityMetrics(_Part):
    """The static-check gate's verdict on the script that ran."""

    gate_policy: str
    gate_passed: bool
    checks_run: tuple[str, ...]
    findings_by_severity: dict[str, int]
    findings: tuple[dict[str, JsonValue], ...] = ()
    assertions: tuple[AssertionOutcome, ...] = Field(
        (), description="the scaffold's output assertions, checked after the run"
    )


class PerformanceMetrics(_Part):
    """Where the time went, per stage, and the estimate against the actual."""

    total_s: float
    stages_s: dict[str, float]
    container_s: dict[str, float] = Field(default_factory=dict)
    estimated_duration_s: float
    estimated_tokens: int = 0
    tokens_used: int = 0
    tokens: dict[str, int] = Field(default_factory=dict, description="input, output, cache writes and reads")
    token_budget: int = 0
    cost_usd: float = 0.0


class Report(_Part):
    """One request, end to end. Written as ``report.json`` in the run's folder."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    created_at: str = Field(description="UTC, ISO 8601")
    request: str
    workflow_analysis: WorkflowAnalysis
    dispatch_decision: DispatchDecision
    execution_result: ExecutionResult
    quality_metrics: QualityMetrics | None = None
    performance_metrics: PerformanceMetrics
    policy: PolicyReceipt | None = None
    egress: tuple[dict[str, JsonValue], ...] = Field(
        (), description="per host the script fetched from through the host: requests, bytes, refusals"
    )
    script_path: str | None = Field(None, description="the exact script that was checked and run")
    generation: dict[str, JsonValue] | None = Field(None, description="the LLM attempts, for generated scripts")
    provenance: Provenance | None = Field(
        None, description="what the run was made from (command line, inputs and hashes, parameters); None before v2"
    )


def write_schema(path: Path) -> None:
    """Write the report's JSON schema (the documented format) to ``path``."""
    path.write_text(json.dumps(Report.model_json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
