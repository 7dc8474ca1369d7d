"""Serve a plain-language request: analyse, route (one run or a plan), prepare, run, report.

These are the rules of ``harness run`` and ``harness analyze`` for every front-end: what is
checked before any LLM call is paid for, when a request cannot run (a missing parameter, no
usable script, a refused gate: its report is still written), how a multi-job request becomes
a plan. Progress goes to one ``EventSink`` (``harness.progress``). Asking a person to confirm
stays with the front-end: ``run`` takes a ``confirm`` callable. A ``CancelToken`` stops a request
wherever it is: before an LLM call, while one is under way (the request is let go at once and
the call's answer thrown away), or in its container.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from harness.app.cancel import Cancelled, CancelToken
from harness.app.scripts import LimitOverrides
from harness.dispatch.plan import Plan, PlanEstimate
from harness.errors import ConfigError, Fix, GateRefused, InputError
from harness.events import Event
from harness.orchestrate import PlanReport
from harness.progress import (
    Analysed,
    AttemptLine,
    Decided,
    Drafted,
    EventSink,
    Finished,
    GenerationLine,
    LlmCall,
    LlmText,
    PhaseChanged,
    Planned,
    RunEvent,
    Vetted,
)
from harness.provenance import InputRecord, Provenance
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
    "drafted",
    "ensure_runnable",
    "prepare",
    "provenance_of",
    "refuse_if_gated",
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
    argv: tuple[str, ...] = Field((), description="the command line as given, for the report (redacted there)")
    input_origins: tuple[str, ...] = Field(
        (),
        description="the uploaded inputs' absolute paths on the caller's side: the report records these "
        "instead of the staged copies' (whose hashes it keeps)",
    )
    rerun_of: str | None = Field(None, description="the run this request repeats (harness rerun)")

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


def prepare(
    services: Services,
    req: RequestIn,
    *,
    sink: EventSink | None = None,
    cancel: CancelToken | None = None,
    run_id: str | None = None,
) -> Prepared:
    """Analyse, decide, render or generate, and vet ``req``; runs nothing. The caller closes what it returns.

    ``run_id`` names the run (a server passes its job id, so both name one run). Cancelled when
    ``cancel`` is set: no further LLM call starts, and one under way is let go at once.
    """
    llm_sink: Callable[[str], None] | None = None

    def call_sink(number: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("the request was cancelled before its script was ready")
        if sink is not None:
            sink(LlmCall(number=number))

    if sink is not None:
        emit = sink

        def llm_sink(text: str) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("the request was cancelled while its script was being written")
            emit(LlmText(text=text))

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
            run_id=run_id,
        )

    def work() -> Prepared:
        prepared = attempt(req.params)
        values = sole_values(prepared.decision.missing) if req.assume else None
        if values:
            prepared.close()
            prepared = attempt({**req.params, **values})
            taken = ", ".join(f"{name}={value!r}" for name, value in values.items())
            reasoning = f"{prepared.decision.reasoning}; {taken}: the only value the data leaves (assumed, not asked)"
            prepared.decision = prepared.decision.model_copy(update={"reasoning": reasoning})
        return prepared

    prepared = work() if cancel is None else _cancellable(work, cancel)
    if sink is not None:
        sink(Analysed(analysis=prepared.analysis))
        sink(Decided(decision=prepared.decision))
        if prepared.checks is not None:
            codes = tuple(f.code for f in prepared.checks.findings)
            sink(Vetted(policy=prepared.gate_policy, passed=prepared.gate_passed, findings=codes))
        sink(drafted(services, prepared, req))
    return prepared


def drafted(services: Services, prepared: Prepared, req: RequestIn) -> Drafted:
    """What a front-end shows of a prepared request before it runs, as plain data."""
    generation = None
    if prepared.generation is not None:
        record = prepared.generation.record
        generation = GenerationLine(
            id=record.id,
            folder=str(services.settings.generated_dir / record.id),
            tokens=record.tokens.get("input_tokens", 0) + record.tokens.get("output_tokens", 0),
            attempts=tuple(
                AttemptLine(number=a.number, stage=a.stage, problem=a.problem, findings=a.findings)
                for a in record.attempts
            ),
        )
    findings = prepared.checks.findings if prepared.checks is not None else ()
    return Drafted(
        run_id=prepared.run_id,
        run_dir=str(prepared.run_dir),
        generation=generation,
        findings=tuple(f.model_dump(mode="json") for f in findings),
        script=prepared.script if req.dry_run else None,
    )


def _cancellable(work: Callable[[], Prepared], cancel: CancelToken) -> Prepared:
    """``work()``, given up at once when ``cancel`` is set (Cancelled); a late result is closed, not used.

    An LLM call blocks in the SDK until the model answers; the request must not wait for it. The
    call's thread finishes on its own, and its next LLM call or streamed token raises Cancelled.
    """
    lock = threading.Lock()
    wake = threading.Event()
    box: dict[str, Any] = {}

    def thread() -> None:
        try:
            value: Any = work()
            key = "value"
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            value, key = exc, "error"
        with lock:
            if box.get("abandoned"):
                if key == "value":
                    value.close()
                return
            box[key] = value
        wake.set()

    unregister = cancel.on_cancel(wake.set)
    threading.Thread(target=thread, name="harness-prepare", daemon=True).start()
    try:
        wake.wait()
        with lock:
            if "error" in box:
                raise box["error"]
            if "value" not in box:
                box["abandoned"] = True
                raise Cancelled("the request was cancelled before its script was ready")
            prepared: Prepared = box["value"]
    finally:
        unregister()
    if cancel.is_set():
        prepared.close()
        raise Cancelled("the request was cancelled before it ran")
    return prepared


def sole_values(missing: Sequence[MissingInput]) -> dict[str, str] | None:
    """A value for every missing parameter when the data leaves exactly one for each; else None.

    The rule behind ``--yes``: a value is never guessed between several candidates, and anything
    other than a parameter (a scaffold, an LLM, a capability) cannot be assumed at all.
    """
    if not missing or any(m.kind != "param" or m.sole is None for m in missing):
        return None
    return {m.name: m.sole for m in missing if m.sole is not None}


def refuse_if_gated(services: Services, prepared: Prepared, req: RequestIn, *, sink: EventSink | None = None) -> None:
    """GateRefused (its findings named) when the gate refused the script; its report is written first."""
    if prepared.gate_passed:
        return
    report = run_prepared(services, prepared, req, sink=sink)
    findings = prepared.checks.findings if prepared.checks is not None else ()
    raise GateRefused(
        "the static-check gate refused the script",
        hint=f"script, findings and report are in {prepared.run_dir}",
        id=report.run_id,
        findings=[f for f in findings if f.severity != "info"],
    )


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
    made_from = provenance_of(req)
    if not prepared.gate_passed:
        report = harness.execute(prepared, provenance=made_from)
    else:
        report = harness.execute(
            prepared,
            inputs=req.inputs,
            output_dir=req.output_dir,
            output_mode=req.output_mode,
            on_event=on_event,
            limits=req.limits.apply(services.settings.limits) if req.limits != LimitOverrides() else None,
            provenance=made_from,
        )
    if sink is not None:
        sink(Finished(run_id=report.run_id, status=report.execution_result.status))
    return report


def _as_named(records: tuple[InputRecord, ...], origins: Sequence[str]) -> tuple[InputRecord, ...]:
    # Uploaded inputs were hashed as staged; the report names them by the caller's paths. Each
    # input is mounted under its own name (/input/NAME), so the names pair them up.
    by_name = {PurePath(o).name: o for o in origins}
    named = []
    for record in records:
        origin = by_name.get(PurePath(record.given).name)
        named.append(record if origin is None else record.model_copy(update={"given": origin, "resolved": origin}))
    return tuple(named)


def provenance_of(req: RequestIn) -> Provenance:
    """The request's part of a run's provenance: command line, inputs hashed now, parameters and limits given."""
    from harness.provenance import harness_version, record_inputs, redact_argv, redact_params

    return Provenance(
        kind="run",
        argv=redact_argv(req.argv),
        harness_version=harness_version(),
        request=req.request,
        inputs=_as_named(record_inputs(req.inputs), req.input_origins),
        params_given=redact_params(req.params),
        limit_overrides=req.limits.model_dump(mode="json", exclude_none=True),
        output_dir=str(req.output_dir) if req.output_dir is not None else None,
        output_mode=req.output_mode,
        rerun_of=req.rerun_of,
    )


def run(
    services: Services,
    req: RequestIn,
    *,
    sink: EventSink | None = None,
    confirm: Callable[[Prepared], bool] | None = None,
    cancel: CancelToken | None = None,
    run_id: str | None = None,
) -> RequestOutcome:
    """Serve ``req`` as one run: check, prepare, refuse what cannot run, ask ``confirm``, run, report.

    A refused gate still writes the report, then raises GateRefused with the findings; a dry run
    stops after vetting. Plans are not routed here: call ``route`` first (``run_plan`` runs one).
    ``cancel`` stops it before its container starts (Cancelled); the front-end stops a started
    container (``backend.cancel``) when it sees ``run_started``.
    """
    check(req)
    prepared = prepare(services, req, sink=sink, cancel=cancel, run_id=run_id)
    try:
        ensure_runnable(services, prepared)
        if req.dry_run:
            return RequestOutcome(run_id=prepared.run_id, run_dir=prepared.run_dir, outcome="dry_run")
        refuse_if_gated(services, prepared, req, sink=sink)
        if confirm is not None and not confirm(prepared):
            return RequestOutcome(run_id=prepared.run_id, run_dir=prepared.run_dir, outcome="declined")
        if cancel is not None and cancel.is_set():
            raise Cancelled("the request was cancelled before it ran")
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
    from harness.dispatch.plan import describe
    from harness.orchestrate import run_plan as run_phases
    from harness.records import new_run_id

    target = req.output_dir or services.settings.runs_dir / f"plan-{new_run_id()}"
    on_phase = on_event = None
    if sink is not None:
        emit = sink
        sink(Planned(phases=tuple(describe(plan)), output_dir=str(target)))

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
