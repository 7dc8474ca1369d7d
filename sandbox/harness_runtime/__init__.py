"""The helper that scripts running inside the harness sandbox import.

Every call writes one JSON line to stdout (and flushes it), following the
event protocol the host reads (``harness/events.py``).  Standard library only:
this package is copied into the sandbox image and must work there unchanged.

    import harness_runtime as hr

    with hr.phase("scan"):
        for i, path in enumerate(paths):
            hr.progress(i + 1, len(paths), path.name)
    hr.result({"files": len(paths)})

Nothing here decides whether a run succeeded: the host reads the exit code.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "INPUT_DIR",
    "OUTPUT_DIR",
    "SCHEMA_VERSION",
    "AgentError",
    "FetchError",
    "Response",
    "agent",
    "artifact",
    "emit",
    "fetch",
    "log",
    "metric",
    "phase",
    "progress",
    "result",
]

SCHEMA_VERSION = 1
INPUT_DIR = "/input"
OUTPUT_DIR = "/output"

_lock = threading.Lock()
_ask_lock = threading.Lock()
_request_ids = itertools.count(1)
_replies: Any = None  # the binary reader of the host's answers, opened on first use


class AgentError(RuntimeError):
    """Raised by :func:`agent` when the host could not answer (no provider, unknown role, budget)."""


class FetchError(RuntimeError):
    """Raised by :func:`fetch` when the host refused the request (host not allowed, no grant) or it failed."""


def emit(kind: str, **fields: Any) -> None:
    """Write one protocol event as a single flushed JSON line on the real stdout."""
    record = {"v": SCHEMA_VERSION, "kind": kind, **fields}
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
    with _lock:
        # Flush the script's own buffered prints first so event order matches write order,
        # and write to the original stdout even when the script has redirected sys.stdout.
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        out = sys.__stdout__
        if out is None:
            return
        out.write(line)
        out.flush()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a named phase: a ``start`` event on entry and an ``end`` event on exit."""
    emit("phase", name=name, status="start")
    ok = False
    try:
        yield
        ok = True
    finally:
        emit("phase", name=name, status="end", ok=ok)


def progress(done: float, total: float | None = None, message: str = "", *, phase: str | None = None) -> None:
    """Report progress: ``done`` out of ``total`` units, with an optional short message."""
    emit("progress", done=done, total=total, message=message, phase=phase)


def log(message: str, level: str = "info") -> None:
    """Write a log line (level: debug, info, warning, error)."""
    emit("log", level=level, message=str(message))


def metric(name: str, value: float, unit: str = "") -> None:
    """Report a named numeric measurement."""
    emit("metric", name=name, value=value, unit=unit)


def processed(
    read: int,
    out: int,
    skipped: int = 0,
    *,
    unit: str = "records",
    out_as: str = "used",
    skipped_as: str = "skipped",
) -> None:
    """Account for the work: ``read`` items in, ``out`` of them in the result, ``skipped`` left out.

    ``read`` must equal ``out + skipped``: the host checks it, and fails a run that read nothing.
    The words make the summary line ("600 lines read, 598 parsed, 2 skipped").
    """
    metric("records_in", read, f"{unit} read")
    metric("records_out", out, f"{unit} {out_as}")
    metric("records_skipped", skipped, f"{unit} {skipped_as}" if skipped_as != "skipped" else "skipped")


def artifact(path: str, description: str = "") -> None:
    """Declare a file written under /output as a deliverable of the run."""
    emit("artifact", path=str(path), description=description)


def result(data: Any) -> None:
    """Report the script's structured result (informational: the exit code decides success)."""
    emit("result", data=data)


def agent(role: str, prompt: str) -> str:
    """Ask the host to run an LLM agent call for ``role`` and return its answer.

    The host holds the API key and the token budget; the sandbox has neither. The answer
    arrives as one JSON line on the reply channel. Raises :class:`AgentError` when the host declines.
    """
    reply = _ask_host("agent_request", f"a{next(_request_ids)}", AgentError, role=role, prompt=prompt)
    if reply.get("ok"):
        return str(reply.get("text", ""))
    raise AgentError(str(reply.get("error") or "the host declined the agent call"))


class Response:
    """What :func:`fetch` returns: status, lower-cased headers, the body as bytes."""

    def __init__(self, url: str, status: int, headers: dict[str, str], body: bytes) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded as text."""
        return self.body.decode(encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url} {len(self.body)} bytes>"


def fetch(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | str | None = None
) -> Response:
    """Ask the host to make an HTTP request; only hosts a reviewed policy allows are reached.

    The sandbox has no network of its own: the host makes the request, checks the URL against
    the run's allowed hosts, and returns the response (redirects are not followed). Raises
    :class:`FetchError` when the host refuses or the request fails.
    """
    body = data.encode("utf-8") if isinstance(data, str) else (data or b"")
    reply = _ask_host(
        "fetch_request",
        f"f{next(_request_ids)}",
        FetchError,
        method=method.upper(),
        url=url,
        headers=dict(headers or {}),
        body_b64=base64.b64encode(body).decode("ascii"),
    )
    if not reply.get("ok"):
        raise FetchError(str(reply.get("error") or "the host refused the request"))
    raw_headers = reply.get("headers")
    return Response(
        url,
        int(reply.get("status") or 0),
        {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {},
        bytes(reply.get("body") or b""),
    )


def _reply_channel() -> Any:
    """The binary stream the host's answers arrive on: fd $HARNESS_REPLY_FD (the supervisor's pipe).

    The script's own stdin is at end of file, so ``input()`` cannot wait on the host. Without
    the variable (the runtime used outside the sandbox), stdin is the channel.
    """
    global _replies
    if _replies is None:
        fd = os.environ.get("HARNESS_REPLY_FD", "")
        if fd.isdigit():
            _replies = os.fdopen(int(fd), "rb", closefd=False)
        elif sys.stdin is not None:
            _replies = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    return _replies


def _ask_host(kind: str, request_id: str, error: type[Exception], **fields: Any) -> dict[str, Any]:
    """Send a request event and wait for the host's answer to it on the reply channel.

    The answer is one JSON line, followed by ``body_len`` raw bytes when it has a body.
    One request at a time: threads take turns, so answers cannot cross.
    """
    with _ask_lock:
        emit(kind, id=request_id, **fields)
        try:
            source = _reply_channel()
        except OSError as exc:
            raise error(f"no channel to the host: {exc}") from None
        if source is None:
            raise error("no channel to the host")
        while True:
            raw = source.readline()
            if not raw:
                raise error("the host closed the channel before answering")
            try:
                reply = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(reply, dict):
                continue
            size = reply.get("body_len")
            body = b""
            if isinstance(size, int) and size > 0:
                body = source.read(size)
                if len(body) != size:
                    raise error("the host closed the channel in the middle of an answer")
            if reply.get("id") == request_id:
                reply["body"] = body
                return reply
