"""Repeat a run from its recorded provenance: ``harness rerun RUN_ID``, for every front-end.

A rerun makes no LLM call and never widens what the original had:

- a request served by a scaffold is rendered again from the library's scaffold with the
  parameters the run used, vetted again, and run with the same limits (a scaffold changed since
  is said, one line);
- a generated script runs as the reviewed bytes of its record, through
  ``review.policy.authorize_rerun`` (unreviewed: default limits and no network, as for
  ``harness exec --generated``);
- an ``exec`` run runs its own ``script.py`` again, if its hash is the one recorded.

Before anything runs, every recorded input is hashed again: a changed file is a warning, a file
that is gone is a refusal naming it. Environment values and secret-looking parameters were never
recorded, so they must be given again. The new run's provenance names the original (``rerun_of``).
Plans are refused: their phases pass outputs to each other in one plan folder, which a rerun of
the request would have to re-plan; each phase can be rerun by its own run id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.app.scripts import PROVENANCE_FILE, LimitOverrides, ScriptOutcome, ScriptRun, exec_script
from harness.errors import InputError, InvalidInput, NotFound, RunPrunedError, Tampered
from harness.provenance import REDACTED, Provenance, check_inputs, sha256_text
from harness.records import Decision, OutputMode, RunStatus, new_run_id
from harness.report import Report

if TYPE_CHECKING:
    from harness.app.scripts import EventSink
    from harness.pipeline import Prepared
    from harness.progress import EventSink as RequestSink
    from harness.services import Services

__all__ = ["RerunIn", "RerunOutcome", "load_provenance", "rerun"]

_GENERATED = ("customise_template", "hybrid", "generate_custom")


class RerunIn(BaseModel):
    """Which run to repeat, where its outputs go, and the values that were never recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    of: str = Field(description="the run to repeat")
    new_id: str = Field(default_factory=new_run_id, description="the new run's id")
    output_dir: Path | None = Field(None, description="None: the new run's folder")
    output_mode: OutputMode = "new"
    env: dict[str, str] = Field(default_factory=dict, description="values for the recorded environment names")
    params: dict[str, str] = Field(default_factory=dict, description="values for redacted (secret) parameters")
    argv: tuple[str, ...] = Field((), description="this command line, for the new run's provenance")


class RerunOutcome(BaseModel):
    """The new run: its id and folder, the original's id, what changed since, and its report or result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rerun_of: str
    kind: Literal["run", "exec"]
    run_id: str
    run_dir: Path
    status: RunStatus | Literal["gate_failed", "not_run", "dry_run"]
    warnings: tuple[str, ...] = Field((), description="one line each: inputs or scaffolds changed since the run")
    report: Report | None = Field(None, description="a request's rerun: its report")
    script: ScriptOutcome | None = Field(None, description="an exec run's rerun: its outcome")


def load_provenance(services: Services, run_id: str) -> Provenance:
    """The recorded provenance of run ``run_id``; NotFound (with how to find ids), InvalidInput when it has none."""
    if run_id.startswith("plan-"):
        raise InvalidInput(
            f"{run_id} is a plan: plans are not rerun as a whole",
            hint="its phases pass outputs to each other in one plan folder; rerun a phase by its run id "
            "(listed in its plan_report.json and in harness history)",
            name="run_id",
        )
    try:
        folder = services.runs.load(run_id)
    except RunPrunedError:
        raise
    except NotFound:
        raise NotFound(
            f"no run {run_id}",
            hint="list run ids with harness history (or harness runs list)",
            id=run_id,
        ) from None
    for name in ("report.json", PROVENANCE_FILE):
        path = folder.path / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            recorded = data.get("provenance") if name == "report.json" else data
            if recorded is not None:
                return Provenance.model_validate(recorded)
        except (OSError, ValueError, ValidationError, AttributeError) as exc:
            raise InvalidInput(f"run {run_id}'s {name} cannot be read: {exc}", hint="it cannot be rerun") from None
    raise InvalidInput(
        f"run {run_id} has no recorded provenance (it ran before reports recorded one, or did not finish)",
        hint="run the request again instead",
        name="run_id",
    )


def rerun(
    services: Services,
    req: RerunIn,
    *,
    sink: EventSink | None = None,
    request_sink: RequestSink | None = None,
    warn: Callable[[str], None] | None = None,
) -> RerunOutcome:
    """Repeat run ``req.of`` from its provenance; see the module docstring for what is and is not repeated.

    ``warn`` hears each warning (an input or scaffold changed since the run) before the run starts.
    """
    made_from = load_provenance(services, req.of)
    gone, changed = check_inputs(made_from.inputs)
    if gone:
        also = f" (also: {'; '.join(gone[1:4])})" if len(gone) > 1 else ""
        raise InputError(
            f"cannot rerun {req.of}: input {gone[0]}",
            hint=f"restore it, or run the request again with other inputs{also}",
        )
    warnings = _Warnings(warn)
    for line in changed:
        warnings.append(line)
    if made_from.kind == "exec":
        return _rerun_exec(services, req, made_from, warnings, sink)
    return _rerun_request(services, req, made_from, warnings, request_sink)


class _Warnings(list[str]):
    """The rerun's warnings, each also told to the caller as it is found."""

    def __init__(self, tell: Callable[[str], None] | None) -> None:
        super().__init__()
        self._tell = tell

    def append(self, line: str) -> None:
        """Keep ``line`` and tell it now."""
        super().append(line)
        if self._tell is not None:
            self._tell(line)


def _inputs(made_from: Provenance) -> tuple[Path, ...]:
    return tuple(Path(i.resolved) for i in made_from.inputs if i.kind != "missing")


def _limits(made_from: Provenance) -> LimitOverrides:
    return LimitOverrides.model_validate(made_from.limit_overrides)


def _rerun_exec(
    services: Services, req: RerunIn, made_from: Provenance, warnings: list[str], sink: EventSink | None
) -> RerunOutcome:
    missing_env = sorted(set(made_from.env_keys) - set(req.env))
    if missing_env:
        raise InvalidInput(
            f"run {req.of} was given environment values for {', '.join(missing_env)}, which are never recorded",
            hint="give them again (NAME=VALUE each)",
            name="env",
        )
    source = None
    if made_from.generated_id is None:
        path = services.runs.load(req.of).path / "script.py"
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:
            raise InvalidInput(f"run {req.of} kept no script.py", hint="it cannot be rerun", name="run_id") from None
        if sha256_text(source) != made_from.script_sha256:
            raise Tampered(
                f"run {req.of}'s script.py is not the script that ran (its hash differs)",
                hint="the recorded bytes must run; run the script again with exec instead",
                path=str(path),
                id=req.of,
            )
    run = ScriptRun(
        source=source,
        generated_id=made_from.generated_id,
        env={k: req.env[k] for k in made_from.env_keys},
        inputs=_inputs(made_from),
        output_dir=req.output_dir,
        output_mode=req.output_mode,
        limits=_limits(made_from),
        allow_hosts=made_from.allow_hosts,
        run_id=req.new_id,
        argv=req.argv,
        rerun_of=req.of,
    )
    outcome = exec_script(services, run, sink=sink)
    if made_from.generated_id is not None:
        again = load_provenance(services, outcome.run_id)
        if again.script_sha256 != made_from.script_sha256:
            warnings.append(f"generated script {made_from.generated_id} is not the bytes that ran in {req.of}")
    return RerunOutcome(
        rerun_of=req.of,
        kind="exec",
        run_id=outcome.run_id,
        run_dir=outcome.run_dir,
        status=outcome.result.status,
        warnings=tuple(warnings),
        script=outcome,
    )


def _rerun_request(
    services: Services, req: RerunIn, made_from: Provenance, warnings: list[str], sink: RequestSink | None
) -> RerunOutcome:
    from harness.app import requests as app_requests

    if made_from.request is None or made_from.strategy is None:
        raise InvalidInput(f"run {req.of} recorded no request or strategy", hint="it cannot be rerun", name="run_id")
    params: dict[str, object] = dict(made_from.params_used)
    redacted = sorted(k for k, v in params.items() if v == REDACTED)
    unknown = sorted(set(redacted) - set(req.params))
    if unknown:
        raise InvalidInput(
            f"run {req.of} used secret parameters whose values are never recorded: {', '.join(unknown)}",
            hint="give them again (NAME=VALUE each)",
            name="params",
        )
    params.update({k: req.params[k] for k in redacted})
    request_in = app_requests.RequestIn(
        request=made_from.request,
        template=made_from.template,
        strategy=made_from.strategy,
        inputs=_inputs(made_from),
        output_dir=req.output_dir,
        output_mode=req.output_mode,
        limits=_limits(made_from),
        argv=req.argv,
        rerun_of=req.of,
    )
    app_requests.check(request_in)
    prepared = _prepare_again(services, req, made_from, params, warnings)
    try:
        app_requests.refuse_if_gated(services, prepared, request_in, sink=sink)
        report = app_requests.run_prepared(services, prepared, request_in, sink=sink)
    finally:
        prepared.close()
    return RerunOutcome(
        rerun_of=req.of,
        kind="run",
        run_id=report.run_id,
        run_dir=prepared.run_dir,
        status=report.execution_result.status,
        warnings=tuple(warnings),
        report=report,
    )


def _prepare_again(
    services: Services, req: RerunIn, made_from: Provenance, params: dict[str, object], warnings: list[str]
) -> Prepared:
    """The recorded request made runnable again without an LLM: the scaffold re-rendered, or the reviewed script."""
    from harness.checks import vet
    from harness.generation import author
    from harness.pipeline import Harness, Prepared

    assert made_from.request is not None and made_from.strategy is not None
    harness = Harness(services=services)
    t0 = time.monotonic()
    # The report's analysis of the request, heuristically (no LLM call); the decision is the recorded one.
    analysis, _ = harness.analyse(made_from.request, ask_llm=False, inputs=_inputs(made_from))
    stages = {"analyse_s": time.monotonic() - t0}
    decision = Decision(
        strategy=made_from.strategy,
        template=made_from.template,
        params=params,
        confidence=1.0,
        reasoning=f"rerun of {req.of}: the recorded strategy, scaffold and parameters",
    )
    if made_from.strategy == "use_template":
        if made_from.template is None:
            raise InvalidInput(f"run {req.of} recorded no scaffold", hint="it cannot be rerun", name="run_id")
        scaffold = services.library.get(made_from.template)
        if made_from.template_version and scaffold.version != made_from.template_version:
            warnings.append(
                f"scaffold {scaffold.name} changed since the run (version {made_from.template_version} → "
                f"{scaffold.version}): rerun with the current one"
            )
        draft = author.fill(scaffold, params)
        script, used, policy = draft.script or "", dict(draft.params), "standard"
        stages.update(draft.seconds)
    elif made_from.strategy in _GENERATED and made_from.generated_id is not None:
        from harness.review.policy import authorize_rerun

        limits = _limits(made_from).apply(services.settings.limits)
        grant = authorize_rerun(services.generated, made_from.generated_id, limits, ())
        if grant.sha256 != made_from.script_sha256:
            warnings.append(
                f"generated script {made_from.generated_id} now holds other bytes than ran in {req.of} "
                "(its reviewed version runs)"
            )
        script, used, policy = grant.script, params, "strict"
    else:
        raise InvalidInput(
            f"run {req.of} ({made_from.strategy}) kept no script record to rerun",
            hint="run the request again instead",
            name="run_id",
        )
    t1 = time.monotonic()
    vetted = vet(script, policy)
    stages["check_s"] = time.monotonic() - t1
    return Prepared(
        run_id=req.new_id,
        run_dir=services.settings.runs_dir / req.new_id,
        request=made_from.request,
        analysis=analysis,
        decision=decision,
        params=used,
        script=script,
        checks=vetted.report,
        gate_passed=vetted.passed,
        gate_policy=policy,
        stages_s=stages,
    )
