"""Benchmark: runc and gVisor's runsc side by side, cold and pooled, against one hardened ``docker run --rm``.

    .venv/bin/python bench/runtimes.py [--n N] [--json]

Every number comes from this run on this machine, samples interleaved (one of each path per
round) so that noise on a shared machine falls on all paths alike. The tiny script prints five
progress lines (the same script as ``run_bench.py``). Paths:

  docker run (runc)   ``docker run --rm`` with the hardening flags harness applies, under runc:
                      the baseline every ratio is against
  docker run (runsc)  the same under runsc (for reference)
  cold                DockerBackend.run with no pool: create, attach, start, run, collect
  pooled              DockerBackend.run taking a pre-started container from a pool of one;
                      before each sample the bench waits until the pool is full and earlier
                      containers are removed (background work, not part of a run)
  first event         from the hand-over to the script's first line reaching the host, pooled

The baseline containers carry ``harness.owner`` naming this live process, so a harness
starting elsewhere on the machine does not sweep them as leftovers mid-run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run_bench import TINY, docker_flags  # noqa: E402

from harness.execution.docker import DockerBackend, owner_token  # noqa: E402
from harness.execution.runtimes import registered  # noqa: E402
from harness.records import RunSpec  # noqa: E402
from harness.settings import Settings  # noqa: E402

RUNTIMES = ("runc", "runsc")


def _baseline(image: str, script: Path, runtime: str) -> list[str]:
    flags = docker_flags(image, str(script))
    return [*flags[:2], "--runtime", runtime, "--label", f"harness.owner={owner_token()}", *flags[2:]]


def _run(backend: DockerBackend, *, pooled: bool) -> tuple[float, float | None]:
    if pooled:
        backend.wait_removed()
        if not backend.wait_pool(60):
            raise SystemExit("the pool did not fill in 60 s")
    start = time.perf_counter()
    result = backend.run(RunSpec(script=TINY))
    wall = (time.perf_counter() - start) * 1000
    if not result.ok or result.pooled is not pooled:
        raise SystemExit(f"unexpected run: {result.status} pooled={result.pooled}: {result.message}")
    return wall, None if result.first_event_s is None else result.first_event_s * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="samples per path (default 20)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="harness-runtimes-bench-"))
    script = tmp / "tiny.py"
    script.write_text(TINY)
    script.chmod(0o644)
    settings = Settings.from_env(data_dir=tmp / "data")
    cold: dict[str, DockerBackend] = {}
    pooled: dict[str, DockerBackend] = {}
    try:
        for runtime in RUNTIMES:
            one = settings.model_copy(update={"runtime": runtime})
            cold[runtime] = DockerBackend(one, pool_size=0)
            pooled[runtime] = DockerBackend(one, pool_size=1)
        if "runsc" not in registered(cold["runc"].client.info()):
            raise SystemExit("the engine has no runsc: harness sandbox setup-runtime runsc")
        image = cold["runc"].image
        samples: dict[str, list[float]] = {}

        def add(name: str, value: float | None) -> None:
            if value is not None:
                samples.setdefault(name, []).append(value)

        for runtime in RUNTIMES:  # warm-up: page cache, the engine's first calls under each runtime
            subprocess.run(_baseline(image, script, runtime), check=True, capture_output=True)
            _run(cold[runtime], pooled=False)
            _run(pooled[runtime], pooled=True)
        for i in range(args.n):
            order = list(RUNTIMES) if i % 2 == 0 else list(reversed(RUNTIMES))
            for runtime in order:
                command = _baseline(image, script, runtime)
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                add(f"docker run ({runtime})", (time.perf_counter() - start) * 1000)
                wall, _ = _run(cold[runtime], pooled=False)
                add(f"cold ({runtime})", wall)
                wall, first = _run(pooled[runtime], pooled=True)
                add(f"pooled ({runtime})", wall)
                add(f"first event ({runtime})", first)
    finally:
        for backend in [*cold.values(), *pooled.values()]:
            backend.close()

    base = statistics.median(samples["docker run (runc)"])
    rows = {
        name: {
            "median_ms": round(statistics.median(values), 1),
            "p90_ms": round(sorted(values)[int(0.9 * (len(values) - 1))], 1),
            "n": len(values),
            **({} if name.startswith("first event") else {"ratio": round(statistics.median(values) / base, 2)}),
        }
        for name, values in samples.items()
    }
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'path':22} {'median ms':>10} {'p90 ms':>8} {'× docker run (runc)':>20}")
    for name in (
        "docker run (runc)",
        "docker run (runsc)",
        "cold (runc)",
        "cold (runsc)",
        "pooled (runc)",
        "pooled (runsc)",
        "first event (runc)",
        "first event (runsc)",
    ):
        row = rows[name]
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        print(f"{name:22} {row['median_ms']:>10.1f} {row['p90_ms']:>8.1f} {ratio:>20}")


if __name__ == "__main__":
    main()
