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
to the script, never followed, so each hop is checked again; request and response sizes, the
number of requests and each request's time are capped.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError
from harness.events import FetchRequestEvent

__all__ = ["NO_GRANT", "EgressPolicy", "FetchBroker", "FetchRefused", "parse_allow"]

NO_GRANT = "no egress is granted to this run: the sandbox has no network"

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade"}
_SET_BY_HOST = {"host", "content-length", "transfer-encoding"}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


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

    def __call__(self, request: FetchRequestEvent) -> dict[str, Any]:
        """Make the request or raise FetchRefused; returns status, headers and the body's bytes."""
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower().rstrip(".")
        with self._lock:
            self._count += 1
            count = self._count
            tally = self.tally.setdefault(host or "?", _Tally())
            tally.requests += 1
        try:
            reply = self._fetch(request, parts, host, count)
        except FetchRefused:
            with self._lock:
                tally.refused += 1
            raise
        with self._lock:
            tally.bytes_out += reply["bytes_out"]
            tally.bytes_in += reply["bytes_in"]
        return reply

    def _fetch(self, request: FetchRequestEvent, parts: Any, host: str, count: int) -> dict[str, Any]:
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
        address = self._address(host, port, literal=entry.literal)
        try:
            body = base64.b64decode(request.body_b64, validate=True) if request.body_b64 else b""
        except (binascii.Error, ValueError):
            raise FetchRefused("the request body is not valid base64") from None
        if len(body) > policy.max_request_bytes:
            raise FetchRefused(f"request bodies are capped at {policy.max_request_bytes} bytes")
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP | _SET_BY_HOST and "\n" not in v
        }
        headers.setdefault("User-Agent", "harness-sandbox")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _connection(parts.scheme, host, port, address, policy.timeout_s)
        deadline = time.monotonic() + policy.timeout_s
        try:
            connection.request(request.method, path, body=body or None, headers=headers)
            with connection.getresponse() as response:
                data = _read_capped(response, policy.max_response_bytes, deadline)
                reply_headers = {k.lower(): v for k, v in response.getheaders()}
                status = response.status
        except (OSError, ValueError, http.client.HTTPException, ssl.SSLError) as exc:
            raise FetchRefused(f"{host}:{port} failed: {type(exc).__name__}: {exc}"[:300]) from None
        finally:
            connection.close()
        return {
            "status": status,
            "headers": reply_headers,
            "body": data,
            "host": host,
            "bytes_out": len(body),
            "bytes_in": len(data),
        }

    def _address(self, host: str, port: int, *, literal: bool) -> str:
        if literal:
            return host
        try:
            answers = self.resolve(host, port, type=socket.SOCK_STREAM)
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


def _read_capped(response: http.client.HTTPResponse, cap: int, deadline: float) -> bytes:
    """The body, refused past ``cap`` bytes or past ``deadline`` (a server dripping bytes holds nothing)."""
    chunks: list[bytes] = []
    total = 0
    # Chunks, not one read of ``cap``: that would allocate the whole cap for every answer.
    while chunk := response.read1(min(1 << 20, cap + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise FetchRefused(f"the response passed the {cap}-byte cap")
        if time.monotonic() > deadline:
            raise FetchRefused("the response took longer than the request's time limit")
    return b"".join(chunks)


def _connection(scheme: str, host: str, port: int, address: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to ``address`` that speaks to ``host`` (Host header, TLS name and certificate)."""

    class Pinned(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.create_connection((address, port), timeout)

    class PinnedTls(http.client.HTTPSConnection):
        def connect(self) -> None:
            raw = socket.create_connection((address, port), timeout)
            self.sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)

    if scheme == "https":
        return PinnedTls(host, port, timeout=timeout)
    return Pinned(host, port, timeout=timeout)
