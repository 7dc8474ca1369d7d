"""The egress allow-list and the host's fetch broker, without the sandbox."""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import threading
import time
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


def refused(broker: FetchBroker, url: str, deadline: float | None = None, **kw: Any) -> str:
    with pytest.raises(FetchRefused) as info:
        broker(request(url, **kw), deadline=deadline)
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


def test_only_ordinary_methods(local: int) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{local}",)), resolve=no_dns)
    assert "method CONNECT is not allowed" in refused(broker, f"http://127.0.0.1:{local}/", method="CONNECT")
    assert broker(request(f"http://127.0.0.1:{local}/3", headers={"X-Ok": "1"}))["status"] == 200


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
        assert "took longer than its time limit" in refused(broker, f"http://127.0.0.1:{port}/")
    finally:
        server.shutdown()
        server.server_close()


# -- issue 9 item 5: header smuggling ---------------------------------------------------------------
# Names with trailing whitespace or tabs and values with a bare CR went on the wire as given:
# ``Host : evil`` next to the real Host, ``Transfer-Encoding : chunked`` for request smuggling.


class _Recorder:
    """A raw HTTP server on 127.0.0.1 that keeps the exact bytes of each request head it receives."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.heads: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data and (chunk := conn.recv(4096)):
                    data += chunk
                self.heads.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def header_names(self) -> list[list[bytes]]:
        return [[line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:] if line] for head in self.heads]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone would not
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    yield server
    server.close()


SMUGGLING = [
    ({"Host ": "evil.example"}, "header name 'Host ' is not a valid HTTP token"),
    ({"Transfer-Encoding ": "chunked"}, "header name 'Transfer-Encoding ' is not a valid HTTP token"),
    ({"Content-Length\t": "5"}, "header name 'Content-Length\\t' is not a valid HTTP token"),
    ({"\tHost": "evil.example"}, "is not a valid HTTP token"),
    ({"Host:evil": "x"}, "is not a valid HTTP token"),
    ({"X-A\r\nHost": "evil.example"}, "is not a valid HTTP token"),
    ({"X-A": "a\r b"}, "header X-A's value holds a control character"),
    ({"X-A": "a\rHost: evil.example"}, "header X-A's value holds a control character"),
    ({"X-A": "a\n Host: evil.example"}, "header X-A's value holds a control character"),
    ({"X-A": "a\x00b"}, "header X-A's value holds a control character"),
    ({"X-A": "caf\u20ac"}, "outside Latin-1"),
    ({"Host": "evil.example"}, "header Host is set by the host, not the script"),
    ({"content-length": "0"}, "header content-length is set by the host"),
    ({"TRANSFER-ENCODING": "chunked"}, "is set by the host"),
    ({"Connection": "keep-alive, Host"}, "is set by the host"),
    ({"Upgrade": "h2c"}, "is set by the host"),
    ({"TE": "trailers"}, "is set by the host"),
    ({"Trailer": "Host"}, "is set by the host"),
    ({"Keep-Alive": "timeout=5"}, "is set by the host"),
    ({"Proxy-Authorization": "Basic eA=="}, "is set by the host"),
    ({"Proxy-Anything": "x"}, "is set by the host"),
]


@pytest.mark.parametrize(("headers", "message"), SMUGGLING)
def test_smuggling_headers_refuse_the_request_and_never_reach_the_server(
    recorder: _Recorder, headers: dict[str, str], message: str
) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{recorder.port}",)), resolve=no_dns)
    url = f"http://127.0.0.1:{recorder.port}/"
    assert message in refused(broker, url, headers={"X-Fine": "1", **headers})
    # The same server answers a clean request: the refusal above was the headers', and nothing of it arrived.
    assert broker(request(url, headers={"X-Fine": "1"}))["status"] == 200
    assert len(recorder.heads) == 1
    names = recorder.header_names()[0]
    assert names.count(b"host") == 1 and b"x-fine" in names
    assert not {b"transfer-encoding", b"content-length", b"connection", b"upgrade", b"te", b"trailer"} & set(names)
    assert all(n.strip() == n and b"\r" not in n for n in names) and b"evil" not in recorder.heads[0]
    assert broker.summary()[0]["refused"] == 1


def test_the_script_sets_ordinary_headers_and_its_own_user_agent(recorder: _Recorder) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{recorder.port}",)), resolve=no_dns)
    headers = {"Accept": "application/json", "Authorization": "Bearer t0k3n", "User-Agent": "mine/1", "X-Tab": "a\tb"}
    broker(request(f"http://127.0.0.1:{recorder.port}/", headers=headers))
    head = recorder.heads[0]
    assert b"\r\nAuthorization: Bearer t0k3n\r\n" in head and b"\r\nX-Tab: a\tb\r\n" in head
    assert b"User-Agent: mine/1" in head and b"harness-sandbox" not in head


# -- issue 9 item 6: one deadline for the whole request ---------------------------------------------
# The time limit applied per read: a server dripping one header byte every few seconds held the host
# forever (still blocked at 75 s with --timeout 10).


@pytest.fixture
def dripper() -> Iterator[int]:
    """A raw server on 127.0.0.1 that answers one byte a second, forever (until the test ends).

    Plain HTTP gets its status line at once, then header bytes; TLS gets a handshake record
    announcing 16 KiB, then its bytes one by one.
    """
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                tls = conn.recv(65536).startswith(b"\x16")
                conn.sendall(b"\x16\x03\x03\x40\x00" if tls else b"HTTP/1.1 200 OK\r\n")
                for byte in itertools.cycle(b"\x02" if tls else b"X-Slow: abcdefgh"):
                    if stop.wait(1.0):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the broker hung up: what the test wants

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


GRACE = 5.0  # generous, for a loaded 2-core machine: the deadline itself is what is measured


@pytest.mark.parametrize("scheme", ["http", "https"])  # https: the TLS handshake is dripped instead
def test_a_dripping_server_is_cut_off_at_the_policy_limit(dripper: int, scheme: str) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{dripper}",), timeout_s=3), resolve=no_dns)
    started = time.monotonic()
    message = refused(broker, f"{scheme}://127.0.0.1:{dripper}/")
    took = time.monotonic() - started
    assert "took longer than its time limit" in message
    assert 2.5 <= took < 3 + GRACE


def test_the_runs_deadline_cuts_a_request_short_of_the_policy_limit(dripper: int) -> None:
    broker = FetchBroker(EgressPolicy(allow=(f"127.0.0.1:{dripper}",), timeout_s=30), resolve=no_dns)
    started = time.monotonic()
    message = refused(broker, f"http://127.0.0.1:{dripper}/", deadline=started + 2)
    assert "took longer than its time limit" in message
    assert time.monotonic() - started < 2 + GRACE
    assert "took longer" in refused(broker, f"http://127.0.0.1:{dripper}/", deadline=time.monotonic() - 1)


def test_a_name_lookup_that_never_answers_is_cut_off_too() -> None:
    never = threading.Event()

    def hanging_dns(*args: Any, **kw: Any) -> Any:
        never.wait(60)
        raise OSError("gave up")

    broker = FetchBroker(EgressPolicy(allow=("api.example.com",), timeout_s=1), resolve=hanging_dns)
    started = time.monotonic()
    try:
        assert "took longer than its time limit (resolving api.example.com)" in refused(
            broker, "https://api.example.com/"
        )
        assert time.monotonic() - started < 1 + GRACE
    finally:
        never.set()
