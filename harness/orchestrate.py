"""Running a plan: independent phases at the same time, dependents on their predecessors' outputs.

Each phase is a whole request (analyse → decide → render or generate → gate → run → report)
in its own container. A phase that depends on others gets their /output folders read-only
under /input/<phase>. A phase that does not leave its expected files, or whose outputs break
its scaffold's assertions, has failed; its dependents never start on that output. Failure
handling per phase: ``stop`` (schedule nothing more), ``skip`` (its dependents are skipped,
the rest go on), ``retry`` (run it once more) or ``repair`` (with an LLM configured: a new
script that starts from the failed scaffold, told how it failed). Past the plan's deadline or token budget,
optional phases are not started and the result is marked partial.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.dispatch.plan import Plan, PlanEstimate, PlanPhase
from harness.events import Event
from harness.execution.backend import Backend
from harness.execution.outputs import prepare_destination, retry_mode, write_new_file
from harness.records import OutputMode, new_run_id
from harness.report import Report

__all__ = ["PhaseOutcome", "PlanReport", "plan_workers", "run_plan"]

PhaseCallback = Callable[[str, str, Report | None], None]


class PhaseOutcome(BaseModel):
    """How one phase went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    status: str
    template: str | None = None
    started_s: float | None = None
    finished_s: float | None = None
    attempts: int = 0
    run_id: str | None = None
    output_dir: str | None = None
    deliverables: tuple[str, ...] = ()
    outputs_partial: bool = Field(False, description="some of the phase's /output was refused, skipped or past a cap")
    gate_passed: bool | None = None
    assertions_passed: bool | None = Field(None, description="the scaffold's output assertions (None: none checked)")
    reason: str = ""


class PlanReport(BaseModel):
    """A plan's outcome, shaped like the seed's execution and performance reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan_id: str
    request: str
    status: str = Field(description="succeeded only when every phase that had to run succeeded")
    partial: bool
    phases: tuple[PhaseOutcome, ...]
    phases_completed: int
    deliverables: tuple[str, ...]
    wall_s: float
    busy_s: float = Field(description="sum of phase durations")
    parallel_execution_percentage: float = Field(description="time saved by overlap, as % of busy time")
    retries: int
    error_rate: float
    gates_passed: str
    tokens_used: int
    agents_coordinated: tuple[str, ...]
    estimate: PlanEstimate | None = None
    estimate_error: float | None = Field(None, description="wall time over the estimate, minus one")
    report_file: str = Field("plan_report.json", description="this report's file name in the plan's output folder")


def plan_workers(max_parallel: int | None = None) -> int:
    """How many phases run at once: the cores, or fewer if asked, never more than eight."""
    return max(1, min(max_parallel or os.cpu_count() or 2, 8))


def run_plan(
    harness: Any,
    plan: Plan,
    request: str,
    *,
    inputs: Sequence[Path] = (),
    output_dir: Path,
    output_mode: OutputMode = "new",
    backend: Backend,
    on_phase: PhaseCallback | None = None,
    on_event: Callable[[str, Event], None] | None = None,
    max_parallel: int | None = None,
    deadline_s: float | None = None,
    token_budget: int | None = None,
    estimate: PlanEstimate | None = None,
) -> PlanReport:
    """Run ``plan`` with ``backend`` (shared by every phase); returns the plan's report."""
    t0 = time.monotonic()
    workers = plan_workers(max_parallel)
    outcomes: dict[str, PhaseOutcome] = {}
    reports: dict[str, Report] = {}
    lock = threading.Lock()
    prepare_lock = threading.Lock()
    plan_id = f"plan-{new_run_id()}"
    # The plan's folder follows the run rules; its phases' folders inside it are then new
    # (or merged into, when the user asked to merge into an existing plan folder).
    output_dir = prepare_destination(output_dir, output_mode, plan_id)
    phase_mode: OutputMode = "merge" if output_mode == "merge" else "new"

    def notify(name: str, state: str, report: Report | None = None) -> None:
        if on_phase is not None:
            on_phase(name, state, report)

    def run_one(phase: PlanPhase) -> PhaseOutcome:
        start = time.monotonic() - t0
        upstream = [outcomes[d].output_dir for d in phase.depends_on]
        phase_inputs = [*inputs, *(Path(folder) for folder in upstream if folder)]
        attempts = 0
        report = None
        attempt_request: str = phase.request
        strategy: str | None = None
        while True:
            attempts += 1
            notify(phase.name, "running")
            with prepare_lock:  # analysis, rendering and checks are quick; the container runs overlap
                prepared = harness.prepare(
                    attempt_request,
                    template=phase.template,
                    params=phase.params,
                    inputs=phase_inputs,
                    strategy=strategy,
                )
            if prepared.decision.missing:
                prepared.close()
                return PhaseOutcome(
                    name=phase.name,
                    status="not_run",
                    template=phase.template,
                    started_s=start,
                    finished_s=time.monotonic() - t0,
                    attempts=attempts,
                    reason=prepared.decision.missing[0],
                )
            target = output_dir / phase.name
            report = harness.execute(
                prepared,
                inputs=phase_inputs,
                output_dir=target,
                output_mode=phase_mode if attempts == 1 else retry_mode(phase_mode),
                backend=backend,
                on_event=(lambda e, n=phase.name: on_event(n, e)) if on_event else None,
                plan_id=plan_id,
                phase=phase.name,
                attempt=attempts,
            )
            missing = [f for f in phase.expect if not (target / f).is_file()]
            if missing and report.execution_result.status == "succeeded":
                # The quality gate between phases: a phase that did not deliver did not succeed.
                result = report.execution_result.model_copy(
                    update={"status": "failed", "message": f"expected outputs missing: {', '.join(missing)}"}
                )
                report = report.model_copy(update={"execution_result": result})
            if report.execution_result.status == "succeeded" or attempts >= 2:
                break
            if phase.on_failure == "repair" and harness.llm_available:
                # Once more through the LLM: a new script that starts from the scaffold that failed,
                # told how it failed.
                failure = report.execution_result
                attempt_request = (
                    f"{phase.request}\n(The scaffold {phase.template} failed here with status "
                    f"{failure.status}: {failure.message}. Write a script that does the job.)"
                )
                strategy = "hybrid" if phase.template else "generate_custom"
                continue
            if phase.on_failure != "retry":
                break
        with lock:
            reports[phase.name] = report
        result = report.execution_result
        checked = report.quality_metrics.assertions if report.quality_metrics else ()
        return PhaseOutcome(
            name=phase.name,
            status=result.status,
            template=report.dispatch_decision.template,
            started_s=start,
            finished_s=time.monotonic() - t0,
            attempts=attempts,
            run_id=report.run_id,
            output_dir=result.output_dir,
            deliverables=tuple(f"{phase.name}/{d.path}" for d in result.deliverables),
            outputs_partial=result.outputs_partial,
            gate_passed=report.quality_metrics.gate_passed if report.quality_metrics else None,
            assertions_passed=all(a.passed for a in checked) if checked else None,
            reason=result.message,
        )

    harness.history.plan_started(
        plan_id,
        request,
        phases=len(plan.phases),
        stages=len(plan.stages()),
        estimated_s=estimate.duration_s if estimate else None,
    )
    try:
        partial = _schedule(plan, run_one, outcomes, reports, workers, deadline_s, token_budget, notify, t0)
    except BaseException as exc:
        harness.history.plan_finished(plan_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "error")
        raise
    report = _summarise(plan, plan_id, request, outcomes, reports, partial, time.monotonic() - t0, estimate)
    # Next to the phases' folders, like a single run's report.json in its run folder; a merge
    # never overwrites, so an earlier plan's report there stays and this one gets its own name.
    if (output_dir / report.report_file).exists() or (output_dir / report.report_file).is_symlink():
        report = report.model_copy(update={"report_file": f"plan_report-{plan_id}.json"})
    write_new_file(output_dir, report.report_file, report.model_dump_json(indent=2).encode())
    harness.history.plan_finished(
        plan_id,
        report.status,
        partial=int(report.partial),
        wall_s=report.wall_s,
        tokens_used=report.tokens_used,
        report=report.model_dump_json(),
    )
    return report


def _schedule(
    plan: Plan,
    run_one: Callable[[PlanPhase], PhaseOutcome],
    outcomes: dict[str, PhaseOutcome],
    reports: dict[str, Report],
    workers: int,
    deadline_s: float | None,
    token_budget: int | None,
    notify: Callable[..., None],
    t0: float,
) -> bool:
    """Start each phase when its dependencies are done, at most ``workers`` at once; True if the plan went partial."""
    stop = False
    partial = False
    pending = {p.name: p for p in plan.phases}
    running: dict[Future[PhaseOutcome], str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harness-phase") as pool:
        while pending or running:
            late = deadline_s is not None and time.monotonic() - t0 > deadline_s
            spent = sum(r.performance_metrics.tokens_used for r in reports.values())
            over = token_budget is not None and spent > token_budget
            if late or over:
                why = "past the plan's deadline" if late else f"over the plan's token budget ({spent} > {token_budget})"
                for name, phase in list(pending.items()):
                    if phase.optional:
                        outcomes[name] = PhaseOutcome(name=name, status="skipped", reason=why)
                        del pending[name]
                        partial = True
            for name, phase in list(pending.items()):
                if stop:
                    outcomes[name] = PhaseOutcome(name=name, status="skipped", reason="an earlier phase failed")
                    del pending[name]
                    continue
                deps = [outcomes.get(d) for d in phase.depends_on]
                if any(d is not None and d.status != "succeeded" for d in deps):
                    outcomes[name] = PhaseOutcome(
                        name=name, status="skipped", reason="a phase it needs did not succeed"
                    )
                    del pending[name]
                    notify(name, "skipped")
                elif all(d is not None for d in deps):
                    running[pool.submit(run_one, phase)] = name
                    del pending[name]
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                outcome = future.result()
                outcomes[name] = outcome
                notify(name, outcome.status, reports.get(name))
                if outcome.status != "succeeded" and plan.phase(name).on_failure == "stop":
                    stop = True
    return partial


def _summarise(
    plan: Plan,
    plan_id: str,
    request: str,
    outcomes: dict[str, PhaseOutcome],
    reports: dict[str, Report],
    partial: bool,
    wall: float,
    estimate: PlanEstimate | None,
) -> PlanReport:
    """The plan's report, from its phases' outcomes and reports."""
    ordered = tuple(outcomes[p.name] for p in plan.phases)
    ran = [o for o in ordered if o.started_s is not None and o.finished_s is not None]
    busy = sum((o.finished_s or 0.0) - (o.started_s or 0.0) for o in ran)
    failed = [o for o in ran if o.status != "succeeded"]
    # Two gates per phase where both apply: the static checks before the run, the assertions after.
    gates = [g for o in ran for g in (o.gate_passed, o.assertions_passed) if g is not None]
    required_ok = all(o.status == "succeeded" for o in ordered if not (plan.phase(o.name).optional and partial))
    agents = sorted({role for r in reports.values() for role in r.workflow_analysis.roles})
    return PlanReport(
        plan_id=plan_id,
        request=request,
        status="succeeded" if required_ok and ran else "failed",
        partial=partial,
        phases=ordered,
        phases_completed=sum(o.status == "succeeded" for o in ordered),
        deliverables=tuple(d for o in ordered for d in o.deliverables),
        wall_s=round(wall, 3),
        busy_s=round(busy, 3),
        parallel_execution_percentage=round(max(0.0, 1 - wall / busy) * 100, 1) if busy else 0.0,
        retries=sum(max(0, o.attempts - 1) for o in ordered),
        error_rate=round(len(failed) / len(ran), 3) if ran else 0.0,
        gates_passed=f"{sum(gates)}/{len(gates)}",
        tokens_used=sum(r.performance_metrics.tokens_used for r in reports.values()),
        agents_coordinated=tuple(agents),
        estimate=estimate,
        estimate_error=round(round(wall, 3) / estimate.duration_s - 1, 3) if estimate and estimate.duration_s else None,
    )
