"""The spine: analyse → decide → generate → check → run → report. Only this module knows every stage.

``Harness.prepare`` does everything up to the sandbox (so a caller can show the decision and
stop, as ``--dry-run`` does); ``Harness.execute`` runs a prepared request and writes its report.
Every stage's output is kept in the run folder, also when a later stage fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.assertions import AssertionOutcome, verify
from harness.checks import CheckReport, vet
from harness.dispatch import estimate, llm_analyse
from harness.dispatch.analyse import analyse
from harness.dispatch.decide import decide
from harness.dispatch.inputs import inspect_inputs
from harness.errors import ConfigError, MissingInputs, RunError
from harness.events import Event
from harness.execution.backend import Backend
from harness.execution.egress import NO_GRANT, EgressPolicy, FetchBroker
from harness.execution.limits import Limits
from harness.execution.outputs import retry_mode
from harness.generation import author
from harness.generation.agents import AgentBroker, Role
from harness.generation.budget import Budget, cost_usd
from harness.generation.generate import Generation, Generator, record_run
from harness.generation.llm import Llm
from harness.generation.scaffolds import Library, Scaffold
from harness.history.record import record_broken_off, record_finished, record_started
from harness.history.store import HistoryStore, success_factor
from harness.provenance import Provenance, harness_version, record_inputs, redact_params, sha256_text
from harness.records import Analysis, Decision, OutputMode, RunResult, RunSpec, new_run_id
from harness.report import (
    DispatchDecision,
    ExecutionResult,
    PerformanceMetrics,
    QualityMetrics,
    Report,
    WorkflowAnalysis,
)
from harness.runs import apply_retention
from harness.services import Services
from harness.settings import Settings

__all__ = ["Harness", "Prepared", "check_runnable"]

MAX_REQUEST = 20_000


@dataclass
class Prepared:
    """A request taken as far as it can go without running anything."""

    run_id: str
    run_dir: Path
    request: str
    analysis: Analysis
    decision: Decision
    params: dict[str, Any] = field(default_factory=dict)
    script: str | None = None
    checks: CheckReport | None = None
    gate_passed: bool = False
    gate_policy: str = "standard"
    stages_s: dict[str, float] = field(default_factory=dict)
    budget: Budget | None = None
    llm: Llm | None = None
    generator: Generator | None = None
    generation: Generation | None = None
    assertions: tuple[AssertionOutcome, ...] = ()
    fetcher: FetchBroker | None = None

    def close(self) -> None:
        """Release the LLM client, if one was made."""
        if self.llm is not None:
            self.llm.close()

    @property
    def runnable(self) -> bool:
        """True when a script exists, nothing is missing, and the gate passed."""
        return self.script is not None and not self.decision.missing and self.gate_passed


class Harness:
    """The library's front door: requests in, reports out. Its resources come from a ``Services``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        library: Library | None = None,
        backend_factory: Callable[[Settings], Backend] | None = None,
        services: Services | None = None,
    ) -> None:
        if services is not None and (settings is not None or library is not None):
            raise TypeError("pass either services or settings/library, not both")
        # Given services are the caller's: their backend is kept open between runs (a server's warm
        # pool). Services made here keep the old lifecycle: one backend per execute, closed after it.
        self._shared_backend = services is not None and backend_factory is None
        self.services = services or Services(settings or Settings.from_env(), library=library)
        self.settings = self.services.settings
        self._backend_factory = backend_factory

    @property
    def roles(self) -> dict[str, Role]:
        """The agent roles (read once)."""
        return self.services.roles

    @property
    def library(self) -> Library:
        """The scaffold library (loaded once)."""
        return self.services.library

    # -- stages up to the sandbox --------------------------------------------------------------
    def analyse(
        self,
        request: str,
        *,
        ask_llm: bool = True,
        inputs: Sequence[Path] = (),
        template: str | None = None,
        params: Mapping[str, str] | None = None,
        strategy: str | None = None,
    ) -> tuple[Analysis, Decision]:
        """Analyse a request and decide how to serve it, as ``prepare`` would with the same arguments; runs nothing."""
        if template is not None:
            self.library.get(template)  # unknown names fail here, with close matches
        given = dict(params or {})
        if not (self.llm_available and ask_llm):
            return self._analyse_and_decide(_clean_request(request), template, given, strategy, inputs=inputs)
        llm = self.services.llm_for(Budget(self.settings.budget))
        try:
            return self._analyse_and_decide(_clean_request(request), template, given, strategy, llm=llm, inputs=inputs)
        finally:
            llm.close()

    @property
    def history(self) -> HistoryStore:
        """The history store in the data directory (opened once)."""
        return self.services.history

    @property
    def llm_available(self) -> bool:
        """True when an API key is configured (the LLM strategies can run)."""
        return self.settings.anthropic_api_key is not None

    def prepare(
        self,
        request: str,
        *,
        template: str | None = None,
        params: Mapping[str, str] | None = None,
        strategy: str | None = None,
        inputs: Sequence[Path] = (),
        budget: int | None = None,
        on_text: Callable[[str], None] | None = None,
        on_call: Callable[[int], None] | None = None,
        run_id: str | None = None,
    ) -> Prepared:
        """analyse > decide > estimate > author > vet; stops short of running anything (as run ``run_id``, if given)."""
        request = _clean_request(request)
        if template is not None:
            self.library.get(template)  # unknown names fail here, with close matches
        spend = Budget(budget or self.settings.budget)
        llm = self.services.llm_for(spend, on_text=on_text, on_call=on_call) if self.llm_available else None
        with _close_on_error(llm):
            t0 = time.monotonic()
            analysis, decision = self._analyse_and_decide(
                request, template, dict(params or {}), strategy, llm=llm, inputs=inputs
            )
            run_id = run_id or new_run_id()
            prepared = Prepared(
                run_id=run_id,
                run_dir=self.settings.runs_dir / run_id,
                request=request,
                analysis=analysis,
                decision=decision,
                stages_s={"analyse_s": time.monotonic() - t0},
                budget=spend,
                llm=llm,
            )
            if decision.missing:
                return prepared
            if decision.strategy == "use_template":
                assert decision.template is not None
                draft = author.fill(self.library.get(decision.template), decision.params)
                t1 = time.monotonic()
                vetted = vet(draft.script or "", "standard")
                prepared.stages_s.update(draft.seconds, check_s=time.monotonic() - t1)
                prepared.checks, prepared.gate_passed, prepared.gate_policy = vetted.report, vetted.passed, "standard"
            else:
                assert llm is not None
                prepared.generator = Generator(llm, self.library, self.services.generated)
                tokens = prepared.generator.estimate_tokens(request, analysis, decision.strategy, decision.template)
                prepared.analysis = estimate.for_generation(analysis, decision.strategy, tokens)
                draft, prepared.generation = author.write(
                    prepared.generator, request, prepared.analysis, decision, inputs
                )
                written = prepared.generation  # vetted (and repaired) as it was written
                prepared.checks, prepared.gate_passed, prepared.gate_policy = (
                    written.checks,
                    written.gate_passed,
                    written.policy,
                )
                prepared.stages_s.update(draft.seconds)
            prepared.script, prepared.params = draft.script, dict(draft.params)
        return prepared

    # -- the sandbox and the report ---------------------------------------------------------------
    def execute(
        self,
        prepared: Prepared,
        *,
        inputs: Sequence[Path] = (),
        output_dir: Path | None = None,
        output_mode: OutputMode = "new",
        on_event: Callable[[Event], None] | None = None,
        backend: Backend | None = None,
        plan_id: str | None = None,
        phase: str | None = None,
        attempt: int = 1,
        limits: Limits | None = None,
        provenance: Provenance | None = None,
    ) -> Report:
        """run > verify > report > record: run a prepared request (if it may run) and write its report.

        ``provenance`` is what the caller knows of where the run came from (command line, inputs
        hashed before the run, parameters given); the rest (parameters used, scaffold version,
        script hash, limits, runtime) is filled in here.
        """
        scaffold = self._filled(prepared.decision)
        record_started(
            self.history,
            prepared.run_id,
            prepared.request,
            prepared.analysis,
            prepared.decision,
            template_version=scaffold.version if scaffold else None,
            plan_id=plan_id,
            phase=phase,
            attempt=attempt,
        )
        try:
            report = self._execute(
                prepared,
                inputs=inputs,
                output_dir=output_dir,
                output_mode=output_mode,
                on_event=on_event,
                backend=backend,
                limits=limits,
                provenance=provenance,
            )
        except BaseException as exc:
            record_broken_off(self.history, prepared.run_id, exc)
            raise
        finally:
            prepared.close()
        record_finished(
            self.history,
            report,
            llm_calls=prepared.budget.used.calls if prepared.budget else 0,
            generated_id=prepared.generation.record.id if prepared.generation else None,
        )
        # Oldest first, never this run nor what a review, a plan or recent history points at.
        apply_retention(self.settings, keep=(prepared.run_id,))
        return report

    def _execute(
        self,
        prepared: Prepared,
        *,
        inputs: Sequence[Path],
        output_dir: Path | None,
        output_mode: OutputMode,
        on_event: Callable[[Event], None] | None,
        backend: Backend | None,
        limits: Limits | None = None,
        provenance: Provenance | None = None,
    ) -> Report:
        started = time.monotonic()
        folder = self.services.runs.create(prepared.run_id)
        script_path = None
        if prepared.script is not None:
            script_path = folder.write_text("script.py", prepared.script)
        if prepared.checks is not None:
            folder.write_text("checks.json", prepared.checks.model_dump_json(indent=2))
        run = None
        if prepared.runnable:
            assert prepared.script is not None
            egress, egress_warning = self._egress(prepared)
            spec = RunSpec(
                script=prepared.script,
                name="main.py",
                inputs=tuple(inputs),
                output_dir=output_dir or folder.output,
                output_mode=output_mode,
                egress=egress,
                run_id=prepared.run_id,
                limits=limits,
            )
            prepared.fetcher = FetchBroker(EgressPolicy(allow=egress)) if egress else None
            t_run = time.monotonic()
            with folder.events() as log:

                def record(event: Event) -> None:
                    # Past the log's caps an event is counted, not shown either.
                    if log.write(event) and on_event is not None:
                        on_event(event)

                broker = AgentBroker(prepared.llm, self.roles)
                with contextlib.ExitStack() as stack:
                    runner = backend if backend is not None else self._backend_for_run(stack)
                    run = runner.run(spec, on_event=record, on_agent=broker, on_fetch=prepared.fetcher)
                    run = self._repair_runs(prepared, run, spec, runner, record, broker)
            filled = self._filled(prepared.decision)
            declared = filled.assertions if filled is not None else ()
            run, prepared.assertions = verify(run, declared, spec.output_dir, prepared.params)
            run = _explain_missing_grant(prepared, run)
            if egress_warning:  # a withheld grant is said where the run's outcome is read
                message = run.message if run.ok else f"{run.message}; {egress_warning}"
                run = run.model_copy(
                    update={"output_warnings": (*run.output_warnings, egress_warning), "message": message}
                )
            prepared.stages_s["run_s"] = time.monotonic() - t_run
            folder.write_text("result.json", run.model_dump_json(indent=2, exclude={"events"}))
        report = self._report(prepared, run, script_path, time.monotonic() - started)
        made_from = self._provenance(prepared, run, provenance, inputs, output_dir, output_mode, limits)
        report = report.model_copy(update={"provenance": made_from})
        folder.write_text("report.json", report.model_dump_json(indent=2))
        return report

    def run_request(
        self,
        request: str,
        *,
        template: str | None = None,
        params: Mapping[str, str] | None = None,
        inputs: Sequence[Path] = (),
        output_dir: Path | None = None,
        output_mode: OutputMode = "new",
        on_event: Callable[[Event], None] | None = None,
    ) -> Report:
        """Serve a request end to end; MissingInputs or RunError when it cannot run (the CLI's rules)."""
        prepared = self.prepare(request, template=template, params=params, inputs=inputs)
        try:
            check_runnable(prepared, self.settings.generated_dir)
        except BaseException:
            prepared.close()
            raise
        return self.execute(prepared, inputs=inputs, output_dir=output_dir, output_mode=output_mode, on_event=on_event)

    # -- internals ------------------------------------------------------------------------------
    def _analyse_and_decide(
        self,
        request: str,
        template: str | None,
        params: dict[str, str],
        strategy: str | None = None,
        *,
        llm: Llm | None = None,
        inputs: Sequence[Path] = (),
    ) -> tuple[Analysis, Decision]:
        """analyse > second opinion > decide > estimate: every step a function of the data it is given."""
        scaffolds, settings = self.library.scaffolds, self.settings
        outcomes = self.history.evidence({s.name: s.version for s in scaffolds})
        facts = inspect_inputs(inputs) if inputs else None
        analysis = analyse(request, scaffolds, outcomes=outcomes, facts=facts, given=params)
        analysis = llm_analyse.second_opinion(
            analysis,
            llm,
            scaffolds,
            list(self.roles),
            factor={name: success_factor(ok, bad) for name, (ok, bad) in outcomes.items()},
            mode=settings.llm_analysis,
            threshold=settings.match_threshold,
            forced=template is not None or strategy is not None,
        )
        decision = decide(
            analysis,
            {s.name: s for s in scaffolds},
            template=template,
            params=params,
            threshold=settings.match_threshold,
            llm=self.llm_available,
            strategy=strategy,
        )
        analysis = estimate.from_history(analysis, decision, self.history.medians)
        if llm is not None:
            filled = self._filled(decision) if decision.strategy == "use_template" else None
            agents = filled.agents if filled is not None else ()
            max_tokens = {name: role.max_tokens for name, role in self.roles.items()}
            analysis = estimate.with_agent_calls(analysis, decision, agents, max_tokens)
        return estimate.with_budget(analysis, llm.budget.limit if llm else None), decision

    def _repair_runs(
        self,
        prepared: Prepared,
        run: RunResult,
        spec: RunSpec,
        runner: Backend,
        record: Callable[[Event], None],
        broker: AgentBroker,
    ) -> RunResult:
        """After a failed run of a generated script, ask for fixes and run again (up to the setting)."""
        generation, generator = prepared.generation, prepared.generator
        if generation is None or generator is None:
            return run
        record_run(generation, generator.store, run)
        for _ in range(self.settings.run_repairs):
            if run.ok or prepared.generation is None or _hosts_wanted(run):
                break  # a script that needs a network grant is not fixed by rewriting it
            generator.repair_after_run(generation, run, prepared.request)
            if not generation.gate_passed or generation.script is None or generation.why_stopped:
                break
            prepared.script, prepared.checks = generation.script, generation.checks
            # Code the LLM rewrote after the run was never reviewed: it gets no egress, whatever the first
            # run had; the first attempt's outputs are in the folder this run made: the next replaces them.
            again = {"script": generation.script, "egress": (), "output_mode": retry_mode(spec.output_mode)}
            run = runner.run(spec.model_copy(update=again), on_event=record, on_agent=broker)
            record_run(generation, generator.store, run)
        return run

    def _filled(self, decision: Decision) -> Scaffold | None:
        """The library scaffold whose own template serves this decision (None for LLM-written code)."""
        template = decision.template
        if decision.strategy not in ("use_template", "customise_template") or not template:
            return None
        return self.library.get(template) if template in self.library else None

    def _egress(self, prepared: Prepared) -> tuple[tuple[str, ...], str | None]:
        """Egress for this run and why any was withheld: a scaffold's grant only as its promotion sealed it."""
        from harness.review.policy import scaffold_egress

        scaffold = self._filled(prepared.decision)
        if scaffold is None:
            return (), None  # never LLM code
        return scaffold_egress(self.services.generated.trust, scaffold)

    def _provenance(
        self,
        prepared: Prepared,
        run: RunResult | None,
        given: Provenance | None,
        inputs: Sequence[Path],
        output_dir: Path | None,
        output_mode: OutputMode,
        limits: Limits | None,
    ) -> Provenance:
        """The caller's part of the provenance (or a bare one), completed with what only this run knows."""
        base = given or Provenance(
            kind="run", harness_version=harness_version(), request=prepared.request, inputs=record_inputs(inputs)
        )
        scaffold = self._filled(prepared.decision)
        applied = run.policy.limits if run is not None else (limits or self.settings.limits).receipt()
        runtime = {"runtime": self.settings.runtime or "runc"}
        if run is not None:
            runtime["image"] = run.image
        if prepared.generation is not None:
            runtime["model"] = self.settings.model
        used = json.loads(json.dumps(redact_params(prepared.params), default=str))
        stated = prepared.analysis.stated_params
        return base.model_copy(
            update={
                "request": prepared.request,
                "params_used": used,
                "params_bound": {k: v for k, v in used.items() if k in stated and k not in base.params_given},
                "param_notes": prepared.analysis.param_notes,
                "strategy": prepared.decision.strategy,
                "template": prepared.decision.template,
                "template_version": scaffold.version if scaffold is not None else None,
                "generated_id": prepared.generation.record.id if prepared.generation is not None else None,
                "script_sha256": sha256_text(prepared.script) if prepared.script is not None else None,
                "limits": json.loads(json.dumps(applied, default=str)),
                "output_dir": str(output_dir) if output_dir is not None else base.output_dir,
                "output_mode": output_mode,
                "runtime": runtime,
            }
        )

    def _backend_for_run(self, stack: contextlib.ExitStack) -> Backend:
        """The services' long-lived backend, or one made for this run alone and closed with ``stack``."""
        if self._shared_backend:
            return self.services.backend
        if self._backend_factory is not None:
            return stack.enter_context(self._backend_factory(self.settings))
        from harness.execution.docker import DockerBackend

        return stack.enter_context(DockerBackend(self.settings, pool_size=0))

    def _report(self, prepared: Prepared, run: Any, script_path: Path | None, took: float) -> Report:
        if run is not None:
            execution = ExecutionResult.of(run)
        elif prepared.script is not None and not prepared.gate_passed:
            execution = ExecutionResult(status="gate_failed", message="the static-check gate refused the script")
        else:
            execution = ExecutionResult(
                status="not_run", message="; ".join(m.summary() for m in prepared.decision.missing)
            )
        quality = None
        if prepared.checks is not None:
            checks = prepared.checks
            quality = QualityMetrics(
                gate_policy=prepared.gate_policy,
                gate_passed=prepared.gate_passed,
                checks_run=tuple(checks.checkers_run),
                findings_by_severity=dict(checks.counts),
                findings=tuple(json.loads(f.model_dump_json()) for f in checks.findings),
                assertions=prepared.assertions,
            )
        stages = {k: round(v, 4) for k, v in prepared.stages_s.items()}
        # Everything before execute() (analyse, render or generate, check) plus execute() itself,
        # which already contains the sandbox run.
        before = sum(v for k, v in prepared.stages_s.items() if k != "run_s")
        total = round(before + took, 4)
        return Report(
            run_id=prepared.run_id,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            request=prepared.request,
            workflow_analysis=WorkflowAnalysis.of(prepared.analysis),
            dispatch_decision=DispatchDecision.of(prepared.decision, prepared.analysis, prepared.params),
            execution_result=execution,
            quality_metrics=quality,
            performance_metrics=PerformanceMetrics(
                total_s=total,
                stages_s=stages,
                container_s={k: round(v, 4) for k, v in (run.timings if run is not None else {}).items()},
                estimated_duration_s=prepared.analysis.estimate.duration_s,
                estimated_tokens=prepared.analysis.estimate.tokens,
                tokens_used=prepared.budget.used.total if prepared.budget else 0,
                tokens=prepared.budget.used.model_dump(exclude={"calls"}) if prepared.budget else {},
                token_budget=prepared.budget.limit if prepared.budget else 0,
                cost_usd=cost_usd(prepared.budget.used, self.settings.model) if prepared.budget else 0.0,
            ),
            generation=_generation_summary(prepared),
            policy=run.policy if run is not None else None,
            egress=tuple(prepared.fetcher.summary()) if prepared.fetcher else (),
            script_path=str(script_path) if script_path else None,
        )


def check_runnable(prepared: Prepared, generated_dir: Path) -> None:
    """Refuse a prepared request that cannot run: missing inputs (MissingInputs), no usable script (RunError).

    A script the gate refused is not refused here: its report is still written (``execute``).
    """
    missing = prepared.decision.missing
    if missing:
        raise MissingInputs(
            f"cannot run this request yet: missing {missing[0].summary()}",
            hint=prepared.decision.reasoning,
            missing=missing,
        )
    generation = prepared.generation
    if generation is not None and prepared.script is None:
        raise RunError(
            f"no usable script: {generation.why_stopped or 'the model gave no code'}",
            hint=f"the attempts are kept in {generated_dir / generation.record.id}",
            run_id=prepared.run_id,
        )


def _hosts_wanted(run: RunResult) -> list[str]:
    """Hosts the script tried to fetch from with no egress granted."""
    return sorted({e.host or "?" for e in run.events if e.kind == "fetch_reply" and not e.ok and e.error == NO_GRANT})


def _explain_missing_grant(prepared: Prepared, run: RunResult) -> RunResult:
    """A failed run that wanted the network says which hosts, and how a reviewer grants them."""
    hosts = _hosts_wanted(run)
    if run.ok or not hosts:
        return run
    how = (
        f"review it, then harness review approve {prepared.generation.record.id} --allow-host {hosts[0]}"
        if prepared.generation is not None
        else "grant it through review (harness review approve ID --allow-host HOST)"
    )
    return run.model_copy(update={"message": f"{run.message}; it needs network access to {', '.join(hosts)}: {how}"})


def _generation_summary(prepared: Prepared) -> dict[str, Any] | None:
    generation = prepared.generation
    if generation is None:
        return None
    record = generation.record
    return {
        "id": record.id,
        "strategy": record.strategy,
        "base_scaffold": record.base_scaffold,
        "model": record.model,
        "attempts": [
            {
                "number": a.number,
                "stage": a.stage,
                "problem": a.problem,
                "findings": list(a.findings),
                "gate_passed": a.gate_passed,
                "run_status": a.run_status,
            }
            for a in record.attempts
        ],
        "why_stopped": generation.why_stopped,
        "status": record.status,
    }


@contextlib.contextmanager
def _close_on_error(llm: Llm | None) -> Iterator[None]:
    """Close the request's LLM client if preparing fails; on success the Prepared owns it."""
    try:
        yield
    except BaseException:
        if llm is not None:
            llm.close()
        raise


def _clean_request(request: str) -> str:
    text = request.strip()
    if not text:
        raise ConfigError("the request is empty", hint='say what you want, e.g. harness run "summarise the CSVs"')
    if len(text) > MAX_REQUEST:
        raise ConfigError(
            f"the request is {len(text)} characters long",
            hint=f"keep it under {MAX_REQUEST}; give data as input files",
        )
    return text
