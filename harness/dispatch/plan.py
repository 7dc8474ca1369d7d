"""Plans: a request that names several jobs becomes a small DAG of phases.

"summarise the CSVs by region and find the errors in the logs, then archive the results"
becomes two independent phases (run at the same time) and a third that depends on both and
sees their outputs under /input. Each phase is served like a single request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.records import Decision, Estimate, Strategy

__all__ = ["FailurePolicy", "Plan", "PlanEstimate", "PlanPhase", "describe", "estimate_plan", "split_request"]

# Coordination costs a plan adds on top of its phases' own: preparing each phase (analysis,
# rendering, checks) is serialised, and each later stage waits to collect and mount its inputs.
PHASE_PREPARE_S = 0.3
STAGE_HANDOFF_S = 0.2

FailurePolicy = Literal["stop", "skip", "retry", "repair"]
_STAGE = re.compile(r"\s*(?:,?\s*\b(?:and\s+)?then\b|;|\bafter that\b|\bfinally\b)\s*", re.IGNORECASE)
_PARALLEL = re.compile(r"\s*(?:,\s*and\b|\band\s+also\b|\bin parallel with\b|,|\band\b)\s*", re.IGNORECASE)


class PlanPhase(BaseModel):
    """One sandbox run in a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,60}$")
    request: str
    template: str | None = None
    strategy: Strategy | None = Field(None, description="how this phase's script is made, as decided when planning")
    params: dict[str, str] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    on_failure: FailurePolicy = "stop"
    optional: bool = False
    expect: tuple[str, ...] = Field((), description="files the phase must leave in its outputs (a quality gate)")


class Plan(BaseModel):
    """Phases and their dependencies; validated to be a DAG over known names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phases: tuple[PlanPhase, ...]

    @model_validator(mode="after")
    def _acyclic(self) -> Plan:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be unique")
        unknown = sorted({d for p in self.phases for d in p.depends_on} - set(names))
        if unknown:
            raise ValueError(f"unknown dependencies: {', '.join(unknown)}")
        self.stages()  # raises on a cycle
        return self

    def stages(self) -> list[list[str]]:
        """Phases in layers; each layer depends only on earlier ones and may run in parallel."""
        remaining = {p.name: set(p.depends_on) for p in self.phases}
        layers: list[list[str]] = []
        while remaining:
            ready = sorted(n for n, deps in remaining.items() if not deps)
            if not ready:
                raise ValueError(f"dependency cycle among: {', '.join(sorted(remaining))}")
            layers.append(ready)
            for name in ready:
                del remaining[name]
            for deps in remaining.values():
                deps.difference_update(ready)
        return layers

    def phase(self, name: str) -> PlanPhase:
        """The phase called ``name``."""
        return next(p for p in self.phases if p.name == name)


def split_request(request: str, decide: Callable[[str], Decision]) -> Plan | None:
    """A plan when the request names two or more jobs that scaffolds serve; otherwise None.

    Stages are split on sequencing words (then, after that, finally, ";"); inside a stage,
    parts joined by "and" or commas become parallel phases only if each part on its own is
    served confidently, each by a different scaffold; otherwise the stage stays one phase.
    """
    stages = [s.strip(" ,.") for s in _STAGE.split(request) if s and s.strip(" ,.")]
    phases: list[PlanPhase] = []
    previous: list[str] = []
    for stage in stages:
        parts = [p.strip(" ,.") for p in _PARALLEL.split(stage) if p and p.strip(" ,.")]
        decisions = [(part, decide(part)) for part in parts]
        distinct = len({d.template for _, d in decisions}) == len(decisions)
        if len(parts) < 2 or not distinct or not all(_servable(d) for _, d in decisions):
            decisions = [(stage, decide(stage))]
        current = []
        for part, decision in decisions:
            name = _name(decision.template or "custom", {p.name for p in phases})
            phases.append(
                PlanPhase(
                    name=name,
                    request=part,
                    template=decision.template,
                    strategy=decision.strategy,
                    params={k: str(v) for k, v in decision.params.items()},
                    depends_on=tuple(previous),
                )
            )
            current.append(name)
        previous = current
    if len(phases) < 2:
        return None
    return Plan(phases=tuple(phases))


def _servable(decision: Decision) -> bool:
    return decision.strategy == "use_template" and not decision.missing


def _name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def describe(plan: Plan) -> list[dict[str, Any]]:
    """The plan as rows for display: stage, phase, scaffold, dependencies."""
    rows = []
    for index, layer in enumerate(plan.stages(), 1):
        for name in layer:
            phase = plan.phase(name)
            rows.append(
                {
                    "stage": index,
                    "phase": name,
                    "template": phase.template,
                    "strategy": phase.strategy,
                    "depends_on": list(phase.depends_on),
                    "parallel": len(layer) > 1,
                    "request": phase.request,
                }
            )
    return rows


class PlanEstimate(BaseModel):
    """What a plan is expected to take: its critical path plus coordination, and its tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: float
    sequential_s: float = Field(description="the same phases one after another")
    coordination_s: float = Field(description="what running them as a plan adds: preparation and hand-overs")
    tokens: int
    basis: str


def estimate_plan(plan: Plan, estimates: dict[str, Estimate], workers: int) -> PlanEstimate:
    """Each stage takes as long as its phases packed onto ``workers`` slots; stages run in sequence."""
    workers = max(1, workers)
    total = 0.0
    for layer in plan.stages():
        slots = [0.0] * min(workers, len(layer))
        # Longest first onto the least loaded slot: close to the scheduler's real packing.
        for duration in sorted((estimates[n].duration_s for n in layer), reverse=True):
            slots[slots.index(min(slots))] += duration
        total += max(slots)
    stages = len(plan.stages())
    coordination = PHASE_PREPARE_S * len(plan.phases) + STAGE_HANDOFF_S * (stages - 1)
    sequential = sum(e.duration_s for e in estimates.values())
    bases = sorted({e.basis.split(";")[0] for e in estimates.values()})
    return PlanEstimate(
        duration_s=round(total + coordination, 3),
        sequential_s=round(sequential + coordination, 3),
        coordination_s=round(coordination, 3),
        tokens=sum(e.tokens for e in estimates.values()),
        basis=f"{stages} stage(s) on {workers} worker(s); phases: " + " | ".join(bases),
    )
