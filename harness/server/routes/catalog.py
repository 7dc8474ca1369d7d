"""``/v1/templates``, ``/v1/analyze`` and ``/v1/check``: the library and the stages that run nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from harness.app import requests as app_requests
from harness.app.catalog import ScaffoldInfo, list_scaffolds, show_scaffold
from harness.app.requests import Analyzed
from harness.server.app import state_of
from harness.server.models import AnalyzeIn, CheckIn

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/templates", response_model=list[ScaffoldInfo])
def list_templates(request: Request) -> tuple[ScaffoldInfo, ...]:
    """The scaffold library, as ``harness templates list --json`` prints it."""
    return list_scaffolds(state_of(request).services).scaffolds


@router.get("/templates/{name}", response_model=ScaffoldInfo)
def show_template(request: Request, name: str) -> ScaffoldInfo:
    """One scaffold, as ``harness templates show NAME --json`` prints it."""
    return show_scaffold(state_of(request).services, name)


@router.post("/analyze", response_model=Analyzed)
def analyze(request: Request, body: AnalyzeIn) -> Analyzed:
    """How a request would be served: the analysis, the decision and the plan if it is several (nothing runs)."""
    return app_requests.analyse(state_of(request).services, body.request)


@router.post("/check")
def check(request: Request, body: CheckIn) -> dict[str, Any]:
    """The static gate's report on a script, and whether it passed (nothing runs)."""
    from harness.checks import gate, run_checks

    report = run_checks(body.source.encode("utf-8", errors="surrogatepass"), body.policy)
    decision = gate(report, body.policy)
    if not decision.passed:
        state_of(request).metrics.gate_refusals.inc()
    return {**report.model_dump(mode="json"), "gate": decision.model_dump(mode="json"), "passed": decision.passed}
