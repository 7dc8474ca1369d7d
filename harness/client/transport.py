"""HTTP to a running ``harness serve``, over its Unix socket or TCP, with the standard library only.

The thin CLI starts here, so nothing heavy is imported: ``http.client`` on an ``AF_UNIX`` socket
(or TCP with the bearer token), plain ``json``. A ``429 Busy`` is retried after its
``Retry-After`` (bounded); a job's events come as Server-Sent Events and a dropped stream is
resumed with ``Last-Event-ID``.

    ClientError                  root of what the client raises (harness.client.endpoint)
    ├── NoServer                 nothing answered at the address (the CLI then works in-process)
    ├── ServerLost               the server went away in the middle of a command
    └── ProblemError             the server answered with an ``application/problem+json`` error
"""

from __future__ import annotations

import http.client
import json
import socket
import time

from harness.client.endpoint import ClientError, Endpoint, NoServer, probe, resolve

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

__all__ = ["Client", "ProblemError", "ServerLost", "SseEvent", "UnixHTTPConnection", "connect"]

RETRY_ATTEMPTS = 5  # 429s retried before giving up
RETRY_MAX_WAIT_S = 30.0  # longest single Retry-After honoured
RESUME_ATTEMPTS = 5  # reconnections of one event stream


class ServerLost(ClientError):
    """Raised when the server stops answering in the middle of a command."""


class ProblemError(ClientError):
    """Raised when the server answers with an error (``application/problem+json``); carries the problem."""

    def __init__(self, problem: Mapping[str, Any], status: int) -> None:
        super().__init__(str(problem.get("title") or f"HTTP {status}"))
        self.problem = dict(problem)
        self.status = status

    @property
    def type(self) -> str:
        """The error class name the server raised (``Busy`` for a full queue)."""
        return str(self.problem.get("type") or "HarnessError")

    @property
    def schema_refused(self) -> bool:
        """True when the server's request schema refused the body (a 422 listing the fields), before any work."""
        data = self.problem.get("data")
        return self.status == 422 and isinstance(data, dict) and "errors" in data

    @property
    def not_taken(self) -> bool:
        """True when the server took no work for reasons of its own: its schema refused the body, or it is draining."""
        return self.schema_refused or self.type == "Draining"


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over an ``AF_UNIX`` stream socket."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        """Connect to the socket file instead of a host and port."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class SseEvent:
    """One Server-Sent Event: its ``id`` (sequence), ``event`` kind and ``data`` text."""

    __slots__ = ("data", "event", "id")

    def __init__(self, event: str, data: str, id: str | None) -> None:
        self.event, self.data, self.id = event, data, id

    def json(self) -> Any:
        """The data, parsed as JSON."""
        return json.loads(self.data)


class Client:
    """Requests to one server; a new connection per request (the server is local, connecting is cheap)."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        self.endpoint = endpoint
        self.timeout = timeout
        self._sleep = sleep

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.endpoint.path:
            return UnixHTTPConnection(self.endpoint.path, timeout=timeout)
        return http.client.HTTPConnection(self.endpoint.host, self.endpoint.port, timeout=timeout)

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", **(extra or {})}
        if self.endpoint.token:
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        return headers

    def open(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request, retrying on ``429`` after ``Retry-After``; the open connection and its response.

        An error status becomes a ProblemError; the caller reads (and closes) a successful response.
        """
        payload = None if body is None else json.dumps(body).encode("utf-8")
        sent = self._headers(headers)
        if payload is not None:
            sent["Content-Type"] = "application/json"
        for attempt in range(RETRY_ATTEMPTS + 1):
            conn = self._connection(self.timeout if timeout is None else timeout)
            try:
                conn.request(method, path, body=payload, headers=sent)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise ServerLost(f"lost the connection to the harness server at {self.endpoint}: {exc}") from None
            if response.status < 400:
                return conn, response
            problem = _problem(response)
            conn.close()
            if response.status == 429 and attempt < RETRY_ATTEMPTS:
                self._sleep(_retry_after(response.getheader("Retry-After")))
                continue
            raise ProblemError(problem, response.status)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """One JSON request and its JSON answer (ProblemError for an error answer)."""
        conn, response = self.open(method, path, body, timeout=timeout)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ServerLost(f"lost the connection to the harness server at {self.endpoint}: {exc}") from None
        finally:
            conn.close()
        return json.loads(data) if data else None

    def events(self, path: str, *, last_event_id: str | None = None) -> Iterator[SseEvent]:
        """A job's Server-Sent Events until its ``end`` event, reconnecting with ``Last-Event-ID`` when dropped."""
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                # No read time-out: a quiet run may print nothing for minutes.
                conn, response = self.open("GET", path, headers=headers, timeout=None)
            except ServerLost:
                failures += 1
                if failures > RESUME_ATTEMPTS:
                    raise
                self._sleep(min(0.05 * 2**failures, 1.0))
                continue
            try:
                for event in _parse_sse(response):
                    if event.id is not None:
                        last_event_id = event.id
                    failures = 0
                    yield event
                    if event.event == "end":
                        return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            # The stream ended without ``end``: the connection dropped; resume after the last event seen.
            failures += 1
            if failures > RESUME_ATTEMPTS:
                raise ServerLost(f"the harness server at {self.endpoint} kept dropping the event stream")
            self._sleep(min(0.05 * 2**failures, 1.0))


def _parse_sse(response: http.client.HTTPResponse) -> Iterator[SseEvent]:
    """The events of a ``text/event-stream`` body: ``id``/``event``/``data`` fields, a blank line ends each."""
    event, data, event_id = "message", list[str](), None
    seen = False
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if seen:
                yield SseEvent(event, "\n".join(data), event_id)
            event, data, seen = "message", [], False
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        seen = True
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def _problem(response: http.client.HTTPResponse) -> dict[str, Any]:
    body = response.read()
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = body.decode("utf-8", errors="replace").strip()[:200]
        problem = {"type": "HarnessError", "title": text or f"HTTP {response.status} {response.reason}"}
    problem.setdefault("status", response.status)
    return problem


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value else 1.0
    except ValueError:
        seconds = 1.0  # an HTTP date: not worth a date parser here
    return min(max(seconds, 0.0), RETRY_MAX_WAIT_S)


def connect(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> Client:
    """A client for the server at ``url`` (else ``HARNESS_URL``, else the default socket); NoServer if none answers."""
    endpoint = resolve(url, environ)
    if not probe(endpoint):
        raise NoServer(f"no harness server answers at {endpoint}")
    return Client(endpoint)
