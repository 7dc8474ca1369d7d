"""Benchmark: what the queue adds to a run, and throughput with one and two worker processes.

    .venv/bin/python bench/queue_overhead.py [--n 40] [--batch 200] [--cpu 0.2] [--json]

Starts a real redis-server (Debian's, on a free loopback port, no persistence, a throwaway
dir) and real ``harness worker`` processes, and stops them all at the end.

1. Overhead. A tiny script (5 progress lines) through broker + one worker (``RemoteBackend.run``,
   warm pool of 1 on the worker, concurrency 1) against the same kind of run on a local pooled
   ``DockerBackend`` in this process (pool of 1): the whole ``run()`` call as the caller sees it,
   interleaved sample by sample so that noise on these shared machines falls on both alike.
   Before every sample both pools are full again (the worker's pool is read from its /metrics).
   Prints the medians and p95 of both and the added median and p95.
2. Scaling. A batch of ``--batch`` moderate scripts (``--cpu`` seconds of CPU each, 20 progress
   lines) submitted at once from 16 threads: through 1 worker process (concurrency 2, pool 2),
   through 2 worker processes (concurrency 2 and pool 2 each), and, as the baseline, on a local
   pooled DockerBackend with 2 threads. Prints scripts per second, per core, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY = """
import json, time
for i in range(5):
    print(json.dumps({"v": 1, "kind": "progress", "done": i + 1, "total": 5, "message": repr(time.time())}), flush=True)
"""
MODERATE = """
import json, time
end = time.process_time() + {cpu}
n = 0
for i in range(20):
    while time.process_time() < end - {cpu} * (19 - i) / 20:
        n += 1
    print(json.dumps({{"v": 1, "kind": "progress", "done": i + 1, "total": 20}}), flush=True)
print(n)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)  # polling another process's state
    raise TimeoutError(what)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Fleet:
    """redis-server and worker subprocesses, all stopped on exit."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base, self.env = base, env
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is missing: apt-get install redis-server")
        self.port = free_port()
        (base / "redis").mkdir()
        self.redis = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(base / "redis"),
            ],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        wait_for(self._redis_up, 10, "redis-server did not start")
        self.workers: list[tuple[subprocess.Popen[bytes], Path, int]] = []

    def _redis_up(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def start(self, name: str, *, concurrency: int, pool: int) -> int:
        folder = self.base / name
        folder.mkdir()
        metrics = free_port()
        env = {**self.env, "HARNESS_DATA_DIR": str(folder), "HARNESS_POOL_SIZE": str(pool)}
        args = [sys.executable, "-m", "harness", "worker", "--broker", self.url, "--hostname", name]
        args += ["--concurrency", str(concurrency), "--metrics-port", str(metrics), "--max-run-s", "120"]
        log = folder / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.workers.append((proc, log, metrics))
        wait_for(lambda: f"harness@{name} ready." in log.read_text(errors="replace"), 90, f"worker {name} not ready")
        return metrics

    def stop_workers(self) -> None:
        for proc, _, _ in self.workers:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in self.workers:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers = []

    def close(self) -> None:
        self.stop_workers()
        self.redis.terminate()
        self.redis.wait(10)


def pool_ready(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("harness_worker_pool_ready "):
                return float(line.split()[1])
    return 0.0


def overhead(fleet: Fleet, n: int, settings: Any) -> dict[str, Any]:
    from harness.distributed.submit import RemoteBackend
    from harness.execution.docker import DockerBackend
    from harness.records import RunSpec

    metrics = fleet.start("overhead", concurrency=1, pool=1)
    remote = RemoteBackend(settings, fleet.url)
    local_s: list[float] = []
    remote_s: list[float] = []
    with DockerBackend(settings.model_copy(update={"pool_size": 1})) as local:
        for i in range(n + 3):
            local.wait_pool()
            local.wait_removed()
            t0 = time.perf_counter()
            a = local.run(RunSpec(script=TINY))
            t1 = time.perf_counter()
            wait_for(lambda: pool_ready(metrics) >= 1, 30, "worker pool did not refill")
            t2 = time.perf_counter()
            b = remote.run(RunSpec(script=TINY))
            t3 = time.perf_counter()
            assert a.ok and b.ok and a.pooled and b.pooled, (a.status, b.status, a.pooled, b.pooled)
            if i >= 3:  # the first runs warm up imports and connections
                local_s.append(t1 - t0)
                remote_s.append(t3 - t2)
    remote.close()
    fleet.stop_workers()
    return {
        "samples": n,
        "local_median_ms": round(statistics.median(local_s) * 1000, 1),
        "local_p95_ms": round(pct(local_s, 0.95) * 1000, 1),
        "queue_median_ms": round(statistics.median(remote_s) * 1000, 1),
        "queue_p95_ms": round(pct(remote_s, 0.95) * 1000, 1),
        "added_median_ms": round((statistics.median(remote_s) - statistics.median(local_s)) * 1000, 1),
        "added_p95_ms": round((pct(remote_s, 0.95) - pct(local_s, 0.95)) * 1000, 1),
    }


def batch(backend: Any, count: int, cpu: float, threads: int) -> tuple[float, int]:
    from harness.records import RunSpec

    script = MODERATE.format(cpu=cpu)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: backend.run(RunSpec(script=script)), range(count)))
    wall = time.perf_counter() - t0
    return wall, sum(1 for r in results if r.ok)


def scaling(fleet: Fleet, count: int, cpu: float, settings: Any) -> dict[str, Any]:
    from harness.distributed.submit import RemoteBackend
    from harness.execution.docker import DockerBackend

    cores = os.cpu_count() or 1
    out: dict[str, Any] = {"scripts": count, "cpu_s_each": cpu, "cores": cores}
    with DockerBackend(settings.model_copy(update={"pool_size": 2})) as local:
        local.wait_pool()
        wall, ok = batch(local, count, cpu, 2)
    out["local"] = {"wall_s": round(wall, 2), "ok": ok, "per_s": round(count / wall, 2)}
    for workers in (1, 2):
        for i in range(workers):
            fleet.start(f"scale{workers}-{i}", concurrency=2, pool=2)
        remote = RemoteBackend(settings, fleet.url)
        wall, ok = batch(remote, count, cpu, 16)
        remote.close()
        fleet.stop_workers()
        out[f"workers_{workers}"] = {
            "wall_s": round(wall, 2),
            "ok": ok,
            "per_s": round(count / wall, 2),
            "per_s_per_core": round(count / wall / cores, 2),
            "vs_local": round((count / wall) / out["local"]["per_s"], 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="overhead samples")
    parser.add_argument("--batch", type=int, default=200, help="scripts per throughput batch")
    parser.add_argument("--cpu", type=float, default=0.2, help="CPU seconds per moderate script")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from harness.settings import Settings

    key = secrets.token_hex(32)
    os.environ["HARNESS_JOB_KEY"] = key
    base = Path(tempfile.mkdtemp(prefix="harness-queue-bench-"))
    os.environ["HARNESS_DATA_DIR"] = str(base / "submitter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")} | {"HARNESS_JOB_KEY": key}
    settings = Settings.from_env()
    fleet = Fleet(base, env)
    try:
        report: dict[str, Any] = {"overhead": overhead(fleet, args.n, settings)}
        if not args.skip_scaling:
            report["scaling"] = scaling(fleet, args.batch, args.cpu, settings)
    finally:
        fleet.close()
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    o = report["overhead"]
    print(f"overhead ({o['samples']} interleaved samples, tiny script, warm pools):")
    print(f"  local pooled run()   median {o['local_median_ms']:7.1f} ms   p95 {o['local_p95_ms']:7.1f} ms")
    print(f"  broker + 1 worker    median {o['queue_median_ms']:7.1f} ms   p95 {o['queue_p95_ms']:7.1f} ms")
    print(f"  added by the queue   median {o['added_median_ms']:7.1f} ms   p95 {o['added_p95_ms']:7.1f} ms")
    if "scaling" in report:
        s = report["scaling"]
        print(f"throughput ({s['scripts']} scripts of {s['cpu_s_each']} s CPU, {s['cores']} cores):")
        local = s["local"]
        print(f"  local pooled, 2 threads   {local['per_s']:6.2f}/s  ({local['wall_s']} s, {local['ok']} ok)")
        for w in (1, 2):
            r = s[f"workers_{w}"]
            print(
                f"  {w} worker process{'es' if w > 1 else '  '}       {r['per_s']:6.2f}/s  "
                f"{r['per_s_per_core']:.2f}/s per core  {r['vs_local']:.2f} x local  ({r['wall_s']} s, {r['ok']} ok)"
            )


if __name__ == "__main__":
    main()
