"""The history stage: a request's run is recorded when it starts and when it ends (or breaks off).

Kept apart from the store so the pipeline's last step reads as one call each way, and so what a
row says about a run (estimate, decision, outcome, tokens) is decided in one place.
"""

from __future__ import annotations

from harness.history.store import HistoryStore
from harness.records import Analysis, Decision
from harness.report import Report

__all__ = ["failure_cause", "record_broken_off", "record_finished", "record_started"]

# The sandbox contract's exit codes for "not my fault": 2, the inputs or parameters cannot be
# used (no such column, no matching file); 3, nothing in the inputs could be read.
INPUT_EXIT_CODES = (2, 3)
ENVIRONMENT_STATUSES = ("timed_out", "oom_killed", "output_limit", "error", "interrupted", "cancelled")


def record_started(
    history: HistoryStore,
    run_id: str,
    request: str,
    analysis: Analysis,
    decision: Decision,
    *,
    template_version: str | None = None,
    plan_id: str | None = None,
    phase: str | None = None,
    attempt: int = 1,
) -> None:
    """A run begins: what was asked, how it was decided, and what it was expected to cost."""
    history.started(
        run_id,
        request,
        workflow_type=analysis.workflow_type,
        complexity=analysis.complexity,
        strategy=decision.strategy,
        template=decision.template,
        template_version=template_version,
        confidence=decision.confidence,
        estimated_duration_s=analysis.estimate.duration_s,
        estimated_tokens=analysis.estimate.tokens,
        plan_id=plan_id,
        phase=phase,
        attempt=attempt,
        analysis=analysis.model_dump_json(),
        decision=decision.model_dump_json(),
    )


def failure_cause(report: Report) -> str | None:
    """Whose fault a failed run was: ``input`` (the user's data or parameters), ``environment``, or ``scaffold``.

    Only scaffold failures count against a scaffold in dispatch; a user's unreadable files or
    a run the machine cut short say nothing about whether the scaffold works.
    """
    result = report.execution_result
    if result.status == "succeeded":
        return None
    if result.status in ENVIRONMENT_STATUSES:
        return "environment"
    if result.status == "failed" and result.exit_code in INPUT_EXIT_CODES:
        return "input"
    return "scaffold"


def record_finished(history: HistoryStore, report: Report, *, llm_calls: int, generated_id: str | None) -> None:
    """A run ended with a report: its status, time, tokens, gate verdict and, for a failure, whose it was."""
    result = report.execution_result
    history.finished(
        report.run_id,
        result.status,
        exit_code=result.exit_code,
        duration_s=report.performance_metrics.total_s,
        tokens_used=report.performance_metrics.tokens_used,
        llm_calls=llm_calls,
        gate_passed=report.quality_metrics.gate_passed if report.quality_metrics else None,
        generated_id=generated_id,
        cause=failure_cause(report),
    )


def record_broken_off(history: HistoryStore, run_id: str, exc: BaseException) -> None:
    """A run ended with no report: interrupted (Ctrl-C) or an error."""
    history.finished(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "error", cause="environment")
