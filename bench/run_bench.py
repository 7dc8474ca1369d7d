"""Benchmark: running a script through harness against `docker run --rm` and bare python3.

    .venv/bin/python bench/run_bench.py [--quick] [--n N] [--json]

Every number is measured in the same run on the same machine; ratios matter more than
milliseconds (the machines are noisy). Workloads: a tiny script (5 progress lines) and a
moderate one (about 0.5 s of CPU, 50 progress lines). Paths:

  python3        bare /usr/bin/python3 on the host (the image runs the same Debian build)
  docker run     `docker run --rm` with the same hardening flags harness applies
  cold           DockerBackend.run with no pool: create, attach, start, run, collect
  pooled         DockerBackend.run taking a pre-started container from the warm pool
  harness exec   the whole CLI command, process start to exit

Also: first-line latency (script prints -> host callback), scripts per second at
concurrency 1, 2 and 4, and whether exit codes survive every path. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.events import Event  # noqa: E402
from harness.execution.docker import DockerBackend  # noqa: E402
from harness.records import RunSpec  # noqa: E402
from harness.settings import Settings  # noqa: E402

TINY = """
import json, time
for i in range(5):
    print(json.dumps({"v": 1, "kind": "progress", "done": i + 1, "total": 5, "message": repr(time.time())}), flush=True)
"""
MODERATE_TEMPLATE = """
import json, time
def spin(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
for i in range(50):
    spin({loops})
    event = {{"v": 1, "kind": "progress", "done": i + 1, "total": 50, "message": repr(time.time())}}
    print(json.dumps(event), flush=True)
"""
EXIT3 = "import sys\nprint('claims success', flush=True)\nsys.exit(3)\n"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def calibrate() -> int:
    """Loop count that makes the moderate script spend about 0.5 s of CPU in 50 steps."""
    loops = 20_000
    script = MODERATE_TEMPLATE.format(loops=loops)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(script)
    start = time.perf_counter()
    subprocess.run(["/usr/bin/python3", fh.name], check=True, capture_output=True)
    took = time.perf_counter() - start
    os.unlink(fh.name)
    return max(1000, int(loops * 0.5 / max(took - 0.02, 0.01)))


def docker_flags(image: str, script_path: str) -> list[str]:
    """`docker run` with the hardening DockerBackend applies (see harness/execution/docker.py)."""
    return [
        "docker",
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "10001:10001",
        "--init",
        "--pids-limit",
        "128",
        "--memory",
        "512m",
        "--memory-swap",
        "512m",
        "--cpus",
        "1",
        "--ulimit",
        "nofile=1024:1024",
        "--tmpfs",
        "/tmp:rw,noexec,nosuid,nodev,size=64m",
        "--tmpfs",
        "/work:rw,noexec,nosuid,nodev,size=64m",
        "--tmpfs",
        "/output:rw,noexec,nosuid,nodev,size=128m",
        "--log-driver",
        "none",
        "--ipc",
        "none",
        "-v",
        f"{script_path}:/script.py:ro",
        "--entrypoint",
        "python3",
        image,
        "/script.py",
    ]


class Bench:
    def __init__(self, n: int, quick: bool) -> None:
        self.n = n
        self.quick = quick
        self.rows: list[dict[str, Any]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="harness-bench-"))

    def record(self, workload: str, path: str, samples: list[float], **extra: Any) -> dict[str, Any]:
        row = {
            "workload": workload,
            "path": path,
            "n": len(samples),
            "median_ms": statistics.median(samples),
            "p90_ms": pct(samples, 0.9),
            **extra,
        }
        self.rows.append(row)
        print(
            f"  {workload:<9} {path:<14} median {row['median_ms']:8.1f} ms  p90 {row['p90_ms']:8.1f} ms",
            file=sys.stderr,
        )
        return row

    def script_file(self, name: str, source: str) -> str:
        path = self.tmp / name
        path.write_text(source)
        path.chmod(0o644)
        return str(path)

    def run(self) -> dict[str, Any]:
        settings = Settings.from_env(data_dir=self.tmp / "data")
        cold = DockerBackend(settings, pool_size=0)
        image = cold.image
        loops = calibrate()
        workloads = {"tiny": TINY, "moderate": MODERATE_TEMPLATE.format(loops=loops)}
        first_line: dict[str, list[float]] = {"cold": [], "pooled": []}
        faithful: dict[str, int | None] = {}
        try:
            for name, source in workloads.items():
                n = self.n if name == "tiny" else max(3, self.n // 3)
                path = self.script_file(f"{name}.py", source)
                self.record(
                    name,
                    "python3",
                    timed(lambda: subprocess.run(["/usr/bin/python3", path], check=True, capture_output=True), n),
                )
                self.record(
                    name,
                    "docker run",
                    timed(lambda: subprocess.run(docker_flags(image, path), check=True, capture_output=True), n),
                )

                def lib_run(backend: DockerBackend, which: str) -> None:
                    def on_event(event: Event) -> None:
                        if event.kind == "progress" and event.done == 1:  # type: ignore[union-attr]
                            sent = float(event.message)  # type: ignore[union-attr]
                            first_line[which].append((time.time() - sent) * 1000)

                    result = backend.run(RunSpec(script=source), on_event=on_event)
                    assert result.ok, result.message

                self.record(name, "cold", timed(lambda: lib_run(cold, "cold"), n))
                with DockerBackend(settings, pool_size=1) as pooled:
                    samples = []
                    used = 0
                    for _ in range(n):
                        pooled.wait_pool(30)  # measure the warm path: a container is ready and waiting
                        start = time.perf_counter()
                        result = pooled.run(RunSpec(script=source))
                        samples.append((time.perf_counter() - start) * 1000)
                        used += result.pooled
                        if result.first_event_s is not None and name == "tiny":
                            pass
                    self.record(name, "pooled", samples, pooled_runs=used)
                    for _ in range(min(n, 10)):
                        pooled.wait_pool(30)
                        lib_run(pooled, "pooled")
                self.record(
                    name,
                    "harness exec",
                    timed(
                        lambda: subprocess.run(
                            [str(ROOT / ".venv/bin/harness"), "exec", path, "--json"],
                            check=True,
                            capture_output=True,
                            env={**os.environ, "HARNESS_DATA_DIR": str(self.tmp / "data")},
                        ),
                        max(3, n // 2),
                    ),
                )
            throughput = self.throughput(settings, workloads)
            exit_path = self.script_file("exit3.py", EXIT3)
            faithful["python3"] = subprocess.run(["/usr/bin/python3", exit_path], capture_output=True).returncode
            faithful["docker run"] = subprocess.run(docker_flags(image, exit_path), capture_output=True).returncode
            faithful["cold"] = cold.run(RunSpec(script=EXIT3)).exit_code
            with DockerBackend(settings, pool_size=1) as pooled:
                pooled.wait_pool(30)
                faithful["pooled"] = pooled.run(RunSpec(script=EXIT3)).exit_code
            done = subprocess.run(
                [str(ROOT / ".venv/bin/harness"), "exec", exit_path, "--json"],
                capture_output=True,
                env={**os.environ, "HARNESS_DATA_DIR": str(self.tmp / "data")},
            )
            faithful["harness exec (json)"] = json.loads(done.stdout)["exit_code"]
            faithful["harness exec (process)"] = done.returncode
        finally:
            cold.close()
        return {
            "rows": self.rows,
            "first_line_ms": {
                k: {"median": statistics.median(v), "p90": pct(v, 0.9)} for k, v in first_line.items() if v
            },
            "throughput": throughput,
            "exit_codes": faithful,
            "moderate_loops": loops,
        }

    def throughput(self, settings: Settings, workloads: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        per_worker = 2 if self.quick else 5
        for name, source in workloads.items():
            for concurrency in (1, 2, 4):
                for mode, pool in (("cold", 0), ("pooled", concurrency)):
                    with DockerBackend(settings, pool_size=pool) as backend:
                        if pool:
                            backend.wait_pool(60)
                        total = concurrency * per_worker

                        def worker(b: DockerBackend = backend) -> None:
                            for _ in range(per_worker):
                                assert b.run(RunSpec(script=source)).ok

                        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
                        start = time.perf_counter()
                        for t in threads:
                            t.start()
                        for t in threads:
                            t.join()
                        rate = total / (time.perf_counter() - start)
                    out.append({"workload": name, "mode": mode, "concurrency": concurrency, "scripts_per_s": rate})
                    print(f"  {name:<9} {mode:<7} x{concurrency}: {rate:6.2f} scripts/s", file=sys.stderr)
        return out


def report(data: dict[str, Any]) -> None:
    rows = data["rows"]
    base = {(r["workload"], r["path"]): r["median_ms"] for r in rows}
    print("| workload | path | n | median ms | p90 ms | × docker run --rm | × python3 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        docker = base[(r["workload"], "docker run")]
        bare = base[(r["workload"], "python3")]
        print(
            f"| {r['workload']} | {r['path']} | {r['n']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | "
            f"{r['median_ms'] / docker:.2f} | {r['median_ms'] / bare:.2f} |"
        )
    print()
    for which, stats in data["first_line_ms"].items():
        print(f"first line to host callback, {which}: median {stats['median']:.1f} ms, p90 {stats['p90']:.1f} ms")
    print()
    print("| workload | mode | concurrency | scripts/s |")
    print("|---|---|---:|---:|")
    for t in data["throughput"]:
        print(f"| {t['workload']} | {t['mode']} | {t['concurrency']} | {t['scripts_per_s']:.2f} |")
    print()
    print(
        "exit code of a script that prints 'claims success' and exits 3:",
        ", ".join(f"{k}={v}" for k, v in data["exit_codes"].items()),
    )
    tiny = {path: base[("tiny", path)] for path in ("python3", "docker run", "cold", "pooled")}
    checks = [
        ("cold <= 1.0 x docker run --rm", tiny["cold"] <= tiny["docker run"]),
        ("pooled <= 0.3 x docker run --rm", tiny["pooled"] <= 0.3 * tiny["docker run"]),
        ("pooled <= bare python3", tiny["pooled"] <= tiny["python3"]),  # issue 11; see pooled_run.py
        ("first line <= 15 ms pooled", data["first_line_ms"].get("pooled", {}).get("median", 1e9) <= 15),
        (
            "exit codes faithful",
            all(v == 3 for k, v in data["exit_codes"].items() if k != "harness exec (process)")
            and data["exit_codes"].get("harness exec (process)") == 1,
        ),
    ]
    print()
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (~1 minute)")
    parser.add_argument("--n", type=int, default=None, help="repetitions per tiny measurement")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    n = args.n or (6 if args.quick else 20)
    data = Bench(n, args.quick).run()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        report(data)


if __name__ == "__main__":
    main()
