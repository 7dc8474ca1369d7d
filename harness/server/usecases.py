"""The work behind each job: HTTP inputs in, an ``harness.app`` use case, events out to the job.

``run_script`` calls ``app.scripts.exec_script`` (every rule of ``harness exec``, the review
policy for generated scripts included); ``run_request`` calls ``app.requests`` (routed as
``harness run`` routes: one run, or a plan). Both get the inputs the route staged from the
client's tar, and stream every event to the job as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import GateRefused, InvalidInput
from harness.server.jobs import Job, JobFailed, JobOutcome

if TYPE_CHECKING:
    from harness.events import Event
    from harness.execution.limits import Limits
    from harness.progress import RequestEvent
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


def run_script(services: Services, job: Job, body: RunIn, inputs: tuple[Path, ...], metrics: Metrics) -> JobOutcome:
    """Run one script (or a generated one again, under its review) for ``job`` through ``app.scripts.exec_script``.

    The run id is the job id; ``inputs`` are the files and folders staged from the client's tar
    (each one /input/NAME). Every event goes to the job's buffer as it arrives.
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
    metrics.events_dropped.inc(outcome.result.events_dropped + outcome.events_dropped)
    details = {
        "run_dir": str(outcome.run_dir),
        "events_dropped": outcome.events_dropped,
        "egress": list(outcome.egress),
    }
    return JobOutcome(result=outcome.result.model_dump(mode="json", exclude={"events"}), details=details)


def _request_sink(job: Job, services: Services, seen: dict[str, Any]) -> Callable[[RequestEvent], None]:
    """Request events into the job: a run's own events under their kind (with their plan phase), the rest as is."""
    backend = services.backend

    def sink(event: RequestEvent) -> None:
        if event.kind == "run":
            inner = event.event
            data = inner.model_dump(mode="json")
            if event.phase is not None:
                data["phase"] = event.phase
            job.emit(inner.kind, json.dumps(data, separators=(",", ":")))
            if inner.kind == "run_started":
                run_id = getattr(inner, "run_id", "")
                job.on_cancel(lambda: backend.cancel(run_id))  # at once when the job was already cancelled
            return
        if event.kind == "analysed":
            seen["analysis"] = event.analysis.model_dump(mode="json")
        elif event.kind == "decided":
            seen["decision"] = event.decision.model_dump(mode="json")
        elif event.kind == "vetted":
            seen["vetted"] = event.model_dump(mode="json", exclude={"kind"})
        job.emit(event.kind, event.model_dump_json())

    return sink


CONFIRM_WAIT_S = 600.0  # how long a request asked to confirm waits for its answer (a person at a prompt)


def run_request(
    services: Services, job: Job, body: RequestIn, inputs: tuple[Path, ...], metrics: Metrics
) -> JobOutcome:
    """Serve a plain-language request for ``job`` through ``app.requests``: routed to one run or a plan.

    The run id is the job id (history, the run folder and ``GET /v1/runs/{id}`` name one run). A
    cancel or a drain reaches the request wherever it is: in LLM generation (let go at once, no
    container started), waiting for its confirmation, or in its container.
    """
    from harness.app import requests as app_requests
    from harness.app.cancel import CancelToken

    token = CancelToken()
    job.on_cancel(token.set)
    seen: dict[str, Any] = {}
    sink = _request_sink(job, services, seen)
    req = app_requests.RequestIn(
        request=body.request,
        template=body.template,
        params=body.params,
        strategy=body.strategy,
        budget=body.budget,
        inputs=inputs,
        dry_run=body.dry_run,
        assume=body.assume,
        limits=body.limits,
        argv=tuple(body.argv),
        input_origins=tuple(body.input_origins),
    )
    if body.template is None and body.strategy is None and not body.dry_run:
        routed = app_requests.route(services, body.request)
        if routed.kind == "plan" and routed.plan is not None:
            if not body.allow_plan:
                raise InvalidInput(
                    "the request splits into a plan, which this client asked not to run", name="allow_plan"
                )
            job.kind = "plan"
            app_requests.check(req)
            target = services.settings.runs_dir / f"plan-{job.id}"
            planned = req.model_copy(update={"output_dir": target})
            plan = app_requests.run_plan(services, routed.plan, planned, estimate=routed.estimate, sink=sink)
            return JobOutcome(report=plan.report.model_dump(mode="json"), details={"output_dir": str(target)})

    def ask(prepared: object) -> bool:
        job.emit("confirm", json.dumps({"run_id": job.id, "wait_s": CONFIRM_WAIT_S}))
        return job.ask(CONFIRM_WAIT_S)

    try:
        outcome = app_requests.run(
            services, req, sink=sink, confirm=ask if body.confirm else None, cancel=token, run_id=job.id
        )
    except GateRefused as exc:
        # Refused, yet its report was written: the job ends with both (``--json`` prints the report).
        folder = services.settings.runs_dir / job.id
        try:
            report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = None
        raise JobFailed(exc, JobOutcome(report=report, details={"run_dir": str(folder)})) from None
    details = {"run_dir": str(outcome.run_dir)}
    if outcome.report is None:
        # A dry run or a declined one: prepared and vetted, not run; what was decided is its outcome.
        return JobOutcome(report={"outcome": outcome.outcome, "run_id": outcome.run_id, **seen}, details=details)
    return JobOutcome(report=outcome.report.model_dump(mode="json"), details=details)
