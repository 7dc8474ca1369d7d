"""Serve a plain-language request: analyse, route (one run or a plan), prepare, run, report.

These are the rules of ``harness run`` and ``harness analyze`` for every front-end: what is
checked before any LLM call is paid for, when a request cannot run (a missing parameter, no
usable script, a refused gate: its report is still written), how a multi-job request becomes
a plan. Progress goes to one ``EventSink`` (``harness.progress``). Asking a person to confirm
stays with the front-end: ``run`` takes a ``confirm`` callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from harness.app.scripts import LimitOverrides
from harness.dispatch.plan import Plan, PlanEstimate
from harness.errors import ConfigError, Fix, GateRefused, InputError
from harness.events import Event
from harness.orchestrate import PlanReport
from harness.progress import Analysed, Decided, EventSink, Finished, LlmCall, LlmText, PhaseChanged, RunEvent, Vetted
from harness.records import Analysis, Decision, MissingInput, OutputMode, Strategy
from harness.report import Report

if TYPE_CHECKING:
    from harness.pipeline import Harness, Prepared
    from harness.services import Services

__all__ = [
    "STRATEGIES",
    "Analyzed",
    "PlanOutcome",
    "PlanSummary",
    "RequestIn",
    "RequestOutcome",
    "Route",
    "analyse",
    "check",
    "ensure_runnable",
    "prepare",
    "route",
    "run",
    "run_plan",
    "run_prepared",
    "sole_values",
]

STRATEGIES: tuple[str, ...] = get_args(Strategy)
# The seed document's short names (its "dispatch strategies") for the same four.
STRATEGY_ALIASES = {
    "template": "use_template",
    "customise": "customise_template",
    "customize": "customise_template",
    "custom": "generate_custom",
}


class RequestIn(BaseModel):
    """A request as a front-end received it: the text, any forced scaffold or strategy, inputs and outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: str
    template: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    strategy: str | None = Field(None, description="force one of STRATEGIES")
    budget: int | None = Field(None, description="token budget for all of this request's LLM calls")
    inputs: tuple[Path, ...] = ()
    output_dir: Path | None = None
    output_mode: OutputMode = "new"
    dry_run: bool = False
    assume: bool = Field(
        False,
        description="take a missing parameter when the data leaves exactly one value for it (the CLI's --yes); "
        "otherwise such a request is refused",
    )
    limits: LimitOverrides = Field(
        default_factory=LimitOverrides, description="this run's limits; unset: the settings'"
    )

    @field_validator("strategy")
    @classmethod
    def _seed_names(cls, value: str | None) -> str | None:
        # The seed's short names for the strategies are accepted as aliases.
        return STRATEGY_ALIASES.get(value, value) if value is not None else None


class PlanSummary(BaseModel):
    """A plan as ``analyze`` shows it: its phases by stage, and what it is expected to cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The seed's "Template Hybridization": a plan combines scaffolds (or scaffolds and custom
    # scripts), so its dispatch is hybrid by construction; each phase row names its own strategy.
    dispatch: Literal["hybrid"] = Field("hybrid", description="how the request as a whole is served: by a plan")
    phases: tuple[dict[str, JsonValue], ...]
    estimate: PlanEstimate


class Analyzed(BaseModel):
    """How a request would be served (``harness analyze --json`` prints exactly this)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis: Analysis
    decision: Decision
    plan: PlanSummary | None = None


class Route(BaseModel):
    """One run, or a plan of several phases with its estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["single", "plan"]
    plan: Plan | None = None
    estimate: PlanEstimate | None = None


class RequestOutcome(BaseModel):
    """What came of ``run``: the report (None for a dry run or a declined confirmation) and why it stopped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    run_dir: Path
    outcome: Literal["ran", "dry_run", "gate_refused", "declined"]
    report: Report | None = None


class PlanOutcome(BaseModel):
    """A finished plan: its report and the folder holding its phases' outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: PlanReport
    output_dir: Path


def _harness(services: Services) -> Harness:
    from harness.pipeline import Harness

    return Harness(services=services)


def analyse(
    services: Services,
    request: str,
    *,
    inputs: Sequence[Path] = (),
    template: str | None = None,
    params: Mapping[str, str] | None = None,
    strategy: str | None = None,
) -> Analyzed:
    """Analyse ``request`` and decide how to serve it as ``run`` would, with the plan if it is several jobs."""
    from harness.dispatch.plan import describe

    if strategy is not None:
        strategy = STRATEGY_ALIASES.get(strategy, strategy)
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}")
    analysis, decision = _harness(services).analyse(
        request, inputs=inputs, template=template, params=params, strategy=strategy
    )
    if template is not None or strategy is not None:
        return Analyzed(analysis=analysis, decision=decision)
    routed = route(services, request)
    plan = None
    if routed.plan is not None and routed.estimate is not None:
        plan = PlanSummary(phases=tuple(describe(routed.plan)), estimate=routed.estimate)
    return Analyzed(analysis=analysis, decision=decision, plan=plan)


def route(services: Services, request: str) -> Route:
    """A plan for a multi-job request (each part analysed once, heuristically), else a single run."""
    from functools import cache

    from harness.dispatch.plan import estimate_plan, split_request
    from harness.orchestrate import plan_workers

    harness = _harness(services)
    # Splitting only asks whether each part is served by a scaffold: the heuristic answers that,
    # and the request's one LLM analysis (if any) is made by prepare, under its budget.
    analysed = cache(lambda part: harness.analyse(part, ask_llm=False))
    plan = split_request(request, lambda part: analysed(part)[1])
    if plan is None:
        return Route(kind="single")
    estimates = {phase.name: analysed(phase.request)[0].estimate for phase in plan.phases}
    return Route(kind="plan", plan=plan, estimate=estimate_plan(plan, estimates, plan_workers()))


def check(req: RequestIn) -> None:
    """What can be refused before any LLM call is paid for: the output folder, the inputs, the strategy."""
    from harness.execution.outputs import check_destination

    if req.output_dir is not None:
        check_destination(req.output_dir, req.output_mode)
    for path in req.inputs:
        if not path.exists():
            raise InputError(f"input path {path} does not exist", hint="check the input's path").fixed_by(
                Fix("give_input", "inputs")
            )
    if req.strategy is not None and req.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {req.strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}")


def prepare(services: Services, req: RequestIn, *, sink: EventSink | None = None) -> Prepared:
    """Analyse, decide, render or generate, and vet ``req``; runs nothing. The caller closes what it returns."""
    llm_sink: Callable[[str], None] | None = None
    call_sink: Callable[[int], None] | None = None
    if sink is not None:
        emit = sink

        def llm_sink(text: str) -> None:
            emit(LlmText(text=text))

        def call_sink(number: int) -> None:
            emit(LlmCall(number=number))

    def attempt(params: dict[str, str]) -> Prepared:
        return _harness(services).prepare(
            req.request,
            template=req.template,
            params=params,
            strategy=req.strategy,
            inputs=req.inputs,
            budget=req.budget,
            on_text=llm_sink,
            on_call=call_sink,
        )

    prepared = attempt(req.params)
    values = sole_values(prepared.decision.missing) if req.assume else None
    if values:
        prepared.close()
        prepared = attempt({**req.params, **values})
        taken = ", ".join(f"{name}={value!r}" for name, value in values.items())
        reasoning = f"{prepared.decision.reasoning}; {taken}: the only value the data leaves (assumed, not asked)"
        prepared.decision = prepared.decision.model_copy(update={"reasoning": reasoning})
    if sink is not None:
        sink(Analysed(analysis=prepared.analysis))
        sink(Decided(decision=prepared.decision))
        if prepared.checks is not None:
            codes = tuple(f.code for f in prepared.checks.findings)
            sink(Vetted(policy=prepared.gate_policy, passed=prepared.gate_passed, findings=codes))
    return prepared


def sole_values(missing: Sequence[MissingInput]) -> dict[str, str] | None:
    """A value for every missing parameter when the data leaves exactly one for each; else None.

    The rule behind ``--yes``: a value is never guessed between several candidates, and anything
    other than a parameter (a scaffold, an LLM, a capability) cannot be assumed at all.
    """
    if not missing or any(m.kind != "param" or m.sole is None for m in missing):
        return None
    return {m.name: m.sole for m in missing if m.sole is not None}


def ensure_runnable(services: Services, prepared: Prepared) -> None:
    """Refuse a prepared request that cannot run: missing inputs (MissingInputs), no usable script (RunError)."""
    from harness.pipeline import check_runnable

    check_runnable(prepared, services.settings.generated_dir)


def run_prepared(services: Services, prepared: Prepared, req: RequestIn, *, sink: EventSink | None = None) -> Report:
    """Run a prepared request (with the run repairs a generated script may get) and write its report.

    A request the gate refused is not run, but its report (``gate_failed``) is still written.
    """
    on_event = None
    if sink is not None:
        emit = sink

        def on_event(event: Event) -> None:
            emit(RunEvent(event=event))

    harness = _harness(services)
    if not prepared.gate_passed:
        report = harness.execute(prepared)
    else:
        report = harness.execute(
            prepared,
            inputs=req.inputs,
            output_dir=req.output_dir,
            output_mode=req.output_mode,
            on_event=on_event,
            limits=req.limits.apply(services.settings.limits) if req.limits != LimitOverrides() else None,
        )
    if sink is not None:
        sink(Finished(run_id=report.run_id, status=report.execution_result.status))
    return report


def run(
    services: Services,
    req: RequestIn,
    *,
    sink: EventSink | None = None,
    confirm: Callable[[Prepared], bool] | None = None,
) -> RequestOutcome:
    """Serve ``req`` as one run: check, prepare, refuse what cannot run, ask ``confirm``, run, report.

    A refused gate still writes the report, then raises GateRefused with the findings; a dry run
    stops after vetting. Plans are not routed here: call ``route`` first (``run_plan`` runs one).
    """
    check(req)
    prepared = prepare(services, req, sink=sink)
    try:
        ensure_runnable(services, prepared)
        if req.dry_run:
            return RequestOutcome(run_id=prepared.run_id, run_dir=prepared.run_dir, outcome="dry_run")
        if not prepared.gate_passed:
            report = run_prepared(services, prepared, req, sink=sink)
            findings = prepared.checks.findings if prepared.checks is not None else ()
            raise GateRefused(
                "the static-check gate refused the script",
                hint=f"script, findings and report are in {prepared.run_dir}",
                id=report.run_id,
                findings=[f for f in findings if f.severity != "info"],
            )
        if confirm is not None and not confirm(prepared):
            return RequestOutcome(run_id=prepared.run_id, run_dir=prepared.run_dir, outcome="declined")
        report = run_prepared(services, prepared, req, sink=sink)
        return RequestOutcome(run_id=prepared.run_id, run_dir=prepared.run_dir, outcome="ran", report=report)
    finally:
        prepared.close()


def run_plan(
    services: Services,
    plan: Plan,
    req: RequestIn,
    *,
    estimate: PlanEstimate | None = None,
    sink: EventSink | None = None,
) -> PlanOutcome:
    """Run ``plan`` on the services' backend, phases in parallel where they may be; its report and folder."""
    from harness.orchestrate import run_plan as run_phases
    from harness.records import new_run_id

    target = req.output_dir or services.settings.runs_dir / f"plan-{new_run_id()}"
    on_phase = on_event = None
    if sink is not None:
        emit = sink

        def on_phase(name: str, state: str, report: Report | None) -> None:
            message = report.execution_result.message if report is not None else ""
            emit(PhaseChanged(phase=name, state=state, run_id=report.run_id if report else None, message=message))

        def on_event(name: str, event: Event) -> None:
            emit(RunEvent(event=event, phase=name))

    report = run_phases(
        _harness(services),
        plan,
        req.request,
        inputs=req.inputs,
        output_dir=target,
        output_mode=req.output_mode,
        backend=services.backend,
        on_phase=on_phase,
        on_event=on_event,
        estimate=estimate,
    )
    if sink is not None:
        sink(Finished(run_id=report.plan_id, status=report.status))
    return PlanOutcome(report=report, output_dir=target)
