"""HarnessError → ``application/problem+json``: one table, the status from :func:`harness.errors.http_status`.

The problem's ``type`` is the error's class name, so a client turns it back into the same
``Error: ...`` line and exit code the CLI would give (``harness.cli.EXIT_CODES`` by class).
Errors that are not the library's own (a bug) answer 500 with no detail: a traceback can
hold paths and values that are none of the caller's business.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.errors import Busy, Draining, HarnessError, http_status

__all__ = ["PROBLEM_TYPE", "Busy", "Draining", "install", "problem", "problem_body"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"

# The attributes each error carries as data (RunError's stderr tail included: it is the caller's run).
_DATA_FIELDS = ("id", "name", "path", "record_id", "run_id", "stderr_tail", "kind", "reason", "at")


def problem_body(exc: HarnessError) -> dict[str, Any]:
    """The problem JSON for ``exc``: type (class name), title, status, detail, hint and data."""
    status = http_status(exc)
    body: dict[str, Any] = {
        "type": type(exc).__name__,
        "title": exc.message,
        "status": status,
        "detail": exc.one_line(),
    }
    if exc.hint:
        body["hint"] = exc.hint
    data = {name: getattr(exc, name) for name in _DATA_FIELDS if getattr(exc, name, "")}
    findings = getattr(exc, "findings", ())
    if findings:
        data["findings"] = [f.model_dump(mode="json") for f in findings]
    missing = getattr(exc, "missing", ())
    if missing:
        # What a form needs to ask for each missing input (a parameter, a scaffold, an LLM).
        data["missing"] = [m.model_dump(mode="json") for m in missing]
    if exc.fix is not None:
        data["fix"] = {"action": exc.fix.action, "target": exc.fix.target, "values": list(exc.fix.values)}
    if data:
        body["data"] = data
    return body


def problem(exc: HarnessError) -> JSONResponse:
    """The response for ``exc`` (with ``Retry-After`` when it is Busy)."""
    body = problem_body(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_TYPE, headers=headers)


def _plain(status: int, type_: str, title: str, detail: str = "", data: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail or title}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem JSON."""

    @app.exception_handler(HarnessError)
    async def _harness(request: Request, exc: HarnessError) -> JSONResponse:
        return problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        title = f"invalid {where or 'request'}: {str(first.get('msg', 'invalid')).lower()}"
        # Only locations and messages: echoing the input back could return megabytes of it.
        data = {"errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors[:20]]}
        return _plain(422, "InvalidInput", title, data=data)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 413: "TooLarge"}
        response = _plain(exc.status_code, names.get(exc.status_code, "HTTPError"), str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return _plain(500, "InternalError", "internal server error", "the server log has the details")
