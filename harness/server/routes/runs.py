"""``/v1/runs`` and ``/v1/requests``: submit jobs, read their state, stream their events, fetch outputs, cancel."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from harness.errors import Conflict, InvalidInput, NotFound
from harness.execution.outputs import MARKER
from harness.server.app import ServerState, state_of
from harness.server.inputs import extract_inputs
from harness.server.jobs import Job, JobKind, JobOutcome
from harness.server.models import Accepted, ConfirmIn, RequestIn, RunIn, RunView
from harness.server.usecases import decode_tar, limits_for, run_request, run_script

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["runs"])
Work = Callable[[Job, tuple[Path, ...]], JobOutcome]
_KEEPALIVE_S = 15.0
_MULTIPART = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "meta": {"type": "string", "description": "the RunIn JSON (without inputs_tar)"},
                "inputs": {"type": "string", "format": "binary", "description": "an uncompressed tar"},
            },
            "required": ["meta"],
        }
    }
}


def _accepted(job: Job) -> Accepted:
    return Accepted(
        run_id=job.id,
        status="running" if job.status == "running" else "queued",
        events=f"/v1/runs/{job.id}/events",
        result=f"/v1/runs/{job.id}",
    )


async def _run_body(request: Request) -> tuple[RunIn, bytes | None]:
    """The run's JSON body, or the multipart ``meta`` part and ``inputs`` file part."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=1) as form:
                meta, upload = form.get("meta"), form.get("inputs")
                if not isinstance(meta, str):
                    raise InvalidInput("the multipart body needs a meta part (JSON)", name="meta")
                body = RunIn.model_validate_json(meta)
                blob = await upload.read() if upload is not None and not isinstance(upload, str) else None
                if body.inputs_tar is not None and blob is not None:
                    raise InvalidInput("inputs came both in meta and as a file part", name="inputs_tar")
                if blob is not None:
                    return body, blob
        else:
            # Off the event loop: a body with inputs can be tens of megabytes of base64.
            body = await asyncio.to_thread(RunIn.model_validate_json, await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    return body, await asyncio.to_thread(decode_tar, body.inputs_tar)


def _admit(state: ServerState, kind: JobKind, blob: bytes | None, max_input: int, work: Work) -> Job:
    """Stage the inputs (checked whole first) and admit the job; a refused job leaves nothing staged.

    Inputs go to disk before admission, so a queued job holds a folder, not megabytes of memory.
    """
    from harness.records import new_run_id
    from harness.server.errors import Busy, Draining

    job_id = new_run_id()
    inputs: tuple[Path, ...] = ()
    if blob:
        inputs = extract_inputs(blob, state.staging(job_id), max_input)

    def staged_work(job: Job) -> JobOutcome:
        try:
            return work(job, inputs)
        finally:
            state.unstage(job.id)  # before the job is seen to end (a queued job cancelled: at its end)

    try:
        return state.registry.submit(job_id, kind, staged_work)
    except (Busy, Draining) as exc:
        state.unstage(job_id)
        state.metrics.rejected.labels("busy" if isinstance(exc, Busy) else "draining").inc()
        raise


@router.post(
    "/runs",
    status_code=202,
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunIn"}}, **_MULTIPART},
        }
    },
)
async def submit_run(request: Request) -> Accepted:
    """Run a script once (JSON, or multipart with an inputs tar); 202 with where to follow it."""
    state = state_of(request)
    body, blob = await _run_body(request)
    services = state.services
    limits = limits_for(services, body)  # a bad limit is the caller's 422 now, not a failed job later
    job = await asyncio.to_thread(
        _admit,
        state,
        "script",
        blob,
        limits.input_size,
        lambda job, inputs: run_script(services, job, body, inputs, state.metrics),
    )
    return _accepted(job)


@router.post("/requests", status_code=202, response_model=Accepted)
async def submit_request(request: Request, body: RequestIn) -> Accepted:
    """Serve a plain-language request (analyse, decide, generate or fill, check, run); 202."""
    state = state_of(request)
    services = state.services
    limits = body.limits.apply(services.settings.limits)  # a bad limit is the caller's 422 now
    blob = await asyncio.to_thread(decode_tar, body.inputs_tar)
    job = await asyncio.to_thread(
        _admit,
        state,
        "request",
        blob,
        limits.input_size,
        lambda job, inputs: run_request(services, job, body, inputs, state.metrics),
    )
    return _accepted(job)


def _stored_view(state: ServerState, run_id: str) -> dict[str, Any]:
    """A run the registry no longer holds (or a past server ran), from its folder."""
    folder = state.services.runs.load(run_id)  # InvalidInput for a malformed id, NotFound, RunPruned
    for name, key in (("result.json", "result"), ("report.json", "report")):
        try:
            data = json.loads((folder.path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return {
            "run_id": run_id,
            "kind": "script" if key == "result" else "request",
            "status": "finished",
            "result": data if key == "result" else None,
            "report": data if key == "report" else None,
            "error": None,
        }
    error = {
        "type": "RunError",
        "title": "the server stopped before this run ended",
        "status": 500,
        "detail": "the server stopped before this run ended",
    }
    return {"run_id": run_id, "kind": "script", "status": "finished", "result": None, "report": None, "error": error}


def _job(state: ServerState, run_id: str) -> Job:
    job = state.registry.get(run_id)
    if job is None:
        state.services.runs.load(run_id)  # says malformed, pruned or unknown
        raise NotFound(
            f"run {run_id} is not live on this server", hint="GET /v1/runs/ID for its stored result", id=run_id
        )
    return job


async def _wait_done(job: Job, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def poke() -> None:
        loop.call_soon_threadsafe(wake.set)

    stop = job.listen(poke)
    try:
        deadline = loop.time() + timeout
        while not job.finished and (left := deadline - loop.time()) > 0:
            wake.clear()
            if job.finished:
                break
            try:
                await asyncio.wait_for(wake.wait(), left)
            except TimeoutError:
                break
    finally:
        stop()


@router.get("/runs/{run_id}", response_model=RunView)
async def get_run(request: Request, run_id: str, wait: Annotated[float, Query(ge=0, le=300)] = 0) -> dict[str, Any]:
    """A job's state and outcome; ``wait`` long-polls up to that many seconds for it to finish."""
    state = state_of(request)
    job = state.registry.get(run_id)
    if job is None:
        return await asyncio.to_thread(_stored_view, state, run_id)
    if wait > 0 and not job.finished:
        await _wait_done(job, wait)
    return job.view()


def _frame(seq: int | None, kind: str, data: str) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


async def _events(job: Job, after: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def poke() -> None:
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass  # the loop is gone: the stream ended with it

    stop = job.listen(poke)
    try:
        while True:
            wake.clear()
            ended = job.finished  # read before the events: all of a finished job's events are in by then
            gap, events = job.since(after)
            if gap is not None:
                yield _frame(None, "gap", json.dumps({"first": gap[0], "last": gap[1]}))
                after = gap[1]
            for event in events:
                yield _frame(event.seq, event.kind, event.data)
                after = event.seq
            if ended:
                yield _frame(None, "end", json.dumps(job.view(), separators=(",", ":")))
                return
            if not events:
                try:
                    await asyncio.wait_for(wake.wait(), _KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
    finally:
        stop()


@router.get(
    "/runs/{run_id}/events", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}}
)
async def run_events(
    request: Request, run_id: str, last_event_id: Annotated[str | None, Header()] = None
) -> StreamingResponse:
    """The job's events as Server-Sent Events; ``Last-Event-ID: N`` resumes after event N.

    A run this server no longer holds (an older one, or a past server's) is replayed from its
    events log, numbered by line, then ended as ``GET /v1/runs/{id}`` describes it.
    """
    state = state_of(request)
    after = 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidInput("Last-Event-ID must be an event number", name="Last-Event-ID")
        after = int(last_event_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    job = state.registry.get(run_id)
    if job is None:
        view = await asyncio.to_thread(_stored_view, state, run_id)  # NotFound and friends come from here
        frames = await asyncio.to_thread(_stored_events, state, run_id, after, view)
        return StreamingResponse(iter(frames), media_type="text/event-stream", headers=headers)
    return StreamingResponse(_events(job, after), media_type="text/event-stream", headers=headers)


def _stored_events(state: ServerState, run_id: str, after: int, view: dict[str, Any]) -> list[bytes]:
    """A stored run's events after line ``after`` (each line an event JSON), then its end."""
    frames = []
    path = state.services.runs.load(run_id).path / "events.jsonl"
    try:
        with path.open("rb") as fh:
            for seq, raw in enumerate(fh, start=1):
                if seq <= after:
                    continue
                try:
                    kind = str(json.loads(raw)["kind"])
                except (ValueError, KeyError, TypeError):
                    continue  # the log is ours, but a damaged line is skipped rather than sent
                frames.append(_frame(seq, kind, raw.decode("utf-8", errors="replace").strip()))
    except OSError:
        pass  # no log: only the end
    frames.append(_frame(None, "end", json.dumps(view, separators=(",", ":"))))
    return frames


@router.post("/runs/{run_id}/cancel", status_code=202, response_model=RunView)
async def cancel_run(request: Request, run_id: str) -> dict[str, Any]:
    """Cancel a queued or running job; it ends ``cancelled`` and its container is removed."""
    state = state_of(request)
    job = _job(state, run_id)
    await asyncio.to_thread(state.registry.cancel, job)
    return job.view()


@router.post("/runs/{run_id}/confirm", status_code=202, response_model=RunView)
async def confirm_run(request: Request, run_id: str, body: ConfirmIn) -> dict[str, Any]:
    """Answer a request job's ``confirm`` event: ``{"run": true}`` runs it, false declines (it ends unrun)."""
    state = state_of(request)
    job = _job(state, run_id)
    if job.kind != "request" or job.finished or not job.answer(body.run):
        raise Conflict(f"run {run_id} is not waiting for a confirmation", hint="only a request asked to confirm is")
    return job.view()


def _tar_outputs(folder: Path) -> IO[bytes]:
    """A tar of the regular files under ``folder`` (links and devices left out), spooled to disk past 8 MiB."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # closed by _chunks
    with tarfile.open(fileobj=spool, mode="w") as tar:
        if folder.is_dir() and not folder.is_symlink():
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
                for name in sorted(files):
                    if root == str(folder) and name == MARKER:
                        continue  # harness's own mark on the folder, not an output
                    path = os.path.join(root, name)
                    try:
                        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    except OSError:
                        continue  # a link (or gone): not sent
                    with os.fdopen(fd, "rb") as fh:
                        st = os.fstat(fh.fileno())
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        info = tarfile.TarInfo(os.path.relpath(path, folder))
                        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
                        tar.addfile(info, fh)
    spool.seek(0)
    return spool


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(1 << 20):
            yield chunk
    finally:
        spool.close()


@router.get("/runs/{run_id}/outputs", response_class=Response, responses={200: {"content": {"application/x-tar": {}}}})
def run_outputs(request: Request, run_id: str) -> StreamingResponse:
    """The run's output folder as a tar of its regular files."""
    state = state_of(request)
    job = state.registry.get(run_id)
    if job is not None and not job.finished:
        raise Conflict(f"run {run_id} is still {job.status}", hint="wait for it to finish", id=run_id)
    folder_id = run_id
    if job is not None and job.kind == "request" and job.outcome.report is not None:
        # A request's run folder is named by the pipeline's run id, which its report carries.
        folder_id = str(job.outcome.report.get("run_id", run_id))
    folder = state.services.runs.load(folder_id)
    spool = _tar_outputs(folder.output)
    headers = {"Content-Disposition": f'attachment; filename="{run_id}-outputs.tar"'}
    return StreamingResponse(_chunks(spool), media_type="application/x-tar", headers=headers)
