"""LLM generation with repair loops: write, gate, fix; run, fix. Every attempt is kept.

Strategies: ``generate_custom`` (a new script from the contract and examples), ``hybrid`` (a new
script that starts from a scaffold) and ``customise_template`` (the LLM only fills a scaffold's
parameters, validated by its schema). Generated code is gated under the strict policy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.checks import CheckReport, gate, run_checks
from harness.errors import ConfigError
from harness.generation import prompts
from harness.generation.budget import cost_usd
from harness.generation.llm import Answer, Llm
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import Library, Scaffold
from harness.records import Analysis, RunResult
from harness.review.store import Attempt, GeneratedRecord, GeneratedStore, summarise

__all__ = ["Generation", "Generator"]

TYPICAL_SCRIPT_TOKENS = 2500  # a 150-line script with its explanation


@dataclass
class Generation:
    """Where generation stands: the record, the current script and its gate verdict."""

    record: GeneratedRecord
    script: str | None = None
    checks: CheckReport | None = None
    gate_passed: bool = False
    policy: str = "strict"
    codes: dict[int, str] = field(default_factory=dict)
    why_stopped: str = ""


class Generator:
    """Writes scripts with the LLM for one request and keeps every attempt in the store."""

    def __init__(self, llm: Llm, library: Library, store: GeneratedStore) -> None:
        self.llm = llm
        self.library = library
        self.store = store

    # -- entry points ------------------------------------------------------------------------------
    def generate(
        self,
        request: str,
        analysis: Analysis,
        strategy: str,
        *,
        base: str | None = None,
        inputs: Sequence[Path] = (),
    ) -> Generation:
        """Produce a gated script for ``request`` with ``strategy``; attempts up to the setting."""
        record = GeneratedRecord(
            id=self.store.new_id(),
            created_at=self.store.now(),
            request=request,
            analysis=json.loads(analysis.model_dump_json()),
            strategy=strategy,
            base_scaffold=base,
            model=self.llm.settings.model,
        )
        generation = Generation(record=record)
        try:
            if strategy == "customise_template" and base is not None:
                self._customise(generation, self.library.get(base), request)
            else:
                self._write_loop(generation, request, strategy, base, inputs)
        finally:
            self._save(generation)
        return generation

    def repair_after_run(self, generation: Generation, run: RunResult, request: str) -> Generation:
        """One more write-and-gate cycle, feeding back how the run failed."""
        events = "\n".join(e.model_dump_json() for e in run.events[-15:])
        feedback = prompts.repair_after_run(run.status, run.exit_code, run.message, run.stderr_tail, events)
        try:
            self._write_loop(generation, request, "run_repair", generation.record.base_scaffold, (), feedback=feedback)
        finally:
            self._save(generation)
        return generation

    def estimate_tokens(self, request: str, analysis: Analysis, strategy: str, base: str | None) -> int:
        """Tokens one attempt should take: the prompt as it will be sent, plus a typical script."""
        examples = [] if strategy == "customise_template" else self._examples(request, analysis, base)
        prompt = len(json.dumps(prompts.system_blocks(examples))) + len(request) + 2000
        return prompt // 4 + TYPICAL_SCRIPT_TOKENS

    # -- internals -----------------------------------------------------------------------------------
    def _examples(self, request: str, analysis: Analysis, base: str | None) -> list[tuple[str, str]]:
        names = [base] if base else [c.name for c in analysis.candidates[:3] if c.confidence > 0][:3]
        if not names:
            names = [c.name for c in analysis.candidates[:1]]
        examples = []
        for name in names:
            if name in self.library:
                scaffold = self.library.get(name)
                example = scaffold.examples[0]
                examples.append(
                    (f"{scaffold.name}: {example.request}", render(scaffold, validate_params(scaffold, example.params)))
                )
        return examples

    def _write_loop(
        self,
        generation: Generation,
        request: str,
        strategy: str,
        base: str | None,
        inputs: Sequence[Path],
        *,
        feedback: str = "",
    ) -> None:
        analysis = Analysis.model_validate(generation.record.analysis)
        examples = self._examples(request, analysis, base)
        system = prompts.system_blocks(examples)
        base_source = None
        if strategy == "hybrid" and base is not None:
            base_source = (base, examples[0][1]) if examples else None
        first = prompts.request_message(
            request, prompts.describe_inputs(inputs), strategy, base_source, [f"- {u}" for u in analysis.unmet]
        )
        if not generation.record.prompt_hash:
            generation.record.prompt_hash = prompts.prompt_hash(system, first)
        stage = "run_repair" if strategy == "run_repair" else "generate"
        previous = generation.script
        seen = set(generation.codes.values())
        for _ in range(self.llm.settings.gate_attempts):
            message = first
            if previous is not None and feedback:
                message += f"\n\nYour previous script:\n```python\n{previous}\n```\n\n{feedback}"
            elif feedback:
                message += f"\n\n{feedback}"
            answer = self.llm.write_script(system, [{"role": "user", "content": message}])
            number = len(generation.record.attempts) + 1
            if answer.draft is None:
                self._attempt(generation, number, stage, message, answer, problem=answer.problem)
                feedback = f"Your answer could not be used: {answer.problem}. Answer with the write_script tool."
                stage = "gate_repair" if stage == "generate" else stage
                continue
            code = answer.draft.code
            generation.codes[number] = code
            if code in seen:
                self._attempt(generation, number, stage, message, answer, problem="repeated an earlier attempt")
                generation.why_stopped = "the model repeated an earlier attempt"
                return
            seen.add(code)
            checks = run_checks(code, "strict")
            verdict = gate(checks, "strict")
            self._attempt(generation, number, stage, message, answer, checks=checks, passed=verdict.passed)
            generation.script, generation.checks, generation.gate_passed = code, checks, verdict.passed
            generation.record.parameters = dict(answer.draft.parameters)
            generation.record.explanation = answer.draft.explanation
            if verdict.passed:
                generation.why_stopped = ""
                return
            previous = code
            feedback = prompts.repair_after_findings(verdict.blocking)
            stage = "gate_repair"
        generation.why_stopped = f"no script passed the gate in {self.llm.settings.gate_attempts} attempt(s)"

    def _customise(self, generation: Generation, scaffold: Scaffold, request: str) -> None:
        """Let the LLM fill the scaffold's parameters; the scaffold's own schema validates them."""
        schema = {
            name: {
                "description": p.description,
                "example": p.example,
                "type": p.type,
                **({"choices": list(p.choices)} if p.choices else {}),
            }
            for name, p in scaffold.parameters.items()
        }
        message = (
            f"Request: {request}\n\nFill the parameters of the scaffold {scaffold.name!r} for this request. "
            f"Parameters: {json.dumps(schema)}\nAnswer with the write_script tool: put a one-line "
            "`pass` in code and the parameter values in parameters."
        )
        system = prompts.system_blocks([])
        generation.record.prompt_hash = prompts.prompt_hash(system, message)
        answer = self.llm.write_script(system, [{"role": "user", "content": message}])
        raw = dict(answer.draft.parameters) if answer.draft else dict((answer.tool_input or {}).get("parameters") or {})
        try:
            params = validate_params(scaffold, raw)
        except ConfigError as exc:
            self._attempt(generation, 1, "customise", message, answer, problem=exc.one_line())
            generation.why_stopped = f"the model's parameters did not fit {scaffold.name}: {exc.one_line()}"
            return
        script = render(scaffold, params)
        checks = run_checks(script, "standard")
        verdict = gate(checks, "standard")
        self._attempt(generation, 1, "customise", message, answer, checks=checks, passed=verdict.passed)
        generation.record.parameters = json.loads(json.dumps(params, default=str))
        generation.script, generation.checks, generation.gate_passed = script, checks, verdict.passed
        generation.policy = "standard"
        generation.codes[1] = script

    def _attempt(
        self,
        generation: Generation,
        number: int,
        stage: str,
        message: str,
        answer: Answer,
        *,
        problem: str = "",
        checks: CheckReport | None = None,
        passed: bool = False,
    ) -> None:
        code = answer.draft.code if answer.draft else None
        generation.record.attempts.append(
            Attempt(
                number=number,
                stage=stage,
                prompt_summary=summarise(message, 600),
                response=summarise({"text": answer.text, "tool": answer.tool_input}, 2000),
                code_sha256=hashlib.sha256(code.encode()).hexdigest() if code else None,
                problem=problem,
                findings=tuple(
                    f"{f.code}@{f.line}" for f in (checks.findings if checks else ()) if f.severity != "info"
                ),
                gate_passed=passed,
                tokens=answer.usage.total,
            )
        )

    def _save(self, generation: Generation) -> None:
        used = self.llm.budget.used
        generation.record.tokens = used.model_dump()
        generation.record.cost_usd = cost_usd(used, generation.record.model)
        generation.record.gate_passed = generation.gate_passed
        self.store.save(
            generation.record,
            script=generation.script,
            attempt_code=generation.codes,
            checks_json=generation.checks.model_dump_json(indent=2) if generation.checks else None,
        )


def record_run(generation: Generation, store: GeneratedStore, run: RunResult) -> None:
    """Note a sandbox run of the current script: appended to runs.jsonl, never a rewrite of meta.json."""
    generation.record.runs.append(run.run_id)
    attempt = None
    if generation.record.attempts:
        last = generation.record.attempts[-1]
        attempt = last.number
        generation.record.attempts[-1] = last.model_copy(update={"run_status": run.status})
    store.record_run(generation.record.id, run.run_id, run.status, attempt)
