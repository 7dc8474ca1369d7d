"""The egress allow-list and the host's fetch broker, without the sandbox."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.events import FetchRequestEvent
from harness.execution.egress import EgressPolicy, FetchBroker, FetchRefused, parse_allow


@pytest.mark.parametrize(
    ("entry", "normal"),
    [
        ("API.Example.com", "api.example.com"),
        ("api.example.com.", "api.example.com"),
        ("api.example.com:8443", "api.example.com:8443"),
        ("*.example.com", "*.example.com"),
        ("10.0.0.5", "10.0.0.5"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[::1]:8080", "::1:8080"),
    ],
)
def test_entries_are_normalised(entry: str, normal: str) -> None:
    assert parse_allow([entry]) == (normal,)


@pytest.mark.parametrize(
    "entry", ["", "*", "com", "*.com", "http://api.example.com", "a b.com", "user@host.com", "host.com:0", "-x.com"]
)
def test_bad_entries_are_one_clear_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="is not an allowed-host entry"):
        parse_allow([entry])


def request(url: str, **kw: Any) -> FetchRequestEvent:
    return FetchRequestEvent(id="f1", url=url, **kw)


def refused(broker: FetchBroker, url: str, **kw: Any) -> str:
    with pytest.raises(FetchRefused) as info:
        broker(request(url, **kw))
    return str(info.value)


def no_dns(*args: Any, **kw: Any) -> Any:
    raise AssertionError("a refused request must not be resolved")


def test_hosts_ports_and_schemes_are_checked_before_any_lookup() -> None:
    broker = FetchBroker(EgressPolicy(allow=("api.example.com", "*.data.example.org:8443")), resolve=no_dns)
    assert "evil.example.com:443 is not on this run's allowed hosts" in refused(broker, "https://evil.example.com/")
    assert "api.example.com:8080 is not on" in refused(broker, "https://api.example.com:8080/")
    assert "data.example.org:8443 is not on" in refused(broker, "https://data.example.org:8443/")  # sub-domains only
    assert "only http and https" in refused(broker, "ftp://api.example.com/")
    assert "must not carry credentials" in refused(broker, "https://user:pw@api.example.com/")
    assert "port is not a number" in refused(broker, "https://api.example.com:http/")
    tally = {row["host"]: (row["requests"], row["refused"]) for row in broker.summary()}
    assert tally == {"api.example.com": (4, 4), "data.example.org": (1, 1), "evil.example.com": (1, 1)}


def test_names_resolving_to_private_addresses_are_refused() -> None:
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", ("10.1.2.3", port))]

    broker = FetchBroker(EgressPolicy(allow=("internal.example.com",)), resolve=resolve)
    assert "resolves to 10.1.2.3, a private or local address" in refused(broker, "https://internal.example.com/")


class _Echo(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"x" * int(self.path.strip("/") or 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_caps_on_requests_and_sizes(local: int) -> None:
    policy = EgressPolicy(allow=(f"127.0.0.1:{local}",), max_requests=3, max_response_bytes=100, max_request_bytes=10)
    broker = FetchBroker(policy, resolve=no_dns)
    reply = broker(request(f"http://127.0.0.1:{local}/100"))
    assert reply["status"] == 200 and reply["body"] == b"x" * 100
    assert "passed the 100-byte cap" in refused(broker, f"http://127.0.0.1:{local}/101")
    body = base64.b64encode(b"y" * 11).decode()
    assert "capped at 10 bytes" in refused(broker, f"http://127.0.0.1:{local}/1", method="POST", body_b64=body)
    assert "at most 3 requests" in refused(broker, f"http://127.0.0.1:{local}/1")
    assert broker.summary() == [{"host": "127.0.0.1", "requests": 4, "bytes_out": 0, "bytes_in": 100, "refused": 3}]


def test_an_unreachable_allowed_host_is_a_refusal_not_a_crash() -> None:
    broker = FetchBroker(EgressPolicy(allow=("127.0.0.1:9",), timeout_s=2))
    assert refused(broker, "http://127.0.0.1:9/").startswith("127.0.0.1:9 failed: ConnectionRefusedError")


def test_only_ordinary_methods_and_clean_headers(local: int) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{local}",)), resolve=no_dns)
    assert "method CONNECT is not allowed" in refused(broker, f"http://127.0.0.1:{local}/", method="CONNECT")
    bad = {"Bad:Name": "v"}  # http.client refuses it: a refusal, not a crash
    assert "failed: ValueError" in refused(broker, f"http://127.0.0.1:{local}/1", headers=bad)
    reply = broker(request(f"http://127.0.0.1:{local}/3", headers={"Host": "evil", "X-Ok": "1", "Bad": "a\nb"}))
    assert reply["status"] == 200


class _Drip(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        import time

        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.05)


def test_a_server_dripping_bytes_cannot_hold_the_host_past_the_time_limit() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = int(server.server_address[1])
        broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{port}",), timeout_s=0.5), resolve=no_dns)
        assert "took longer than the request's time limit" in refused(broker, f"http://127.0.0.1:{port}/")
    finally:
        server.shutdown()
        server.server_close()
