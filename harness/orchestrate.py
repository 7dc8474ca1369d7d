"""Running a plan: independent phases at the same time, dependents on their predecessors' outputs.

Each phase is a whole request (analyse → decide → render or generate → gate → run → report)
in its own container. A phase that depends on others gets their /output folders read-only
under /input/<phase>. A phase that does not leave its expected files, or whose outputs break
its scaffold's assertions, has failed; its dependents never start on that output. Failure
handling per phase: ``stop`` (schedule nothing more), ``skip`` (its dependents are skipped,
the rest go on), ``retry`` (run it once more) or ``repair`` (with an LLM configured: a new
script that starts from the failed scaffold, told how it failed). Past the plan's deadline or token budget,
optional phases are not started and the result is marked partial.

Those rules live in ``harness.schedule.next_steps``, a pure function; ``run_plan`` is a loop
that asks it what to do, hands each phase attempt (a ``PhaseTask``) to an ``Executor`` and
records what comes back. ``ThreadExecutor`` runs attempts here through ``PipelinePhases``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from harness.dispatch.plan import Plan, PlanEstimate, PlanPhase
from harness.events import Event
from harness.execution.backend import Backend
from harness.execution.outputs import prepare_destination, retry_mode, write_new_file
from harness.records import OutputMode, new_run_id
from harness.report import Report
from harness.schedule import PhaseOutcome, next_steps, retries

__all__ = [
    "Executor",
    "PhaseOutcome",
    "PhaseResult",
    "PhaseRunner",
    "PhaseTask",
    "PipelinePhases",
    "PlanReport",
    "ThreadExecutor",
    "plan_workers",
    "run_plan",
]

PhaseCallback = Callable[[str, str, Report | None], None]


class PlanReport(BaseModel):
    """A plan's outcome, shaped like the seed's execution and performance reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan_id: str
    request: str
    dispatch: Literal["hybrid"] = Field("hybrid", description="a plan serves the request; phases have their own")
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


class PhaseTask(BaseModel):
    """One attempt of one phase, as data: what an executor hands to whoever runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: PlanPhase
    attempt: int = 1
    request: str = Field(description="the request for this attempt (a repair's says how the last attempt failed)")
    strategy: str | None = None
    inputs: tuple[Path, ...] = Field((), description="the plan's inputs, then the output folders of its dependencies")


class PhaseResult(BaseModel):
    """A finished attempt: its outcome and, when it ran, its report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: PhaseOutcome
    report: Report | None = None


PhaseRunner = Callable[[PhaseTask], PhaseResult]


class Executor(Protocol):
    """Runs phase attempts somewhere (threads here, workers later) and hands back each as it finishes."""

    def submit(self, task: PhaseTask) -> None:
        """Start ``task`` (or queue it until there is room)."""

    def next_finished(self) -> PhaseResult:
        """Block until one submitted attempt finishes; its result (re-raises what the attempt raised)."""


class ThreadExecutor:
    """An executor on a pool of threads in this process, each attempt given to ``runner``.

    Attempts wait here until a thread is free, retries first: a retry takes the thread its
    failed attempt just left, as when it ran in the same thread, and on an error or an
    interrupt the attempts not yet started are dropped rather than run.
    """

    def __init__(self, runner: PhaseRunner, workers: int) -> None:
        self._runner, self._workers = runner, workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harness-phase")
        self._running: set[Future[PhaseResult]] = set()
        self._waiting: list[PhaseTask] = []
        self._retries: list[PhaseTask] = []

    def submit(self, task: PhaseTask) -> None:
        """Queue ``task``; it starts when a thread is free (at the latest on the next ``next_finished``)."""
        (self._retries if task.attempt > 1 else self._waiting).append(task)

    def next_finished(self) -> PhaseResult:
        """Start what fits, then block until one attempt finishes and return its result."""
        # Started here rather than in submit, so retries submitted after a finish go first.
        while (self._retries or self._waiting) and len(self._running) < self._workers:
            task = (self._retries or self._waiting).pop(0)
            self._running.add(self._pool.submit(self._runner, task))
        if not self._running:
            raise RuntimeError("no phase attempt was submitted")
        done, _ = wait(self._running, return_when=FIRST_COMPLETED)
        future = next(iter(done))
        self._running.discard(future)
        return future.result()

    def __enter__(self) -> ThreadExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        # Attempts already running finish (their containers are cleaned up by the backend).
        self._waiting.clear()
        self._retries.clear()
        self._pool.shutdown(wait=True)


class PipelinePhases:
    """Runs a phase attempt in this process: prepare, then execute in the plan's folder with ``backend``."""

    def __init__(
        self,
        harness: Any,
        backend: Backend,
        *,
        output_dir: Path,
        output_mode: OutputMode,
        plan_id: str,
        t0: float,
        on_phase: PhaseCallback | None = None,
        on_event: Callable[[str, Event], None] | None = None,
    ) -> None:
        self.harness, self.backend, self.output_dir, self.output_mode = harness, backend, output_dir, output_mode
        self.plan_id, self.t0, self.on_phase, self.on_event = plan_id, t0, on_phase, on_event

    def __call__(self, task: PhaseTask) -> PhaseResult:
        """Run one attempt of ``task.phase``."""
        phase, start = task.phase, time.monotonic() - self.t0
        if self.on_phase is not None:
            self.on_phase(phase.name, "running", None)
        # Phases prepare at once: the services they share are thread-safe, and each prepare has its own LLM.
        prepared = self.harness.prepare(
            task.request,
            template=phase.template,
            params=phase.params,
            inputs=list(task.inputs),
            strategy=task.strategy,
        )
        if prepared.decision.missing:
            prepared.close()
            outcome = PhaseOutcome(
                name=phase.name,
                status="not_run",
                template=phase.template,
                strategy=prepared.decision.strategy,
                started_s=start,
                finished_s=time.monotonic() - self.t0,
                attempts=task.attempt,
                reason=f"missing {prepared.decision.missing[0].summary()}",
            )
            return PhaseResult(outcome=outcome)
        target = self.output_dir / phase.name
        on_event = self.on_event
        report: Report = self.harness.execute(
            prepared,
            inputs=list(task.inputs),
            output_dir=target,
            output_mode=self.output_mode if task.attempt == 1 else retry_mode(self.output_mode),
            backend=self.backend,
            on_event=(lambda e: on_event(phase.name, e)) if on_event else None,
            plan_id=self.plan_id,
            phase=phase.name,
            attempt=task.attempt,
        )
        missing = [f for f in phase.expect if not (target / f).is_file()]
        if missing and report.execution_result.status == "succeeded":
            # The quality gate between phases: a phase that did not deliver did not succeed.
            result = report.execution_result.model_copy(
                update={"status": "failed", "message": f"expected outputs missing: {', '.join(missing)}"}
            )
            report = report.model_copy(update={"execution_result": result})
        result = report.execution_result
        checked = report.quality_metrics.assertions if report.quality_metrics else ()
        outcome = PhaseOutcome(
            name=phase.name,
            status=result.status,
            template=report.dispatch_decision.template,
            strategy=report.dispatch_decision.strategy,
            started_s=start,
            finished_s=time.monotonic() - self.t0,
            attempts=task.attempt,
            run_id=report.run_id,
            output_dir=result.output_dir,
            deliverables=tuple(f"{phase.name}/{d.path}" for d in result.deliverables),
            outputs_partial=result.outputs_partial,
            gate_passed=report.quality_metrics.gate_passed if report.quality_metrics else None,
            assertions_passed=all(a.passed for a in checked) if checked else None,
            reason=result.message,
        )
        return PhaseResult(outcome=outcome, report=report)


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
    executor: Executor | None = None,
) -> PlanReport:
    """Run ``plan`` with ``backend`` (shared by every phase), or on ``executor`` if given; returns the plan's report."""
    t0 = time.monotonic()
    plan_id = f"plan-{new_run_id()}"
    # The plan's folder follows the run rules; its phases' folders inside it are then new
    # (or merged into, when the user asked to merge into an existing plan folder).
    output_dir = prepare_destination(output_dir, output_mode, plan_id)
    runner = PipelinePhases(
        harness,
        backend,
        output_dir=output_dir,
        output_mode="merge" if output_mode == "merge" else "new",
        plan_id=plan_id,
        t0=t0,
        on_phase=on_phase,
        on_event=on_event,
    )
    # Asked only when a phase could be repaired, as before: a fake harness need not answer.
    repair = any(p.on_failure == "repair" for p in plan.phases) and bool(harness.llm_available)
    harness.history.plan_started(
        plan_id,
        request,
        phases=len(plan.phases),
        stages=len(plan.stages()),
        estimated_s=estimate.duration_s if estimate else None,
    )
    try:
        with contextlib.ExitStack() as stack:
            running_on = executor or stack.enter_context(ThreadExecutor(runner, plan_workers(max_parallel)))
            outcomes, reports, partial = _drive(
                plan, running_on, tuple(inputs), t0, deadline_s, token_budget, repair, on_phase
            )
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


def _drive(
    plan: Plan,
    executor: Executor,
    inputs: tuple[Path, ...],
    t0: float,
    deadline_s: float | None,
    token_budget: int | None,
    repair: bool,
    on_phase: PhaseCallback | None,
) -> tuple[dict[str, PhaseOutcome], dict[str, Report], bool]:
    """Ask ``next_steps``, submit what is ready, record what finishes, until nothing runs; the plan's results."""
    outcomes: dict[str, PhaseOutcome] = {}
    reports: dict[str, Report] = {}
    running: set[str] = set()
    partial = False
    while True:
        steps = next_steps(
            plan,
            outcomes,
            running=running,
            elapsed_s=time.monotonic() - t0,
            tokens_used=sum(r.performance_metrics.tokens_used for r in reports.values()),
            deadline_s=deadline_s,
            budget=token_budget,
            repair=repair,
        )
        for skip in steps.skipped:
            outcomes[skip.name] = skip.outcome()
            partial = partial or skip.partial
            if on_phase is not None:
                # Every skip is announced (deadline, budget and stop too), so no phase is left
                # showing "waiting" in a live plan table after the plan ended.
                on_phase(skip.name, "skipped", None)
        for start in steps.ready:
            executor.submit(_task(plan.phase(start.name), start.attempt, inputs, outcomes))
            running.add(start.name)
        if not running:
            break
        done = executor.next_finished()
        name = done.outcome.name
        running.discard(name)
        previous = outcomes.get(name)
        # A retry's outcome spans both attempts, from the first one's start.
        outcomes[name] = done.outcome.model_copy(update={"started_s": previous.started_s}) if previous else done.outcome
        if done.report is not None:
            reports[name] = done.report
        else:
            reports.pop(name, None)  # a phase's report is its last attempt's, as before
        if on_phase is not None and not retries(plan.phase(name), outcomes[name], repair=repair):
            on_phase(name, outcomes[name].status, reports.get(name))
    if len(outcomes) != len(plan.phases):
        # next_steps settles every phase that cannot wait on a running one; this is a bug if reached.
        undecided = [p.name for p in plan.phases if p.name not in outcomes]
        raise RuntimeError(f"plan stalled with phases undecided: {', '.join(undecided)}")
    return outcomes, reports, partial


def _task(phase: PlanPhase, attempt: int, inputs: tuple[Path, ...], outcomes: Mapping[str, PhaseOutcome]) -> PhaseTask:
    """The task for this attempt: inputs plus its dependencies' outputs, and a repair's request."""
    upstream = [outcomes[d].output_dir for d in phase.depends_on]
    folders = (*inputs, *(Path(folder) for folder in upstream if folder))
    previous = outcomes.get(phase.name)
    if attempt > 1 and previous is not None and phase.on_failure == "repair":
        # Once more through the LLM: a new script that starts from the scaffold that failed,
        # told how it failed.
        request = (
            f"{phase.request}\n(The scaffold {phase.template} failed here with status "
            f"{previous.status}: {previous.reason}. Write a script that does the job.)"
        )
        return PhaseTask(
            phase=phase,
            attempt=attempt,
            request=request,
            strategy="hybrid" if phase.template else "generate_custom",
            inputs=folders,
        )
    return PhaseTask(phase=phase, attempt=attempt, request=phase.request, inputs=folders)


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
