"""The ASGI guard in front of every route: the bearer token on TCP, and the request body's size cap.

On a Unix socket the socket's mode (0600, in a 0700 folder) authenticates, and no token is
asked. On TCP every request needs ``Authorization: Bearer <token>`` (loopback included: other
users on the machine can reach it), compared in constant time. No CORS headers are ever sent,
so a web page elsewhere cannot read answers even if it guesses the port. The review page
(``/review``) is the one exception to the token: a browser cannot attach one, so its routes
check a session cookie from a one-time login link, or the token, themselves
(``harness.server.web.Sessions``).
"""

from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Guard"]


class _TooLarge(HTTPException):
    # An HTTPException, so a route reading the body answers 413 through the app's own handler.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _problem(status: int, type_: str, title: str, extra_headers: list[tuple[bytes, bytes]]) -> tuple[Message, Message]:
    body = json.dumps({"type": type_, "title": title, "status": status, "detail": title}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            *extra_headers,
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class Guard:
    """Refuses unauthenticated requests (401) and bodies over ``max_body`` bytes (413) before any route runs."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token and the body size, then hand the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.lower(), value)
        path = scope.get("path", "")
        reviewing = path == "/review" or path.startswith("/review/")
        if (
            self._expected is not None
            and not reviewing
            and not hmac.compare_digest(headers.get(b"authorization", b""), self._expected)
        ):
            for message in _problem(
                401,
                "Unauthorized",
                "a bearer token is required (see <data dir>/server-token)",
                [(b"www-authenticate", b'Bearer realm="harness"')],
            ):
                await send(message)
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._too_large(send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        title = f"the request body is larger than {self.max_body} bytes"
        for message in _problem(413, "TooLarge", title, []):
            await send(message)
