"""Run one script in the sandbox: the ``harness exec`` use case, for every front-end.

``exec_script`` holds every rule between "here is a script" and "here is what came of it":
the input and output checks, the trust policy for running a generated script again (through
``review.policy.authorize_rerun``, which can only narrow the reviewed egress), the run folder
with its capped events log, the egress broker, the run itself on ``services.backend`` (a
server's pooled backend, or the CLI's unpooled one), ``result.json``, the generated record's
run list, and retention. A front-end only builds a :class:`ScriptRun` and renders the
:class:`ScriptOutcome`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from harness.errors import Fix, InputError
from harness.events import Event
from harness.execution.limits import Limits
from harness.provenance import Provenance
from harness.records import OutputMode, RunResult, RunSpec, new_run_id

if TYPE_CHECKING:
    from harness.app.cancel import CancelToken
    from harness.services import Services

__all__ = ["PROVENANCE_FILE", "LimitOverrides", "ScriptOutcome", "ScriptRun", "exec_script", "interrupt"]

PROVENANCE_FILE = "provenance.json"  # an exec run's provenance (a request's is in its report.json)

EventSink = Callable[[Event], None]


class LimitOverrides(BaseModel):
    """Per-run limits a caller may change; None keeps the setting. Checked when the run is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float | None = None
    memory: str | int | None = Field(None, description="bytes, or a size such as 512m")
    cpus: float | None = None
    pids: int | None = None

    def apply(self, base: Limits) -> Limits:
        """``base`` with these changes; ConfigError names the first bad value."""
        return Limits.build(base, **self.model_dump(exclude_none=True))


class ScriptRun(BaseModel):
    """One script to run once: its source (or a generated script's id), inputs, outputs, limits and egress."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(None, description="the script's text; None with generated_id")
    name: str = Field("main.py", description="the file name the script runs as")
    generated_id: str | None = Field(None, description="run a generated script again: its reviewed bytes")
    env: dict[str, str] = Field(default_factory=dict)
    inputs: tuple[Path, ...] = Field((), description="host files or folders, read-only at /input/NAME")
    output_dir: Path | None = Field(None, description="where /output goes; None: the run folder's output/")
    output_mode: OutputMode = "new"
    limits: LimitOverrides = Field(default_factory=LimitOverrides)
    allow_hosts: tuple[str, ...] = Field((), description="hosts to fetch from; a generated script: at most its grant")
    run_id: str | None = Field(None, description="None: a new id")
    argv: tuple[str, ...] = Field((), description="the command line as given, for the provenance (redacted there)")
    rerun_of: str | None = Field(None, description="the run this one repeats (harness rerun)")


class ScriptOutcome(BaseModel):
    """What came of a script run: the result, where its folder is, what the log and the egress broker counted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    run_dir: Path
    result: RunResult
    events_dropped: int = Field(0, description="events past the log's caps: counted, neither kept nor shown")
    egress: tuple[dict[str, JsonValue], ...] = Field((), description="per host: requests, bytes, refusals")
    generated_id: str | None = None


def exec_script(
    services: Services,
    run: ScriptRun,
    *,
    sink: EventSink | None = None,
    cancel: CancelToken | None = None,
) -> ScriptOutcome:
    """Run ``run`` once in the sandbox and keep its folder; every check happens before a container starts.

    ``sink`` receives the run's events as they arrive, except those past the events log's caps.
    ``cancel``, when set during the run, stops it (the backend kills its container) and the run
    ends ``cancelled``; set before the run starts, nothing runs and the outcome says ``cancelled``.
    """
    from harness.execution.egress import EgressPolicy, FetchBroker, parse_allow
    from harness.execution.outputs import check_destination
    from harness.provenance import harness_version, record_inputs, redact_argv, sha256_text
    from harness.runs import apply_retention

    settings = services.settings
    if run.output_dir is not None:
        check_destination(run.output_dir, run.output_mode)
    for path in run.inputs:
        if not path.exists():
            raise InputError(f"input path {path} does not exist", hint="check the input's path").fixed_by(
                Fix("give_input", "inputs")
            )
    limits = run.limits.apply(settings.limits)
    hosts = parse_allow(run.allow_hosts)
    if run.generated_id is not None:
        from harness.review.policy import authorize_rerun

        # The reviewed grant travels with the reviewed bytes (hashed as read); allow_hosts narrows it.
        grant = authorize_rerun(services.generated, run.generated_id, limits, hosts)
        source, hosts, name = grant.script, grant.hosts, "main.py"
    elif run.source is not None:
        source, name = run.source, run.name if run.name.endswith(".py") else "main.py"
    else:
        raise InputError("no script given", hint="give a script's source, or a generated script's id").fixed_by(
            Fix("give_input", "script")
        )
    run_id = run.run_id or new_run_id()
    folder = services.runs.create(run_id)
    # Hashed before the run: the inputs as the script saw them.
    inputs_then = record_inputs(run.inputs)
    folder.write_text("script.py", source)
    spec = RunSpec(
        script=source,
        name=name,
        env=run.env,
        inputs=run.inputs,
        output_dir=run.output_dir or folder.output,
        output_mode=run.output_mode,
        limits=None if limits == settings.limits else limits,
        egress=hosts,
        run_id=run_id,
    )
    broker = FetchBroker(EgressPolicy(allow=hosts)) if hosts else None
    backend = services.backend
    with folder.events() as log:

        def on_event(event: Event) -> None:
            # Written as they come, so an interrupted run keeps its log; past the log's caps
            # they are counted, and not shown either.
            if log.write(event) and sink is not None:
                sink(event)

        def kill() -> None:
            backend.cancel(run_id)

        stop = cancel.on_cancel(kill) if cancel is not None else None
        try:
            if cancel is not None and cancel.is_set():
                result = _not_started(spec, limits)
            else:
                result = backend.run(spec, on_event=on_event, on_fetch=broker)
        finally:
            if stop is not None:
                stop()
    folder.write_text("result.json", result.model_dump_json(indent=2, exclude={"events"}))
    made_from = Provenance(
        kind="exec",
        argv=redact_argv(run.argv),
        harness_version=harness_version(),
        inputs=inputs_then,
        generated_id=run.generated_id,
        script_sha256=sha256_text(source),
        limits=json.loads(json.dumps(result.policy.limits or limits.receipt(), default=str)),
        limit_overrides=run.limits.model_dump(mode="json", exclude_none=True),
        output_dir=str(run.output_dir) if run.output_dir is not None else None,
        output_mode=run.output_mode,
        env_keys=tuple(sorted(run.env)),
        allow_hosts=hosts,
        runtime={"runtime": settings.runtime or "runc", **({"image": result.image} if result.image else {})},
        rerun_of=run.rerun_of,
    )
    folder.write_text(PROVENANCE_FILE, made_from.model_dump_json(indent=2))
    if run.generated_id is not None:
        # Appended, never a rewrite of a record loaded before the run: a decision made meanwhile stands.
        services.generated.record_run(run.generated_id, run_id, result.status)
    apply_retention(settings, keep=(run_id,))
    return ScriptOutcome(
        run_id=run_id,
        run_dir=folder.path,
        result=result,
        events_dropped=log.dropped,
        egress=tuple(_json_rows(broker.summary())) if broker else (),
        generated_id=run.generated_id,
    )


def interrupt(services: Services, run_id: str) -> bool:
    """Stop run ``run_id`` now but keep what it wrote to /output (it ends ``interrupted``, partial).

    False when the services' backend is not running it (not started yet, over, or a backend that
    cannot keep a stopped run's outputs): the caller then stops it the hard way, or lets it be.
    """
    return services.backend.interrupt(run_id)


def _not_started(spec: RunSpec, limits: Limits) -> RunResult:
    """The result of a run cancelled before its container was asked for."""
    from harness.records import PolicyReceipt

    return RunResult(
        run_id=spec.run_id,
        status="cancelled",
        exit_code=None,
        message="cancelled before it started; nothing ran",
        image="",
        pooled=False,
        duration_s=0.0,
        policy=PolicyReceipt(env_keys=tuple(sorted(spec.env)), egress=spec.egress, limits=limits.receipt()),
    )


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, JsonValue]]:
    return [{str(k): _json(v) for k, v in row.items()} for row in rows]


def _json(value: Any) -> JsonValue:
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
