"""The guard in front of every route: the bearer token (constant-time) and the body cap, before any route runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from harness.server.guard import Guard

Message = dict[str, Any]


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _call(guard: Guard, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, Message, bytes]:
    sent: list[Message] = []
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)] or [
        {"type": "http.request", "body": b""}
    ]

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/runs", "headers": headers}
    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_no_token_configured_lets_requests_through() -> None:
    assert _call(Guard(_inner, token=None, max_body=100), [], [b"abc"])[0] == 200


def test_a_token_is_required_and_compared_exactly() -> None:
    guard = Guard(_inner, token="s3cret-token", max_body=100)
    status, headers, body = _call(guard, [], [])
    assert status == 401 and headers[b"www-authenticate"].startswith(b"Bearer")
    assert json.loads(body)["type"] == "Unauthorized"
    for wrong in (b"Bearer s3cret-toke", b"Bearer s3cret-token ", b"bearer s3cret-token", b"s3cret-token"):
        assert _call(guard, [(b"authorization", wrong)], [])[0] == 401
    assert _call(guard, [(b"authorization", b"Bearer s3cret-token")], [])[0] == 200


def test_bodies_over_the_cap_are_413_by_length_or_as_they_stream() -> None:
    guard = Guard(_inner, token=None, max_body=10)
    assert _call(guard, [(b"content-length", b"11")], [b"x" * 11])[0] == 413
    assert _call(guard, [], [b"x" * 6, b"x" * 6])[0] == 413  # chunked: counted as it arrives
    assert _call(guard, [], [b"x" * 5, b"x" * 5])[:1] == (200,)
