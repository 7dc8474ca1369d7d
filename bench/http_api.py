"""Benchmark: a tiny script through ``harness serve``'s HTTP API against hardened ``docker run --rm``.

    .venv/bin/python bench/http_api.py [--n N] [--load] [--runs 200] [--clients 20] [--queue Q] [--json]

Latency (default): the tiny script of run_bench.py, submitted over the Unix socket
(``POST /v1/runs`` then ``GET /v1/runs/ID?wait``), with the server's warm pool, against the
hardened ``docker run --rm`` of run_bench.py measured in the same run, interleaved. Between
API runs the bench waits until ``/healthz`` says the pool is full again (the warm path is what
is measured; it says so). First-event latency: a script prints ``time.time()`` once the SSE
stream is open; the client subtracts that from its clock when the frame arrives (host and
container share the clock).

Load (``--load``): ``--runs`` tiny runs by ``--clients`` concurrent clients, each submitting
(retrying on 429 after Retry-After), then following the SSE stream to its end; then again with
10% of the clients dropping their stream after the first event and fetching the result later.
Reports lost runs (no result), p50/p95 submit-to-result latency, throughput, 429s, and the
server's RSS (now and peak, from /proc). The server runs as a real subprocess (the tests'
serverkit). Not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from run_bench import TINY, docker_flags, pct  # noqa: E402
from serverkit import Server, start_server  # noqa: E402

from harness.execution.docker import owner_token  # noqa: E402

FIRST_EVENT = "import time\ntime.sleep({delay})\nprint(repr(time.time()), flush=True)\n"


def _rss(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _wait_pool(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool = server.request("GET", "/healthz").json()["pool"]
        if pool["ready"] >= pool["size"]:
            return
        time.sleep(0.005)


def _submit(server: Server, source: str, counts: dict[str, int], lock: threading.Lock) -> str:
    while True:
        reply = server.request("POST", "/v1/runs", {"source": source})
        if reply.status == 202:
            run_id: str = reply.json()["run_id"]
            return run_id
        if reply.status != 429:
            raise RuntimeError(f"submit failed: {reply.status} {reply.body[:200]!r}")
        with lock:
            counts["429"] += 1
        time.sleep(float(reply.headers.get("retry-after", "1")))


def latency(server: Server, image: str, tmp: Path, n: int) -> dict[str, Any]:
    script = tmp / "tiny.py"
    script.write_text(TINY)
    script.chmod(0o644)
    api, docker, first = [], [], []
    # The image carries harness's label, so any harness starting elsewhere on the machine would sweep an
    # ownerless baseline container mid-run (exit 137): name this live process as its owner.
    flags = docker_flags(image, str(script))
    baseline = [*flags[:2], "--label", f"harness.owner={owner_token()}", *flags[2:]]
    for _ in range(n):
        _wait_pool(server)
        start = time.perf_counter()
        run_id = server.submit(TINY)
        view = server.result(run_id)
        api.append((time.perf_counter() - start) * 1000)
        assert view["result"]["status"] == "succeeded", view
        start = time.perf_counter()
        subprocess.run(baseline, check=True, capture_output=True)
        docker.append((time.perf_counter() - start) * 1000)
    for _ in range(max(5, n // 2)):
        _wait_pool(server)
        run_id = server.submit(FIRST_EVENT.format(delay=0.3))
        for _, kind, data in server.events(run_id):
            if kind == "output":
                first.append((time.time() - float(json.loads(data)["text"])) * 1000)
    return {
        "api_ms": {"median": statistics.median(api), "p90": pct(api, 0.9), "n": n},
        "docker_run_ms": {"median": statistics.median(docker), "p90": pct(docker, 0.9), "n": n},
        "ratio": statistics.median(api) / statistics.median(docker),
        "first_event_ms": {"median": statistics.median(first), "p90": pct(first, 0.9), "n": len(first)},
    }


def load(server: Server, runs: int, clients: int, drop_share: float) -> dict[str, Any]:
    lock = threading.Lock()
    counts = {"429": 0, "lost": 0, "dropped_streams": 0}
    latencies: list[float] = []
    per_client = [runs // clients + (1 if i < runs % clients else 0) for i in range(clients)]
    droppers = set(range(round(clients * drop_share)))

    def client(index: int) -> None:
        for _ in range(per_client[index]):
            start = time.perf_counter()
            run_id = _submit(server, TINY, counts, lock)
            status = None
            if index in droppers:
                stream = server.events(run_id)
                next(stream, None)
                stream.close()  # gone mid-stream; the result must still be there
                with lock:
                    counts["dropped_streams"] += 1
                status = server.result(run_id)["result"]
            else:
                for _, kind, data in server.events(run_id):
                    if kind == "end":
                        status = json.loads(data)["result"]
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if not status or status.get("status") != "succeeded":
                    counts["lost"] += 1
                latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "runs": runs,
        "clients": clients,
        "dropping_clients": len(droppers),
        "completed": len(latencies),
        "lost": counts["lost"],
        "http_429": counts["429"],
        "p50_ms": pct(latencies, 0.5),
        "p95_ms": pct(latencies, 0.95),
        "throughput_per_s": len(latencies) / wall,
        "rss_mb": _rss(server.proc.pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="latency samples per path")
    parser.add_argument("--load", action="store_true", help="also run the load test")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queue", type=int, default=0, help="server queue (0: its default, 4 per slot)")
    parser.add_argument("--pool", type=int, default=2, help="server warm pool size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hb-"))
    extra = ["--queue", str(args.queue)] if args.queue else []
    server = start_server(tmp / "data", *extra, env={"HARNESS_POOL_SIZE": str(args.pool)})
    data: dict[str, Any] = {}
    try:
        from harness.execution.docker import connect
        from harness.execution.image import ImageBuilder  # the image the server uses (built by then)
        from harness.settings import Settings

        settings = Settings.from_env()
        image = ImageBuilder(connect(settings), settings).ensure()
        print(f"server rss at start: {_rss(server.proc.pid)}", file=sys.stderr)
        data["latency"] = latency(server, image, tmp, args.n)
        if args.load:
            data["load"] = load(server, args.runs, args.clients, 0.0)
            data["load_with_drops"] = load(server, args.runs, args.clients, 0.1)
    finally:
        code = server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    data["server_exit"] = code
    if args.json:
        print(json.dumps(data, indent=2))
        return
    lat = data["latency"]
    print("| path | n | median ms | p90 ms |")
    print("|---|---:|---:|---:|")
    print(
        f"| docker run --rm (hardened) | {lat['docker_run_ms']['n']} | {lat['docker_run_ms']['median']:.1f} | "
        f"{lat['docker_run_ms']['p90']:.1f} |"
    )
    print(
        f"| HTTP API, warm pool | {lat['api_ms']['n']} | {lat['api_ms']['median']:.1f} | {lat['api_ms']['p90']:.1f} |"
    )
    print(f"\nAPI / docker run: {lat['ratio']:.2f} (target <= 0.3)")
    fe = lat["first_event_ms"]
    print(
        f"first SSE event after the script printed it: median {fe['median']:.1f} ms, p90 {fe['p90']:.1f} ms "
        f"(n={fe['n']}, target <= 15)"
    )
    for key in ("load", "load_with_drops"):
        if key in data:
            r = data[key]
            print(
                f"\n{key}: {r['completed']}/{r['runs']} results, lost {r['lost']}, {r['clients']} clients "
                f"({r['dropping_clients']} drop their stream), 429s {r['http_429']}, p50 {r['p50_ms']:.0f} ms, "
                f"p95 {r['p95_ms']:.0f} ms, {r['throughput_per_s']:.1f} runs/s, server RSS "
                f"{r['rss_mb'].get('VmRSS', 0):.0f} MB (peak {r['rss_mb'].get('VmHWM', 0):.0f} MB)"
            )
    print(f"\nserver exit code after SIGTERM: {code}")


if __name__ == "__main__":
    main()
