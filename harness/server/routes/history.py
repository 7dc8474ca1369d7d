"""``/v1/history`` and ``/v1/stats``: what ran, and how each scaffold does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from harness.app.history import RunRow, Stats, list_runs, stats
from harness.server.app import state_of

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["history"])


@router.get("/history", response_model=list[RunRow])
def history(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> tuple[RunRow, ...]:
    """Recent requests, as ``harness history --json`` prints them."""
    return list_runs(state_of(request).services, limit)


@router.get("/stats", response_model=Stats)
def get_stats(request: Request) -> Stats:
    """Per scaffold and workflow type: runs, success rate, durations, tokens (``harness stats --json``)."""
    return stats(state_of(request).services)
