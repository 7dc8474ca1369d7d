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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.assertions import AssertionOutcome, check_outputs
from harness.checks import CheckReport, gate, run_checks
from harness.dispatch import llm_analyse
from harness.dispatch.analyse import analyse, rank_scaffolds
from harness.dispatch.decide import decide
from harness.errors import ConfigError, MissingInputs
from harness.events import Event
from harness.execution.backend import Backend
from harness.execution.egress import NO_GRANT, EgressPolicy, FetchBroker
from harness.execution.outputs import retry_mode
from harness.generation.agents import AgentBroker, Role
from harness.generation.budget import Budget, cost_usd
from harness.generation.generate import Generation, Generator, record_run
from harness.generation.llm import Llm
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import Library, Scaffold
from harness.history.store import HistoryStore, success_factor
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

__all__ = ["Harness", "Prepared"]

MAX_REQUEST = 20_000
HISTORY_MIN_RUNS = 3  # fewer past runs than this and the priors stay
AGENT_PROMPT_TOKENS = 1500  # a scaffold's agent prompt (findings, summaries) plus the role's system prompt


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
    def analyse(self, request: str, *, ask_llm: bool = True) -> tuple[Analysis, Decision]:
        """Analyse a request and decide how to serve it (asking the LLM if configured and wanted); runs nothing."""
        if not (self.llm_available and ask_llm):
            return self._analyse_and_decide(_clean_request(request), None, {})
        llm = Llm(self.settings, Budget(self.settings.budget))
        try:
            return self._analyse_and_decide(_clean_request(request), None, {}, llm=llm)
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
    ) -> Prepared:
        """Analyse, decide, then render or generate, and check; stops short of running anything."""
        request = _clean_request(request)
        stages: dict[str, float] = {}
        t0 = time.monotonic()
        if template is not None:
            self.library.get(template)  # unknown names fail here, with close matches
        spend = Budget(budget or self.settings.budget)
        llm = Llm(self.settings, spend, on_text=on_text, on_call=on_call) if self.llm_available else None
        try:
            analysis, decision = self._analyse_and_decide(request, template, dict(params or {}), strategy, llm=llm)
        except BaseException:
            if llm is not None:
                llm.close()
            raise
        stages["analyse_s"] = time.monotonic() - t0
        run_id = new_run_id()
        prepared = Prepared(
            run_id=run_id,
            run_dir=self.settings.runs_dir / run_id,
            request=request,
            analysis=analysis,
            decision=decision,
            stages_s=stages,
            budget=spend,
            llm=llm,
        )
        if decision.missing:
            return prepared
        if decision.strategy != "use_template":
            assert prepared.llm is not None
            t1 = time.monotonic()
            prepared.generator = Generator(prepared.llm, self.library, self.services.generated)
            tokens = prepared.generator.estimate_tokens(request, analysis, decision.strategy, decision.template)
            analysis = (
                analysis
                if analysis.estimate.from_history
                else analysis.model_copy(
                    update={
                        "estimate": analysis.estimate.model_copy(
                            update={
                                "duration_s": analysis.estimate.duration_s + 30.0,
                                "tokens": tokens,
                                "basis": f"the {decision.strategy} prompt as sent plus a typical script, one attempt",
                            }
                        )
                    }
                )
            )
            prepared.analysis = analysis
            try:
                generation = prepared.generator.generate(
                    request, analysis, decision.strategy, base=decision.template, inputs=inputs
                )
            except BaseException:
                prepared.close()
                raise
            prepared.generation = generation
            prepared.script, prepared.checks = generation.script, generation.checks
            prepared.gate_passed, prepared.gate_policy = generation.gate_passed, generation.policy
            prepared.params = dict(generation.record.parameters)
            stages["generate_s"] = time.monotonic() - t1
            return prepared
        assert decision.template is not None
        scaffold = self.library.get(decision.template)
        t1 = time.monotonic()
        prepared.params = validate_params(scaffold, decision.params)
        prepared.script = render(scaffold, prepared.params)
        stages["render_s"] = time.monotonic() - t1
        t2 = time.monotonic()
        prepared.gate_policy = "standard"
        prepared.checks = run_checks(prepared.script, prepared.gate_policy)
        prepared.gate_passed = gate(prepared.checks, prepared.gate_policy).passed
        stages["check_s"] = time.monotonic() - t2
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
    ) -> Report:
        """Run a prepared request in the sandbox (if it may run) and write its report."""
        analysis, decision = prepared.analysis, prepared.decision
        self.history.started(
            prepared.run_id,
            prepared.request,
            workflow_type=analysis.workflow_type,
            complexity=analysis.complexity,
            strategy=decision.strategy,
            template=decision.template,
            template_version=scaffold.version if (scaffold := self._filled(decision)) else None,
            confidence=decision.confidence,
            estimated_duration_s=analysis.estimate.duration_s,
            estimated_tokens=analysis.estimate.tokens,
            plan_id=plan_id,
            phase=phase,
            attempt=attempt,
            analysis=analysis.model_dump_json(),
            decision=decision.model_dump_json(),
        )
        try:
            report = self._execute(
                prepared,
                inputs=inputs,
                output_dir=output_dir,
                output_mode=output_mode,
                on_event=on_event,
                backend=backend,
            )
        except KeyboardInterrupt:
            self.history.finished(prepared.run_id, "interrupted")
            raise
        except BaseException:
            self.history.finished(prepared.run_id, "error")
            raise
        finally:
            prepared.close()
        result = report.execution_result
        self.history.finished(
            prepared.run_id,
            result.status,
            exit_code=result.exit_code,
            duration_s=report.performance_metrics.total_s,
            tokens_used=report.performance_metrics.tokens_used,
            llm_calls=prepared.budget.used.calls if prepared.budget else 0,
            gate_passed=report.quality_metrics.gate_passed if report.quality_metrics else None,
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
            run = self._check_assertions(prepared, run, spec.output_dir)
            run = _explain_missing_grant(prepared, run)
            if egress_warning:  # a withheld grant is said where the run's outcome is read
                message = run.message if run.ok else f"{run.message}; {egress_warning}"
                run = run.model_copy(
                    update={"output_warnings": (*run.output_warnings, egress_warning), "message": message}
                )
            prepared.stages_s["run_s"] = time.monotonic() - t_run
            folder.write_text("result.json", run.model_dump_json(indent=2, exclude={"events"}))
        report = self._report(prepared, run, script_path, time.monotonic() - started)
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
        """Serve a request end to end; raises UserError when it cannot run as asked."""
        prepared = self.prepare(request, template=template, params=params, inputs=inputs)
        if prepared.decision.missing:
            prepared.close()
            raise MissingInputs(
                f"cannot run this request: missing {prepared.decision.missing[0].summary()}",
                hint=prepared.decision.reasoning,
                missing=prepared.decision.missing,
            )
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
    ) -> tuple[Analysis, Decision]:
        scaffolds = self.library.scaffolds
        outcomes = self.history.evidence({s.name: s.version for s in scaffolds})
        analysis = analyse(request, scaffolds, outcomes=outcomes)
        forced = template is not None or strategy is not None
        analysis = self._second_opinion(analysis, llm, outcomes, forced=forced)
        decision = decide(
            analysis,
            {s.name: s for s in scaffolds},
            template=template,
            params=params,
            threshold=self.settings.match_threshold,
            llm=self.llm_available,
            strategy=strategy,
        )
        analysis = self._estimate_from_history(analysis, decision)
        if llm is not None:
            analysis = self._with_agent_calls(analysis, decision)
        budgeted = analysis.estimate.model_copy(update={"token_budget": llm.budget.limit if llm else None})
        return analysis.model_copy(update={"estimate": budgeted}), decision

    def _second_opinion(
        self, analysis: Analysis, llm: Llm | None, outcomes: Mapping[str, tuple[float, float]], *, forced: bool
    ) -> Analysis:
        """The heuristic analysis, with the LLM's judgements merged in where it is more confident."""
        if llm is None:
            return analysis.model_copy(update={"llm": "no LLM configured"})
        if forced:
            return analysis.model_copy(update={"llm": "not asked: the scaffold or strategy was chosen explicitly"})
        mode = self.settings.llm_analysis
        if not llm_analyse.wanted(mode, analysis, self.settings.match_threshold):
            why = "turned off (HARNESS_LLM_ANALYSIS=off)" if mode == "off" else "the heuristic analysis is confident"
            return analysis.model_copy(update={"llm": f"not asked: {why}"})
        by_name = {s.name: s for s in self.library.scaffolds}
        roles = sorted(self.roles)
        shortlist = [c.name for c in rank_scaffolds(analysis.request, self.library.scaffolds)]
        verdict, problem = llm_analyse.ask(llm, analysis.request, self.library.scaffolds, roles, shortlist)
        if verdict is None:
            return analysis.model_copy(update={"llm": problem})
        factor = {name: success_factor(ok, bad) for name, (ok, bad) in outcomes.items()}
        return llm_analyse.merge(analysis, verdict, by_name, roles, factor=factor)

    def _with_agent_calls(self, analysis: Analysis, decision: Decision) -> Analysis:
        """A scaffold that asks agents spends tokens when an LLM is configured: count its calls in."""
        scaffold = self._filled(decision) if decision.strategy == "use_template" else None
        agents = scaffold.agents if scaffold is not None else ()
        if not agents or analysis.estimate.from_history:  # history's medians include them
            return analysis
        roles = self.roles
        tokens = sum(AGENT_PROMPT_TOKENS + (roles[a].max_tokens if a in roles else 1024) for a in agents)
        estimate = analysis.estimate.model_copy(
            update={
                "tokens": analysis.estimate.tokens + tokens,
                "basis": f"{analysis.estimate.basis}; up to {len(agents)} agent call(s) of ~{tokens} tokens",
            }
        )
        merged = dict(analysis.role_confidence)
        for agent in agents:
            merged[agent] = max(merged.get(agent, 0.0), round(decision.confidence, 3))
        merged = dict(sorted(merged.items(), key=lambda kv: kv[1], reverse=True))
        return analysis.model_copy(update={"estimate": estimate, "roles": tuple(merged), "role_confidence": merged})

    def _estimate_from_history(self, analysis: Analysis, decision: Decision) -> Analysis:
        """With three or more past runs like this one, their medians replace the priors."""
        if decision.strategy == "use_template" and decision.template:
            n, seconds, tokens = self.history.medians(template=decision.template, strategy="use_template")
            what = f"{decision.template} runs"
        else:
            n, seconds, tokens = self.history.medians(strategy=decision.strategy)
            what = f"{decision.strategy} runs"
        if n < HISTORY_MIN_RUNS:
            return analysis
        estimate = analysis.estimate.model_copy(
            update={
                "duration_s": round(seconds, 3),
                "tokens": tokens,
                "basis": f"median of {n} past {what}",
                "from_history": True,
            }
        )
        return analysis.model_copy(update={"estimate": estimate})

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

    def _check_assertions(self, prepared: Prepared, run: RunResult, output_dir: Path | None) -> RunResult:
        """A filled scaffold's run has failed when its outputs break what the scaffold asserts about them."""
        scaffold = self._filled(prepared.decision)
        if not (run.ok and scaffold is not None and output_dir is not None):
            return run
        prepared.assertions = check_outputs(scaffold.assertions, output_dir, prepared.params)
        broken = [a for a in prepared.assertions if not a.passed]
        if not broken:
            return run
        message = f"scaffold assertion failed: {broken[0].description} ({broken[0].detail})"
        if len(broken) > 1:
            message += f", and {len(broken) - 1} more"
        return run.model_copy(update={"status": "failed", "message": message})

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


def _clean_request(request: str) -> str:
    text = request.strip()
    if not text:
        raise ConfigError("the request is empty", hint='say what you want, e.g. harness run "summarise the CSVs"')
    if len(text) > MAX_REQUEST:
        raise ConfigError(
            f"the request is {len(text)} characters long",
            hint=f"keep it under {MAX_REQUEST}; put data in --input files",
        )
    return text
