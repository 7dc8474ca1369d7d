"""``review_router(...)``: the review page the server mounts at ``/review``.

Server-rendered: Jinja2 with autoescape on and strict undefined, one vendored stylesheet, no
script at all, so the Content-Security-Policy can be ``default-src 'self'`` with nothing inline.
Every page and redirect carries the security headers below; every POST needs a signed-in
session (``Sessions``), that session's CSRF token, and an Origin (else Referer) naming this
server. Script-controlled text arrives here already made visible (``views``) and is
HTML-escaped by the templates.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.errors import HarnessError, http_status
from harness.safe_text import visible
from harness.server.web import actions, views
from harness.server.web.sessions import COOKIE, Session, Sessions

if TYPE_CHECKING:
    from harness.services import Services

__all__ = ["SECURITY_HEADERS", "review_router"]

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATUSES = ("pending_review", "approved", "rejected", "promoted")
_FORM_LIMITS = {"max_files": 0, "max_fields": 200}


def _environment() -> Environment:
    folder = resources.files("harness.server.web") / "templates"
    return Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def review_router(
    services: Callable[[], Services],
    sessions: Sessions,
    *,
    reviewer: str | None = None,
) -> APIRouter:
    """The review page's routes under ``/review``; ``services`` returns the server's open ``Services``."""
    router = APIRouter(prefix="/review", include_in_schema=False)
    env = _environment()
    css = (resources.files("harness.server.web") / "static" / "review.css").read_bytes()
    default_reviewer = reviewer or _default_reviewer()

    def page(name: str, code: int = 200, **context: object) -> HTMLResponse:
        html = env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=code, headers=dict(SECURITY_HEADERS))

    def refused(status: int, title: str, detail: str, session: Session | None = None) -> HTMLResponse:
        return page("message.html", status, title=title, detail=detail, session=session)

    def unauthorized() -> HTMLResponse:
        return refused(
            401,
            "Sign in first",
            "Open the one-time login link that harness serve printed when it started; "
            "it signs this browser in for this server.",
        )

    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers=dict(SECURITY_HEADERS))

    async def posted(request: Request) -> tuple[Session, dict[str, list[str]]] | HTMLResponse:
        """The session and form of a POST, or the refusal to answer with."""
        session = sessions.check(request)
        if session is None:
            return unauthorized()
        if not sessions.same_origin(request.headers, request.url.scheme):
            return refused(403, "Refused", "This form was sent from another site.", session)
        async with request.form(**_FORM_LIMITS) as form:
            fields: dict[str, list[str]] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    fields.setdefault(key, []).append(value)
        token = (fields.get("csrf") or [""])[0]
        if not sessions.csrf_ok(session, token):
            return refused(403, "Refused", "This form has no valid CSRF token: reload the page and try again.", session)
        return session, fields

    def one(fields: Mapping[str, list[str]], name: str) -> str:
        return (fields.get(name) or [""])[0].strip()

    async def script(
        session: Session, record_id: str, *, done: str = "", error: HarnessError | None = None
    ) -> HTMLResponse:
        try:
            view = await run_in_threadpool(views.script_page, services(), record_id)
        except HarnessError as exc:
            return refused(http_status(exc), "Not shown", visible(exc.one_line()), session)
        return page(
            "script.html",
            http_status(error) if error else 200,
            page=view,
            session=session,
            done=done,
            error=visible(error.one_line()) if error else "",
            reviewer=visible(default_reviewer),
        )

    @router.get("/static/review.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})

    @router.get("/login")
    def login(request: Request, code: str = "") -> Response:
        if not sessions.login_required:
            return redirect("/review/")
        if not sessions.host_allowed(request.headers.get("host", "")):
            return unauthorized()
        session_id = sessions.redeem(code) if code else None
        if session_id is None:
            return refused(
                403,
                "This login link does not work",
                "Each link works once and for a short time. Ask harness serve for a new one.",
            )
        response = redirect("/review/")
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/")
        return response

    @router.post("/login-link")
    def login_link(request: Request) -> Response:
        # For the bearer token's holder (a program, never a browser form): a fresh link when the
        # one printed at start-up was used or has expired. Browsers never attach the token, so no CSRF.
        session = sessions.check(request)
        if session is None or session.via != "bearer":
            return unauthorized()
        path = f"/review/login?code={sessions.issue_login_code()}"
        return JSONResponse({"path": path, "expires_in_s": sessions.code_ttl_s}, headers=dict(SECURITY_HEADERS))

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        checked = await posted(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, _ = checked
        sessions.end(session)
        response = refused(200, "Signed out", "This browser is signed out of the review page.")
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", path="/")
        return response

    @router.get("/")
    async def queue(request: Request, status: str = "pending_review") -> Response:
        session = sessions.check(request)
        if session is None:
            return unauthorized()
        wanted = None if status == "all" else status
        if wanted is not None and wanted not in _STATUSES:
            return refused(422, "Unknown status", visible(f"{status!r} is not a review status"), session)
        items = await run_in_threadpool(views.queue, services(), wanted)
        return page("queue.html", items=items, status=status, statuses=_STATUSES, session=session)

    @router.get("/scripts/{record_id}")
    async def show(request: Request, record_id: str, done: str = "") -> Response:
        session = sessions.check(request)
        if session is None:
            return unauthorized()
        return await script(session, record_id, done=done if done in _STATUSES else "")

    async def act(
        request: Request, record_id: str, done: str, do: Callable[[Mapping[str, list[str]]], object]
    ) -> Response:
        # Every review action: a checked POST, the action off the event loop, the script page again
        # with the error on failure, else a redirect that says what was done.
        checked = await posted(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, fields = checked
        try:
            await run_in_threadpool(do, fields)
        except HarnessError as exc:
            return await script(session, record_id, error=exc)
        return redirect(f"/review/scripts/{record_id}?done={done}")

    @router.post("/scripts/{record_id}/approve")
    async def approve(request: Request, record_id: str) -> Response:
        return await act(
            request,
            record_id,
            "approved",
            lambda fields: actions.approve(
                services(),
                record_id,
                reviewer=one(fields, "reviewer") or default_reviewer,
                reason=one(fields, "reason"),
                hosts=actions.split_hosts(one(fields, "hosts")),
                sha256=one(fields, "sha256"),
            ),
        )

    @router.post("/scripts/{record_id}/reject")
    async def reject(request: Request, record_id: str) -> Response:
        return await act(
            request,
            record_id,
            "rejected",
            lambda fields: actions.reject(
                services(),
                record_id,
                reviewer=one(fields, "reviewer") or default_reviewer,
                reason=one(fields, "reason"),
            ),
        )

    @router.post("/scripts/{record_id}/promote")
    async def promote(request: Request, record_id: str) -> Response:
        return await act(
            request,
            record_id,
            "promoted",
            lambda fields: actions.promote(
                services(),
                record_id,
                name=one(fields, "name"),
                constants=[c for c in fields.get("param", []) if c],
                reviewer=one(fields, "reviewer") or default_reviewer,
            ),
        )

    return router
