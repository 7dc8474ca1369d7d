"""Egress to named hosts, made by the host on a script's behalf, only where a reviewed policy grants it.

The sandbox never gets a network: its container stays ``network none``. A script that needs
an API calls ``harness_runtime.fetch(url)``; the request travels to the host on the event
channel, and the host makes it only if the URL's host is on the run's allow-list. So the
allow-list is enforced outside the container, on a channel the script cannot route around,
and every request (allowed or not) is logged.

Hardening: only http and https; only the ports named (443 and 80 by default); a host name
must not resolve to a private, loopback or link-local address (a DNS answer cannot open the
host's own network), unless the reviewed entry is that address itself; the connection goes to
the address that was checked, so a second DNS answer cannot switch it; redirects are returned
to the script, never followed, so each hop is checked again; request and response sizes and
the number of requests are capped.

Headers from the script must be RFC 9110 tokens with values free of control characters, and
none may frame or route the request (Host, Content-Length, Transfer-Encoding, hop-by-hop and
Proxy-* headers): the host sets those itself, so a script cannot smuggle a second request or
confuse the server about which site it asked. A request that breaks this is refused whole.

Each request has one deadline for all of it (name lookup, connect, TLS, headers and body), the
policy's time limit or the run's own deadline, whichever comes first: a watchdog shuts the
socket down when it passes, so a server dripping a byte at a time holds the host no longer.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from harness.errors import ConfigError
from harness.events import FetchRequestEvent

__all__ = ["NO_GRANT", "EgressPolicy", "FetchBroker", "FetchRefused", "parse_allow"]

NO_GRANT = "no egress is granted to this run: the sandbox has no network"

# Headers that route or frame the request, or speak to a hop rather than the server: the host
# sets what it needs of these itself (Host, Content-Length), and a script's own copy is refused.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"})
_HOP_BY_HOP = frozenset({"keep-alive", "proxy-connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2
# A field value is visible characters, obs-text, space and tab (RFC 9110 section 5.5); anything
# else, CR, LF and NUL above all, could end the header line early on some server.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_T = TypeVar("_T")


class FetchRefused(Exception):
    """A fetch the policy does not allow or that failed; the script receives the message."""


@dataclass(frozen=True)
class _Entry:
    host: str  # lower case; "*.example.com" matches sub-domains only
    port: int | None  # None: 443 for https, 80 for http
    literal: bool  # an IP address: allowed as is, private or not

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.port is None and port not in (80, 443):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    def __str__(self) -> str:
        return self.host + (f":{self.port}" if self.port is not None else "")


def parse_allow(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated, normalised allow-list entries (``host``, ``host:port``, ``*.domain``, an IP address)."""
    return tuple(str(_parse(e)) for e in entries)


def _parse(entry: str) -> _Entry:
    text = entry.strip().lower().rstrip(".")
    bad = ConfigError(
        f"{entry!r} is not an allowed-host entry",
        hint="use a host name (api.example.com), host:port, *.example.com, or an IP address",
    )
    if not text or "/" in text or "@" in text or " " in text:
        raise bad
    port: int | None = None
    host = text
    if text.startswith("["):  # [v6]:port
        close = text.find("]")
        if close < 0:
            raise bad
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise bad
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        if not number.isdigit():
            raise bad
        port = int(number)
    if port is not None and not 0 < port < 65536:
        raise bad
    try:
        ipaddress.ip_address(host)
        return _Entry(host, port, literal=True)
    except ValueError:
        pass
    labels = host[2:].split(".") if host.startswith("*.") else host.split(".")
    if (len(labels) < 2 and host != "localhost") or not all(_label_ok(label) for label in labels):
        raise bad  # a bare "*" or "com" would be no allow-list at all
    return _Entry(host, port, literal=False)


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c == "-" for c in label) and not label.startswith("-")


@dataclass(frozen=True)
class EgressPolicy:
    """Which hosts a run may reach through the host, and how much."""

    allow: tuple[str, ...] = ()
    max_requests: int = 100
    max_request_bytes: int = 48 * 1024  # what fits in one event line, base64-encoded
    max_response_bytes: int = 8 * 1024 * 1024
    timeout_s: float = 30.0

    @cached_property
    def entries(self) -> tuple[_Entry, ...]:
        """The parsed allow-list (parsed once)."""
        return tuple(_parse(e) for e in self.allow)


@dataclass
class _Tally:
    requests: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    refused: int = 0


@dataclass
class FetchBroker:
    """Answers ``fetch_request`` events for the backend (its ``on_fetch`` handler)."""

    policy: EgressPolicy
    resolve: Any = socket.getaddrinfo
    tally: dict[str, _Tally] = field(default_factory=dict)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> list[dict[str, Any]]:
        """Per host: requests, bytes each way, refusals (for the report)."""
        with self._lock:
            return [{"host": h, **vars(t)} for h, t in sorted(self.tally.items())]

    def __call__(self, request: FetchRequestEvent, *, deadline: float | None = None) -> dict[str, Any]:
        """Make the request or raise FetchRefused; returns status, headers and the body's bytes.

        ``deadline`` (``time.monotonic()`` seconds) is the run's own: the request ends by then at
        the latest, and by the policy's time limit from now in any case.
        """
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower().rstrip(".")
        with self._lock:
            self._count += 1
            count = self._count
            tally = self.tally.setdefault(host or "?", _Tally())
            tally.requests += 1
        limit = time.monotonic() + self.policy.timeout_s
        try:
            with _Watchdog(limit if deadline is None else min(limit, deadline)) as watchdog:
                reply = self._fetch(request, parts, host, count, watchdog)
        except FetchRefused:
            with self._lock:
                tally.refused += 1
            raise
        with self._lock:
            tally.bytes_out += reply["bytes_out"]
            tally.bytes_in += reply["bytes_in"]
        return reply

    def _fetch(
        self, request: FetchRequestEvent, parts: Any, host: str, count: int, watchdog: _Watchdog
    ) -> dict[str, Any]:
        policy = self.policy
        if count > policy.max_requests:
            raise FetchRefused(f"this run may make at most {policy.max_requests} requests")
        if request.method not in _METHODS:
            raise FetchRefused(f"method {request.method} is not allowed; use one of {', '.join(sorted(_METHODS))}")
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"only http and https URLs can be fetched, not {parts.scheme or 'a relative URL'}")
        if not host or parts.username or parts.password:
            raise FetchRefused("the URL needs a host and must not carry credentials")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchRefused("the URL's port is not a number") from None
        entry = next((e for e in policy.entries if e.matches(host, port)), None)
        if entry is None:
            raise FetchRefused(
                f"{host}:{port} is not on this run's allowed hosts ({', '.join(policy.allow) or 'none'})"
            )
        headers = _script_headers(request.headers)
        try:
            body = base64.b64decode(request.body_b64, validate=True) if request.body_b64 else b""
        except (binascii.Error, ValueError):
            raise FetchRefused("the request body is not valid base64") from None
        if len(body) > policy.max_request_bytes:
            raise FetchRefused(f"request bodies are capped at {policy.max_request_bytes} bytes")
        address = self._address(host, port, literal=entry.literal, watchdog=watchdog)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _connection(parts.scheme, host, port, address, watchdog)
        try:
            connection.request(request.method, path, body=body or None, headers=headers)
            with connection.getresponse() as response:
                data = _read_capped(response, policy.max_response_bytes, watchdog)
                reply_headers = {k.lower(): v for k, v in response.getheaders()}
                status = response.status
        except (OSError, ValueError, http.client.HTTPException, ssl.SSLError) as exc:
            watchdog.check()  # a socket shut at the deadline fails somewhere: say why
            raise FetchRefused(f"{host}:{port} failed: {type(exc).__name__}: {exc}"[:300]) from None
        finally:
            connection.close()
        watchdog.check()
        return {
            "status": status,
            "headers": reply_headers,
            "body": data,
            "host": host,
            "bytes_out": len(body),
            "bytes_in": len(data),
        }

    def _address(self, host: str, port: int, *, literal: bool, watchdog: _Watchdog) -> str:
        if literal:
            return host
        try:
            # getaddrinfo has no timeout of its own: it runs aside, and the request waits only until its deadline.
            answers = watchdog.run(lambda: self.resolve(host, port, type=socket.SOCK_STREAM), f"resolving {host}")
        except (OSError, UnicodeError) as exc:
            raise FetchRefused(f"cannot resolve {host}: {exc}") from None
        addresses = [str(a[4][0]) for a in answers]
        if not addresses:
            raise FetchRefused(f"cannot resolve {host}")
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global:
                raise FetchRefused(
                    f"{host} resolves to {address}, a private or local address; allow that address itself to reach it"
                )
        return addresses[0]


def _script_headers(given: Mapping[str, str]) -> dict[str, str]:
    """The script's headers, checked whole: one that could smuggle or reroute refuses the request."""
    headers: dict[str, str] = {}
    for name, value in given.items():
        shown = repr(name)[:80]
        if not _TOKEN.fullmatch(name):
            raise FetchRefused(f"header name {shown} is not a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)")
        lower = name.lower()
        if lower in _FRAMING or lower in _HOP_BY_HOP or lower.startswith("proxy-"):
            raise FetchRefused(f"header {name} is set by the host, not the script")
        if _BAD_VALUE.search(value):
            raise FetchRefused(f"header {name}'s value holds a control character or one outside Latin-1")
        headers[name] = value
    if not any(name.lower() == "user-agent" for name in headers):
        headers["User-Agent"] = "harness-sandbox"
    return headers


_TOO_SLOW = "the request took longer than its time limit"


class _Watchdog:
    """One deadline for a whole request: past it, the request's socket is shut down wherever it is blocked.

    A socket timeout bounds one read, not a request: a server sending a byte just before each
    timeout would hold the host forever. Reads of the status line and headers go through
    ``sock.makefile`` inside http.client, out of reach of any check between reads, so the
    watchdog acts on the socket itself from a timer thread.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        """Seconds left; FetchRefused once none are."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self.fired:
            raise FetchRefused(_TOO_SLOW)
        return left

    def check(self) -> None:
        """FetchRefused if the deadline has passed."""
        self.remaining()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once, if it has passed)."""
        sock.settimeout(self.remaining())
        with self._lock:
            self._sock = sock
            fired = self.fired
        if fired:
            _shut(sock)

    def run(self, work: Callable[[], _T], what: str) -> _T:
        """``work()`` in a daemon thread, waited for until the deadline; its exception re-raised here."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
                box["error"] = exc

        thread = threading.Thread(target=target, name="harness-egress-lookup", daemon=True)
        thread.start()
        thread.join(self.remaining())
        if thread.is_alive():
            raise FetchRefused(f"{_TOO_SLOW} ({what})")
        if "error" in box:
            raise box["error"]
        value: _T = box["value"]
        return value

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self._sock
        if sock is not None:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread; close() alone does not
    except OSError:
        pass  # already closed or never connected


def _read_capped(response: http.client.HTTPResponse, cap: int, watchdog: _Watchdog) -> bytes:
    """The body, refused past ``cap`` bytes or past the deadline (a server dripping bytes holds nothing)."""
    chunks: list[bytes] = []
    total = 0
    # Chunks, not one read of ``cap``: that would allocate the whole cap for every answer.
    while chunk := response.read1(min(1 << 20, cap + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise FetchRefused(f"the response passed the {cap}-byte cap")
        watchdog.check()
    return b"".join(chunks)


def _connection(scheme: str, host: str, port: int, address: str, watchdog: _Watchdog) -> http.client.HTTPConnection:
    """A connection to ``address`` that speaks to ``host`` (Host header, TLS name, certificate), in time."""

    def raw() -> socket.socket:
        sock = socket.create_connection((address, port), watchdog.remaining())
        try:
            watchdog.watch(sock)  # before TLS: a handshake dripped byte by byte is cut off too
        except BaseException:
            sock.close()
            raise
        return sock

    class Pinned(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = raw()

    class PinnedTls(http.client.HTTPSConnection):
        def connect(self) -> None:
            self.sock = ssl.create_default_context().wrap_socket(raw(), server_hostname=host)

    timeout = watchdog.remaining()
    if scheme == "https":
        return PinnedTls(host, port, timeout=timeout)
    return Pinned(host, port, timeout=timeout)
