"""``create_app(settings)``: the FastAPI app; its lifespan owns one ``Services`` with a pooled backend.

FastAPI rather than bare Starlette: the library's pydantic models are the schema, FastAPI
validates bodies against them and writes the OpenAPI document from them, and it is
Starlette underneath (the same ASGI app, the same middleware).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request

from harness.server import errors
from harness.server.guard import Guard
from harness.server.jobs import Job, JobRegistry
from harness.server.metrics import Metrics
from harness.server.web import Sessions, review_router

if TYPE_CHECKING:
    from harness.execution.backend import Backend
    from harness.services import Services
    from harness.settings import Settings

__all__ = ["ServeOptions", "ServerState", "create_app", "state_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    """How the server admits work and whom it lets in."""

    concurrency: int = 0  # 0: one per core
    queue: int = 0  # 0: four per run slot
    token: str | None = None  # None: no token asked (the Unix socket's mode authenticates)
    max_body: int = 0  # 0: from the input size limit

    def resolved(self, settings: Settings) -> ServeOptions:
        """These options with the defaults filled in."""
        concurrency = self.concurrency or os.cpu_count() or 1
        return ServeOptions(
            concurrency=concurrency,
            queue=self.queue or 4 * concurrency,
            token=self.token,
            # base64 (4/3) of the largest inputs, plus a script and the JSON around them.
            max_body=self.max_body or (settings.limits.input_size * 4 // 3 + 4 * 1024 * 1024),
        )


class ServerState:
    """What the routes share: settings, services (after start-up), the job registry and the metrics."""

    def __init__(self, settings: Settings, options: ServeOptions) -> None:
        self.settings = settings
        self.options = options
        self._services: Services | None = None
        self.backend: Backend | None = None
        self.startup_error: BaseException | None = None  # what stopped the lifespan, for the CLI to report
        self.metrics = Metrics(self.pool_state)
        self.registry = JobRegistry(options.concurrency, options.queue, on_start=self._started, on_end=self._ended)

    @property
    def services(self) -> Services:
        """The services the lifespan opened."""
        if self._services is None:
            raise RuntimeError("the server has not started")
        return self._services

    @property
    def staging_root(self) -> Path:
        """This server's folder for inputs staged between admission and run (one per process)."""
        return self.settings.data_dir / "staging" / str(os.getpid())

    def staging(self, job_id: str) -> Path:
        """Where ``job_id``'s inputs are staged (made by the caller, removed when the job ends)."""
        return self.staging_root / job_id

    def unstage(self, job_id: str) -> None:
        """Remove ``job_id``'s staged inputs, if any."""
        shutil.rmtree(self.staging(job_id), ignore_errors=True)

    def sweep_staging(self) -> None:
        """Remove what servers that are gone left staged (a kill -9 runs no cleanup)."""
        root = self.staging_root.parent
        if not root.is_dir():
            return
        for folder in root.iterdir():
            if folder.name.isdigit() and not _alive(int(folder.name)):
                shutil.rmtree(folder, ignore_errors=True)

    def pool_state(self) -> tuple[int, int]:
        """(ready, size) of the backend's warm pool, (0, 0) when it has none or is not up yet."""
        state = getattr(self.backend, "pool_state", None)
        return state() if callable(state) else (0, 0)

    def _started(self, job: Job) -> None:
        if job.started is not None:
            self.metrics.queue_duration.observe(job.started - job.created)
        self._gauges()

    def _ended(self, job: Job) -> None:
        self.unstage(job.id)  # however it ended: run, failed, cancelled while queued
        status: str = job.status
        if job.error is not None:
            status = "error"
            if job.error.get("type") == "GateRefused":
                self.metrics.gate_refusals.inc()
        elif job.outcome.result is not None and job.status == "finished":
            status = str(job.outcome.result.get("status", "finished"))
        elif job.outcome.report is not None and job.status == "finished":
            execution = job.outcome.report.get("execution_result")
            status = str(execution.get("status", "finished")) if isinstance(execution, dict) else "finished"
        self.metrics.runs.labels(job.kind, status).inc()
        if job.started is not None and job.ended is not None:
            self.metrics.run_duration.labels(job.kind).observe(job.ended - job.started)
        self.metrics.events_dropped.inc(job.events_dropped)
        self._gauges()

    def _gauges(self) -> None:
        counts = self.registry.counts()
        self.metrics.jobs_running.set(counts["running"])
        self.metrics.jobs_queued.set(counts["queued"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def state_of(request: Request) -> ServerState:
    """The server state of the app serving ``request``."""
    state: ServerState = request.app.state.server
    return state


def _pooled_backend(settings: Settings) -> Backend:
    # The server keeps the pool warm between requests: that is what it is for.
    from harness.execution.docker import DockerBackend

    return DockerBackend(settings)


def _document_run_body(app: FastAPI) -> None:
    """Add RunIn to the OpenAPI components: POST /v1/runs reads it by hand (JSON or multipart)."""
    from fastapi.openapi.utils import get_openapi

    from harness.server.models import RunIn

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schema = RunIn.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(schema.pop("$defs", {}))
            schemas["RunIn"] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    options: ServeOptions | None = None,
    on_ready: Callable[[], None] | None = None,
) -> FastAPI:
    """The API app. Given ``services`` stay the caller's; otherwise the lifespan opens and closes its own.

    ``on_ready`` is called once the backend is up (the pool filling), before the first request is served.
    """
    from harness import __version__
    from harness.server.routes import catalog, history, review, runs, system

    opts = (options or ServeOptions()).resolved(settings)
    state = ServerState(settings, opts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from harness.services import Services

        owned = services is None
        opened = services or Services(settings, backend_factory=_pooled_backend)
        state._services = opened
        await asyncio.to_thread(state.sweep_staging)
        try:
            # Built now, not on the first run: it sweeps what a killed server left, makes sure
            # of the image and starts filling the pool before anyone waits on it.
            try:
                state.backend = await asyncio.to_thread(lambda: opened.backend)
            except BaseException as exc:
                state.startup_error = exc
                raise
            if on_ready is not None:
                on_ready()
            yield
        finally:
            await asyncio.to_thread(state.registry.close)
            await asyncio.to_thread(shutil.rmtree, state.staging_root, True)
            if owned:
                await asyncio.to_thread(opened.close)

    app = FastAPI(
        title="harness",
        version=__version__,
        summary="Vetted Python scripts in hardened, throwaway containers.",
        lifespan=lifespan,
    )
    app.state.server = state
    # The review page checks its own sessions (cookie from a one-time link, or the token; none on the socket).
    sessions = Sessions(opts.token)
    app.state.review_sessions = sessions
    app.include_router(review_router(lambda: state.services, sessions))
    _document_run_body(app)
    errors.install(app)
    for module in (runs, catalog, history, review, system):
        app.include_router(module.router)
    app.add_middleware(Guard, token=opts.token, max_body=opts.max_body)
    return app
