"""The review page at ``/review`` of ``harness serve``: the queue, each script with its findings, runs and decisions.

``review_router(services, sessions)`` builds the routes; the server mounts it and owns the
``Sessions`` (login codes, sessions and CSRF tokens). See ``router`` for the security headers
and ``sessions`` for who gets in.
"""

from __future__ import annotations

from harness.server.web.router import SECURITY_HEADERS, review_router
from harness.server.web.sessions import COOKIE, Session, Sessions

__all__ = ["COOKIE", "SECURITY_HEADERS", "Session", "Sessions", "review_router"]
