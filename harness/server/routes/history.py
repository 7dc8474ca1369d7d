"""``/v1/history`` and ``/v1/stats``: what ran, and how each scaffold does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from harness.server.app import state_of

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["history"])


@router.get("/history")
def history(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, Any]]:
    """Recent requests, as ``harness history --json`` prints them."""
    from harness.cli.history_cmd import _parsed

    rows = state_of(request).services.history.recent(limit)
    return [{**r, **_parsed(r)} for r in rows]


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Per scaffold and workflow type: runs, success rate, durations, tokens (``harness stats --json``)."""
    result: dict[str, Any] = state_of(request).services.history.stats()
    return result
