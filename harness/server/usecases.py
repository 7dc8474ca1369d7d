"""The work behind each job: HTTP inputs in, an ``harness.app`` use case, events out to the job.

``run_script`` stages the client's inputs tar and calls ``app.scripts.exec_script`` (every rule
of ``harness exec``, the review policy for generated scripts included). ``run_request`` is the
narrowest adapter over the pipeline (``Harness.run_request``, the CLI's plan routing) until
``app.requests`` reaches main. Both stream every event to the job as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InvalidInput
from harness.server.inputs import extract_inputs
from harness.server.jobs import Job, JobOutcome

if TYPE_CHECKING:
    from harness.events import Event
    from harness.execution.limits import Limits
    from harness.pipeline import Harness
    from harness.server.metrics import Metrics
    from harness.server.models import RequestIn, RunIn
    from harness.services import Services

__all__ = ["decode_tar", "limits_for", "run_request", "run_script"]


def decode_tar(text: str | None) -> bytes | None:
    """The bytes of a base64 ``inputs_tar`` field (None when absent); InvalidInput when it is not base64."""
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("inputs_tar is not valid base64", name="inputs_tar") from None


def limits_for(services: Services, body: RunIn) -> Limits:
    """The settings' limits with the run's own changes (ConfigError when one is invalid)."""
    return body.limits.apply(services.settings.limits)


def run_script(services: Services, job: Job, body: RunIn, inputs_blob: bytes | None, metrics: Metrics) -> JobOutcome:
    """Run one script (or a generated one again, under its review) for ``job`` through ``app.scripts.exec_script``.

    The run id is the job id. Inputs arrive as a checked tar and are staged beside the runs for the
    run's length; every event goes to the job's buffer as it arrives.
    """
    from harness.app.cancel import CancelToken
    from harness.app.scripts import ScriptRun, exec_script

    token = CancelToken()
    job.on_cancel(token.set)
    backend = services.backend

    def sink(event: Event) -> None:
        job.emit(event.kind, event.model_dump_json())
        if event.kind == "fetch_reply" and getattr(event, "ok", False):
            # Only granted hosts get an ok reply, so the label set is bounded by the grants.
            metrics.egress.labels(getattr(event, "host", "")).inc()
        if event.kind == "run_started" and token.is_set():
            # A cancel that came before the backend knew the run: run_started comes once it does.
            backend.cancel(job.id)

    staged: Path | None = None
    inputs: tuple[Path, ...] = ()
    try:
        if inputs_blob:
            staged = services.settings.runs_dir / f".inputs-{job.id}"
            inputs = extract_inputs(inputs_blob, staged, limits_for(services, body).input_size)
        run = ScriptRun(
            source=body.source or None,
            name=body.name,
            generated_id=body.generated_id,
            env=body.env,
            inputs=inputs,
            limits=body.limits,
            allow_hosts=tuple(body.allow_hosts),
            run_id=job.id,
        )
        outcome = exec_script(services, run, sink=sink, cancel=token)
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    metrics.events_dropped.inc(outcome.result.events_dropped + outcome.events_dropped)
    return JobOutcome(result=outcome.result.model_dump(mode="json", exclude={"events"}))


def _plan_sink(job: Job, services: Services) -> Callable[[str, Event], None]:
    """A plan's run events, each marked with its phase; every run started can be cancelled."""
    backend = services.backend

    def on_event(phase: str, event: Event) -> None:
        job.emit(event.kind, json.dumps({**event.model_dump(mode="json"), "phase": phase}, separators=(",", ":")))
        if event.kind == "run_started":
            run_id = getattr(event, "run_id", "")
            job.on_cancel(lambda: backend.cancel(run_id))  # at once when the job was already cancelled

    return on_event


def _run_plan(harness: Harness, job: Job, body: RequestIn, inputs: tuple[Path, ...]) -> JobOutcome | None:
    """Serve the request as a plan when it splits into several jobs; None when it is one run."""
    # The CLI's routing until harness.app.requests.route has it: split, estimate, then run the phases.
    from harness.cli.run_cmd import _plan_for
    from harness.orchestrate import run_plan

    plan, estimate = _plan_for(harness, body.request)
    if plan is None:
        return None
    job.kind = "plan"
    services = harness.services

    def on_phase(name: str, status: str, report: Any) -> None:
        job.emit("phase_changed", json.dumps({"phase": name, "status": status}))

    report = run_plan(
        harness,
        plan,
        body.request,
        inputs=inputs,
        output_dir=services.settings.runs_dir / f"plan-{job.id}",
        backend=services.backend,
        on_phase=on_phase,
        on_event=_plan_sink(job, services),
        estimate=estimate,
    )
    return JobOutcome(report=report.model_dump(mode="json"))


def run_request(
    services: Services, job: Job, body: RequestIn, inputs_blob: bytes | None, metrics: Metrics
) -> JobOutcome:
    """Serve a plain-language request for ``job`` through the library's pipeline: one run, or a plan."""
    from harness.pipeline import Harness

    harness = Harness(services=services)
    if body.dry_run:
        analysis, decision = harness.analyse(body.request)
        job.emit("analysed", analysis.model_dump_json())
        job.emit("decided", decision.model_dump_json())
        return JobOutcome(
            report={"analysis": analysis.model_dump(mode="json"), "decision": decision.model_dump(mode="json")}
        )
    staged: Path | None = None
    inputs: tuple[Path, ...] = ()
    backend = services.backend
    try:
        if inputs_blob:
            staged = services.settings.runs_dir / f".inputs-{job.id}"
            inputs = extract_inputs(inputs_blob, staged, services.settings.limits.input_size)

        if body.template is None:
            planned = _run_plan(harness, job, body, inputs)
            if planned is not None:
                return planned

        def on_event(event: Event) -> None:
            job.emit(event.kind, event.model_dump_json())
            if event.kind == "run_started":
                run_id = getattr(event, "run_id", "")
                job.on_cancel(lambda: backend.cancel(run_id))  # at once when the job was already cancelled

        report = harness.run_request(
            body.request, template=body.template, params=body.params, inputs=inputs, on_event=on_event
        )
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    if report.execution_result.status == "gate_failed":
        metrics.gate_refusals.inc()
    return JobOutcome(report=report.model_dump(mode="json"))
