"""Benchmark: a script's hr.fetch through the host against a plain HTTP request from the host.

    .venv/bin/python bench/egress_bench.py [--n N] [--size BYTES] [--json]

A local HTTP server on 127.0.0.1 answers every request with SIZE bytes. Measured in the same
run, medians over N requests:

  host urllib     urllib.request on the host, a new connection per request (the baseline)
  broker          FetchBroker called in-process: policy checks plus the same request
  hr.fetch        from inside a sandboxed script (pooled container): the request travels as
                  an event to the host, the broker makes it, the answer returns on stdin,
                  base64 both ways; timed inside the script around each call

Ratios are against the host baseline. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.events import Event  # noqa: E402
from harness.execution.docker import DockerBackend  # noqa: E402
from harness.execution.egress import EgressPolicy, FetchBroker  # noqa: E402
from harness.records import RunSpec  # noqa: E402
from harness.settings import Settings  # noqa: E402

SCRIPT = """
import sys, time
import harness_runtime as hr
url, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    t = time.perf_counter()
    reply = hr.fetch(url)
    assert reply.status == 200
    hr.metric("fetch_s", time.perf_counter() - t, "s")
"""


def serve(size: int) -> ThreadingHTTPServer:
    body = b"x" * size

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    """Run the measurements and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="requests per path")
    parser.add_argument("--size", type=int, default=2048, help="response size in bytes")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    server = serve(args.size)
    port = int(server.server_address[1])
    url = f"http://127.0.0.1:{port}/"
    allow = (f"127.0.0.1:{port}",)
    from harness.events import FetchRequestEvent

    host = []
    for _ in range(args.n):
        t = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            response.read()
        host.append(time.perf_counter() - t)
    broker = FetchBroker(EgressPolicy(allow=allow, max_requests=10 * args.n))
    direct = []
    for _ in range(args.n):
        t = time.perf_counter()
        broker(FetchRequestEvent(id="f", url=url))
        direct.append(time.perf_counter() - t)
    inside: list[float] = []

    def on_event(event: Event) -> None:
        if event.kind == "metric" and event.name == "fetch_s":
            inside.append(float(event.value))

    with DockerBackend(Settings.from_env(pool_size=1)) as backend:
        backend.wait_pool(60)
        result = backend.run(
            RunSpec(script=SCRIPT, argv=(url, str(args.n)), egress=allow),
            on_event=on_event,
            on_fetch=FetchBroker(EgressPolicy(allow=allow, max_requests=10 * args.n)),
        )
    server.shutdown()
    if not result.ok:
        sys.exit(f"the sandboxed script failed: {result.message}")
    base = statistics.median(host)
    rows = {
        "host urllib": statistics.median(host),
        "broker": statistics.median(direct),
        "hr.fetch": statistics.median(inside),
    }
    if args.json:
        print(json.dumps({"n": args.n, "size": args.size, "median_s": rows}))
        return
    print(f"{args.n} requests of {args.size} bytes each, medians")
    for name, value in rows.items():
        print(f"  {name:12s} {value * 1000:8.2f} ms  {value / base:5.2f}x host")


if __name__ == "__main__":
    main()
