"""The runs of ``harness mcp`` through a running ``harness serve``: its warm pool, its stores, its queue.

When a server answers (``HARNESS_URL``, else the default socket), ``run_python`` and
``run_request`` submit their job over the HTTP API with the stdlib client (``harness.client``),
follow its events for progress, and read the result the server kept; a cancelled call cancels
the job. The outcome is built by the same functions as in-process, so an agent sees one shape
either way. The server's run folders are on this host (its socket is a local file), so small
outputs are read from there.
"""

from __future__ import annotations

import base64
import io
import tarfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import RemoteError

if TYPE_CHECKING:
    from harness.app.cancel import CancelToken
    from harness.app.scripts import LimitOverrides
    from harness.client import Client
    from harness.progress import RequestEvent
    from harness.records import RunResult

__all__ = ["RemoteError", "find_server", "report_folder", "request_body", "run_folder", "run_job", "script_body"]

_REQUEST_KINDS = frozenset({"analysed", "decided", "llm_call", "llm_text", "vetted", "phase_changed", "finished"})


def find_server(environ: Mapping[str, str] | None = None) -> Client | None:
    """A client for the ``harness serve`` that answers, or None: then the tools work in-process."""
    from harness.client import NoServer, connect

    try:
        return connect(environ=environ)
    except NoServer:
        return None


def inputs_tar(files: Mapping[str, bytes]) -> str | None:
    """The input files as the API takes them: base64 of an uncompressed tar, one entry per file."""
    if not files:
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def script_body(code: str, files: Mapping[str, bytes], limits: LimitOverrides) -> dict[str, Any]:
    """The ``POST /v1/runs`` body of a run_python call."""
    return {"source": code, "limits": limits.model_dump(exclude_none=True), "inputs_tar": inputs_tar(files)}


def request_body(
    request: str, template: str | None, params: Mapping[str, str], files: Mapping[str, bytes]
) -> dict[str, Any]:
    """The ``POST /v1/requests`` body of a run_request call."""
    return {"request": request, "template": template, "params": dict(params), "inputs_tar": inputs_tar(files)}


def run_job(
    client: Client,
    path: str,
    body: Mapping[str, Any],
    on_event: Callable[[RequestEvent], None],
    cancel: CancelToken,
) -> dict[str, Any]:
    """Submit a job, pass its events on, and return its final view (``GET /v1/runs/{id}``'s body).

    The server's problems, and a connection lost on the way, become a :class:`RemoteError`
    named after the class the server gave (or ``ServerLost``).
    """
    from harness.client import ClientError, ProblemError

    try:
        accepted = client.call("POST", path, dict(body))
        run_id = str(accepted["run_id"])
        stop = cancel.on_cancel(lambda: _cancel(client, run_id))
        try:
            final = _follow(client, str(accepted["events"]), on_event)
        finally:
            stop()
    except ProblemError as exc:
        raise _problem(exc.problem, exc.type) from None
    except ClientError as exc:
        raise RemoteError(str(exc), kind=type(exc).__name__) from None
    error = final.get("error")
    if isinstance(error, dict):
        raise _problem(error, str(error.get("type") or "HarnessError"))
    return final


def _problem(problem: Mapping[str, Any], kind: str) -> RemoteError:
    """A server's problem (``application/problem+json``) as the error it stands for: title, hint, class name."""
    title = str(problem.get("title") or "the harness server refused the job")
    hint = str(problem.get("hint") or "")
    return RemoteError(title, hint=hint if hint not in title else "", kind=kind)


def _follow(client: Client, events: str, on_event: Callable[[RequestEvent], None]) -> dict[str, Any]:
    """Pass a job's events on as the request events they were on the server; its final view."""
    from pydantic import TypeAdapter, ValidationError

    from harness.events import EVENT_ADAPTER
    from harness.progress import RequestEvent, RunEvent

    request_events: TypeAdapter[RequestEvent] = TypeAdapter(RequestEvent)
    for sse in client.events(events):
        if sse.event == "end":
            final = sse.json()
            return final if isinstance(final, dict) else {}
        try:
            data = sse.json()
            if sse.event in _REQUEST_KINDS:
                on_event(request_events.validate_python(data))
            elif isinstance(data, dict):
                # A run's own event, under its kind; in a plan, with the phase it belongs to.
                phase = data.pop("phase", None)
                event = EVENT_ADAPTER.validate_python(data)
                on_event(RunEvent(event=event, phase=phase if isinstance(phase, str) else None))
        except (ValueError, ValidationError):
            continue  # a kind this version does not know: progress only informs
    return {}


def _cancel(client: Client, run_id: str) -> None:
    # The token is set on the MCP server's event loop: the request goes from a thread of its own.
    def send() -> None:
        from harness.client import ClientError

        try:
            client.call("POST", f"/v1/runs/{run_id}/cancel")
        except ClientError:
            pass  # the job ended meanwhile, or the server went away: nothing is left to cancel

    threading.Thread(target=send, name=f"harness-mcp-cancel-{run_id}", daemon=True).start()


def run_folder(final: Mapping[str, Any], result: RunResult, fallback_runs: Path) -> Path:
    """A script run's folder on the server: as the server names it, else its default outputs folder's parent."""
    named = final.get("run_dir")
    if isinstance(named, str) and named:
        return Path(named)
    if result.output_dir is not None and result.output_dir.name == "output":
        return result.output_dir.parent
    return fallback_runs / result.run_id


def report_folder(report: Mapping[str, Any], fallback: Path) -> Path:
    """A request's run folder on the server: where its script was kept, else its outputs' folder, else ``fallback``."""
    script = report.get("script_path")
    if isinstance(script, str) and script:
        return Path(script).parent
    result = report.get("execution_result")
    output = result.get("output_dir") if isinstance(result, Mapping) else None
    if isinstance(output, str) and Path(output).name == "output":
        return Path(output).parent
    return fallback
