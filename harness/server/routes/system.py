"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from harness.server.app import state_of
from harness.server.metrics import CONTENT_TYPE
from harness.server.models import Health, PoolState

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz(request: Request) -> Health:
    """Liveness: the version, the warm pool, and whether the server is draining."""
    from harness import __version__

    state = state_of(request)
    ready, size = state.pool_state()
    return Health(
        status="ok", version=__version__, pool=PoolState(ready=ready, size=size), draining=state.registry.draining
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format."""
    return Response(state_of(request).metrics.render(), media_type=CONTENT_TYPE)
