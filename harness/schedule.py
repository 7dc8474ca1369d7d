"""Plan scheduling as data: which phases start now, which are skipped and why, which are retried.

``next_steps`` looks only at the plan, the phases' outcomes so far and the clock and token
counts it is given; it starts no thread and touches no engine, so the thread executor here and
a distributed one later share the same rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.dispatch.plan import Plan, PlanPhase

__all__ = ["PhaseOutcome", "Skip", "SkipCause", "Start", "Steps", "next_steps", "retries"]

# A phase runs at most this many times (the first run and one retry or repair).
MAX_ATTEMPTS = 2

SkipCause = Literal["dependency", "stopped", "deadline", "budget"]


class PhaseOutcome(BaseModel):
    """How one phase went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    status: str
    template: str | None = None
    strategy: str | None = Field(None, description="how the phase's script was made (use_template, hybrid, ...)")
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


class Start(BaseModel):
    """A phase to start now, and which attempt this is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    attempt: int = 1


class Skip(BaseModel):
    """A phase that will not run, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    reason: str
    cause: SkipCause

    @property
    def partial(self) -> bool:
        """True when the skip makes the plan's result partial (an optional phase dropped for time or tokens)."""
        return self.cause in ("deadline", "budget")

    def outcome(self) -> PhaseOutcome:
        """The outcome recorded for this phase."""
        return PhaseOutcome(name=self.name, status="skipped", reason=self.reason)


class Steps(BaseModel):
    """What to do next: phases (or retries) to start, in plan order with retries first, and phases to skip."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ready: tuple[Start, ...] = ()
    skipped: tuple[Skip, ...] = ()


def retries(phase: PlanPhase, outcome: PhaseOutcome, *, repair: bool = False) -> bool:
    """True if ``outcome`` is a failed attempt of ``phase`` that its policy runs once more."""
    if outcome.status in ("succeeded", "skipped", "not_run") or outcome.attempts >= MAX_ATTEMPTS:
        # not_run: the request lacked something; running it again would lack it again.
        return False
    return phase.on_failure == "retry" or (phase.on_failure == "repair" and repair)


def next_steps(
    plan: Plan,
    outcomes: Mapping[str, PhaseOutcome],
    *,
    running: Collection[str] = (),
    elapsed_s: float,
    tokens_used: int,
    deadline_s: float | None = None,
    budget: int | None = None,
    repair: bool = False,
) -> Steps:
    """The phases to start and to skip now, given the latest outcome of each finished attempt.

    ``running`` names the phases whose attempt has not finished; ``repair`` says whether a
    ``repair`` phase can be regenerated (an LLM is configured). A failed attempt that its
    policy retries is not final: its dependents wait for the retry.
    """
    final = {
        name: outcome for name, outcome in outcomes.items() if not retries(plan.phase(name), outcome, repair=repair)
    }
    ready = [
        Start(name=p.name, attempt=outcomes[p.name].attempts + 1)
        for p in plan.phases
        if p.name in outcomes and p.name not in final and p.name not in running
    ]
    pending = [p for p in plan.phases if p.name not in outcomes and p.name not in running]
    skipped: list[Skip] = []

    def skip(phase: PlanPhase, reason: str, cause: SkipCause) -> None:
        skipped.append(Skip(name=phase.name, reason=reason, cause=cause))
        final[phase.name] = skipped[-1].outcome()
        pending.remove(phase)

    late = deadline_s is not None and elapsed_s > deadline_s
    over = budget is not None and tokens_used > budget
    if late or over:
        why = "past the plan's deadline" if late else f"over the plan's token budget ({tokens_used} > {budget})"
        for phase in [p for p in pending if p.optional]:
            skip(phase, why, "deadline" if late else "budget")
    # Only a phase that ran and failed under ``stop`` stops the plan; one skipped for its
    # dependencies does not, whatever its policy.
    stop = any(
        o.attempts > 0 and o.status != "succeeded" and plan.phase(n).on_failure == "stop" for n, o in final.items()
    )
    changed = True
    while changed:  # a skip can skip its dependents in turn
        changed = False
        for phase in list(pending):
            deps = [final.get(d) for d in phase.depends_on]
            if stop:
                skip(phase, "an earlier phase failed", "stopped")
            elif any(d is not None and d.status != "succeeded" for d in deps):
                skip(phase, "a phase it needs did not succeed", "dependency")
                changed = True
            elif all(d is not None for d in deps):
                ready.append(Start(name=phase.name))
                pending.remove(phase)
    return Steps(ready=tuple(ready), skipped=tuple(skipped))
