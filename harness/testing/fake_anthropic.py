"""A fake Anthropic Messages API on 127.0.0.1, for tests that use the real ``anthropic`` SDK.

Point the SDK at it with ``base_url=server.base_url`` and script what it answers:

    with FakeAnthropic() as server:
        server.add(Reply.tool_use("write_script", {"code": "print(1)"}))
        server.add(Reply.error(429, retry_after=0))
        client = anthropic.Anthropic(api_key="test", base_url=server.base_url)

It speaks the real wire format: JSON messages, server-sent event streams with the real
event sequence (``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``),
usage with cache tokens, and error bodies with the real error types and status codes.
Every request it received is kept in ``server.requests``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FakeAnthropic", "ReceivedRequest", "Reply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted answer: a message (content blocks, stop reason, usage) or an error status."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(default_factory=dict)
    status: int = 200
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    chunk: int = 12  # characters per streamed delta
    delay_s: float = 0.0  # wait this long before answering (to test client time-outs)

    @classmethod
    def text(cls, text: str, **kw: Any) -> Reply:
        """A plain text answer."""
        return cls(content=[{"type": "text", "text": text}], **kw)

    @classmethod
    def tool_use(cls, name: str, payload: dict[str, Any], *, text: str = "", **kw: Any) -> Reply:
        """An answer that calls tool ``name`` with ``payload`` (optionally after some text)."""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name, "input": payload})
        kw.setdefault("stop_reason", "tool_use")
        return cls(content=blocks, **kw)

    @classmethod
    def error(cls, status: int, message: str = "", *, retry_after: float | None = None) -> Reply:
        """An HTTP error with the API's error body (429 and 529 may carry ``retry-after``)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls(status=status, error_message=message or f"fake {status}", headers=headers)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the fake server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Handler = Callable[[ReceivedRequest], Reply]


class FakeAnthropic:
    """A real HTTP server on 127.0.0.1 that answers like the Messages API, from a script."""

    def __init__(self, replies: list[Reply] | None = None, *, handler: Handler | None = None) -> None:
        self._replies: deque[Reply] = deque(replies or [])
        self.handler = handler
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------------------------------
    def add(self, *replies: Reply) -> FakeAnthropic:
        """Queue replies, answered in order."""
        with self._lock:
            self._replies.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Replies queued and not yet used."""
        return len(self._replies)

    def _next(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._replies:
                return self._replies.popleft()
        if self.handler is not None:
            return self.handler(request)
        return Reply.error(500, "the fake Anthropic server has no scripted reply left")

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The URL to give the SDK as ``base_url``."""
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropic:
        """Start serving on an ephemeral port of 127.0.0.1."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                request = ReceivedRequest(
                    path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body
                )
                if not self.path.startswith("/v1/messages"):
                    self._send_json(404, _error_body(404, f"no route {self.path}"))
                    return
                if self.path.startswith("/v1/messages/count_tokens"):
                    self._send_json(200, {"input_tokens": _estimate_tokens(body)})
                    return
                reply = fake._next(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._send_json(reply.status, _error_body(reply.status, reply.error_message), reply.headers)
                elif body.get("stream"):
                    self._stream(reply, body)
                else:
                    self._send_json(200, _message(reply, body))

            def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True
                for event in _sse_events(reply, body):
                    self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-answer (the SDK retrying, a test ending) are not errors here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _estimate_tokens(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body.get("messages", ""))) // 4 + len(json.dumps(body.get("system", ""))) // 4)


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    output = sum(len(json.dumps(b.get("input", b.get("text", "")))) for b in reply.content) // 4 + 1
    usage = {
        "input_tokens": _estimate_tokens(body),
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    usage.update(reply.usage)
    return usage


def _message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": _usage(reply, body),
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def _sse_events(reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    usage = _usage(reply, body)
    start = _message(reply, body) | {"content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    step = max(1, reply.chunk)
    for index, block in enumerate(reply.content):
        if block["type"] == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            text = block["text"]
            for at in range(0, len(text), step):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": text[at : at + step]},
                    }
                )
        elif block["type"] == "tool_use":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                }
            )
            partial = json.dumps(block["input"])
            for at in range(0, len(partial), step * 4):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": partial[at : at + step * 4]},
                    }
                )
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return events
