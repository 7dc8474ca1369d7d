"""Who may use the review page: one-time login codes, a server-side session table, CSRF tokens.

A browser can neither reach a Unix socket nor attach a bearer token to a form, so over TCP the
server prints a one-time login link (``/review/login?code=...``, as notebook servers do). The
code is random, works once and expires soon; it is exchanged for a random session id kept in
an ``HttpOnly; SameSite=Strict; Path=/`` cookie, and the session lives only in this table
(nothing in the cookie is trusted besides being a key into it). The bearer token works too,
for programs. Over the Unix socket the socket's mode authenticates, so ``Sessions(token=None)``
asks for no login and hands every request one local session.

Every session carries its own CSRF token for the page's forms; POSTs are compared in constant
time. Codes and session ids are stored only as SHA-256 hashes, so the table itself holds
nothing a reader of a memory dump could replay, and lookups do not compare secrets directly.
The ``Host`` header must name a loopback address, an IP literal or an allowed name: a page on
another site that rebinds its DNS name to 127.0.0.1 then gets nothing, cookie or not.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["COOKIE", "Session", "Sessions"]

COOKIE = "harness_review"
_LOCAL = "local"
_BEARER = "bearer"


@dataclass(frozen=True)
class Session:
    """An authenticated visitor: how they got in, and the CSRF token their forms must carry."""

    via: str  # "cookie", "bearer" or "local" (the Unix socket)
    csrf: str
    key: str  # the hash the table knows this session by


@dataclass
class _Entry:
    csrf: str
    created: float
    seen: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    """The login codes and sessions of one server process (in memory: a restart signs everyone out)."""

    def __init__(
        self,
        token: str | None,
        *,
        code_ttl_s: float = 600.0,
        idle_s: float = 8 * 3600.0,
        max_age_s: float = 24 * 3600.0,
        max_sessions: int = 64,
        allowed_hosts: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bearer = f"Bearer {token}".encode() if token else None
        self.code_ttl_s = code_ttl_s
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.max_sessions = max_sessions
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, float] = {}  # sha256(code) -> expiry
        self._sessions: dict[str, _Entry] = {}  # sha256(session id) -> entry
        # Fixed per process: the pseudo-sessions of the socket and of bearer callers need a CSRF token too.
        self._fixed = {_LOCAL: secrets.token_urlsafe(32), _BEARER: secrets.token_urlsafe(32)}

    @property
    def login_required(self) -> bool:
        """True over TCP (a token is set); False on the Unix socket, whose mode authenticates."""
        return self._bearer is not None

    # -- login --------------------------------------------------------------------------------------
    def issue_login_code(self) -> str:
        """A fresh one-time code for ``/review/login?code=...``, valid for ``code_ttl_s`` seconds."""
        code = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v > now}
            self._codes[_digest(code)] = now + self.code_ttl_s
        return code

    def redeem(self, code: str) -> str | None:
        """Exchange a login code (once) for a new session id to put in the cookie; None if unknown, used or expired."""
        now = self._clock()
        with self._lock:
            expiry = self._codes.pop(_digest(code), None)  # popped: a second use finds nothing
            if expiry is None or expiry <= now:
                return None
            session_id = secrets.token_urlsafe(32)
            self._prune(now)
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].seen)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = _Entry(csrf=secrets.token_urlsafe(32), created=now, seen=now)
        return session_id

    def end(self, session: Session) -> None:
        """Sign a cookie session out (the other kinds have nothing to end)."""
        with self._lock:
            self._sessions.pop(session.key, None)

    # -- checking -----------------------------------------------------------------------------------
    def check(self, request: HTTPConnection) -> Session | None:
        """The session of a request, or None when it is not signed in."""
        return self.check_headers(request.headers, request.cookies)

    def check_headers(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Session | None:
        """The session for these request headers and cookies, or None when they are not signed in."""
        if not self.host_allowed(headers.get("host", "")):
            return None
        if self._bearer is None:
            return Session(via="local", csrf=self._fixed[_LOCAL], key=_LOCAL)
        given = headers.get("authorization", "").encode("utf-8", "surrogateescape")
        if given and hmac.compare_digest(given, self._bearer):
            return Session(via="bearer", csrf=self._fixed[_BEARER], key=_BEARER)
        cookie = cookies.get(COOKIE)
        if not cookie:
            return None
        key = _digest(cookie)
        now = self._clock()
        with self._lock:
            entry = self._sessions.get(key)
            if entry is None:
                return None
            if now - entry.seen > self.idle_s or now - entry.created > self.max_age_s:
                del self._sessions[key]
                return None
            entry.seen = now
            return Session(via="cookie", csrf=entry.csrf, key=key)

    @staticmethod
    def csrf_ok(session: Session, given: str) -> bool:
        """True when a form's CSRF field is this session's token (compared in constant time)."""
        return hmac.compare_digest(session.csrf.encode(), given.encode("utf-8", "surrogateescape"))

    def host_allowed(self, host: str) -> bool:
        """True for a ``Host`` header naming an IP literal, ``localhost`` or an allowed name (any port)."""
        try:
            name = (urlsplit(f"//{host}").hostname or "").lower()
        except ValueError:
            return False
        if not name:
            return False
        if name == "localhost" or name in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    @staticmethod
    def same_origin(headers: Mapping[str, str], scheme: str) -> bool:
        """False when the request's Origin (else Referer) names another origin than its Host.

        Browsers send Origin with every form POST; a request with neither header comes from a
        program, which the CSRF token alone covers.
        """
        host = headers.get("host", "")
        expected = f"{scheme}://{host}".lower()
        origin = headers.get("origin")
        if origin is not None:
            return origin.lower() == expected
        referer = headers.get("referer")
        if referer is not None:
            parts = urlsplit(referer)
            return f"{parts.scheme}://{parts.netloc}".lower() == expected
        return True

    def _prune(self, now: float) -> None:
        stale = [k for k, e in self._sessions.items() if now - e.seen > self.idle_s or now - e.created > self.max_age_s]
        for key in stale:
            del self._sessions[key]
