"""Benchmark: the library's pooled run of a tiny script against bare ``python3 tiny.py``.

    .venv/bin/python bench/pooled_run.py [--n N] [--json] [--tree CHECKOUT]

The issue's target (11, Performance, third item): the median pooled run at or below bare
``python3 tiny.py`` on the host. Both are measured in this run, interleaved sample by sample,
so that noise on these shared machines falls on both alike.

``tiny.py`` prints five progress lines (the same script as ``run_bench.py``). Each pooled
sample is one ``DockerBackend.run`` call on a warm pool: before every sample the bench waits
until the pool holds a ready container AND the containers of earlier runs are removed (both are
background work that follows a run, not part of it; without the wait they would compete with
the next run for the two cores). Bare python3 is ``subprocess.run(["/usr/bin/python3",
tiny.py])`` with its output captured, process start to exit.

Paths, where the backend offers them (``DockerBackend(end_report=...)``):

  trusted   the status decided from the supervisor's end report; the container is removed
            in the background (the fast path)
  engine    the status waits for the engine: end of the attach stream, then ``wait``
            (and ``inspect`` after a non-zero exit), as before the fast path

A checkout without that option (``--tree`` pointing at an older one) is measured as
``engine`` only. The phase breakdown is the median of each timing the backend reports,
relative to the hand-over (the job written to the container's stdin):

  handover     the job written to the container
  first event  the script's first line reached the host
  end report   the supervisor's end marker arrived (the script ended; every process killed)
  outputs      the supervisor's outputs trailer arrived (/output sent in full)
  stream end   the host stopped reading: the trailer (trusted) or end of file, which is
               when the engine noticed the container's exit (engine)
  wait         the engine's ``wait`` (and ``inspect``) after that
  collect      unpacking the output archive and building the result
  run()        the whole call, as the caller sees it (includes taking the pooled container)
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TINY = """
import json, time
for i in range(5):
    print(json.dumps({"v": 1, "kind": "progress", "done": i + 1, "total": 5, "message": repr(time.time())}), flush=True)
"""
PHASES = (
    ("handover", "handover_s"),
    ("first event", "first_event_s"),
    ("end report", "script_s"),
    ("outputs", "sent_s"),
    ("stream end", "stream_s"),
    ("wait", "wait_s"),
    ("collect", "collect_s"),
)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="samples per path (default 40)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--tree", type=Path, default=None, help="measure another checkout's harness")
    args = parser.parse_args()
    root = (args.tree or Path(__file__).resolve().parents[1]).resolve()
    sys.path.insert(0, str(root))

    from harness.execution.docker import DockerBackend
    from harness.records import RunSpec
    from harness.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="harness-pooled-bench-"))
    tiny = tmp / "tiny.py"
    tiny.write_text(TINY)
    settings = Settings.from_env(data_dir=tmp / "data")
    has_option = "end_report" in inspect.signature(DockerBackend.__init__).parameters
    modes = {"trusted": "trusted", "engine": "engine"} if has_option else {"engine": None}

    backends: dict[str, Any] = {}
    try:
        for name, value in modes.items():
            extra = {} if value is None else {"end_report": value}
            backends[name] = DockerBackend(settings, pool_size=1, **extra)
        bare: list[float] = []
        walls: dict[str, list[float]] = {name: [] for name in modes}
        phases: dict[str, dict[str, list[float]]] = {name: {key: [] for _, key in PHASES} for name in modes}
        pooled_count = dict.fromkeys(modes, 0)
        for _ in range(3):  # warm-up: page cache, the engine's first calls, the interpreter
            subprocess.run(["/usr/bin/python3", str(tiny)], check=True, capture_output=True)
        for i in range(args.n):
            start = time.perf_counter()
            subprocess.run(["/usr/bin/python3", str(tiny)], check=True, capture_output=True)
            bare.append((time.perf_counter() - start) * 1000)
            # Alternate which path goes first, so neither always follows the bare run.
            order = list(modes) if i % 2 == 0 else list(reversed(modes))
            for name in order:
                backend = backends[name]
                _settle(backend)
                start = time.perf_counter()
                result = backend.run(RunSpec(script=TINY))
                walls[name].append((time.perf_counter() - start) * 1000)
                if not result.ok:
                    raise SystemExit(f"{name}: the tiny script failed: {result.message}")
                pooled_count[name] += int(result.pooled)
                timings = {**result.timings, "first_event_s": result.first_event_s}
                for _, key in PHASES:
                    if timings.get(key) is not None:
                        phases[name][key].append(timings[key] * 1000)
    finally:
        for backend in backends.values():
            backend.close()
        shutil.rmtree(tmp, ignore_errors=True)

    data = {
        "tree": str(root),
        "n": args.n,
        "bare_python3_ms": median(bare),
        "paths": {
            name: {
                "run_ms": median(walls[name]),
                "pooled_runs": pooled_count[name],
                "ratio_to_python3": median(walls[name]) / median(bare),  # type: ignore[operator]
                "phases_ms": {key: median(values) for key, values in phases[name].items()},
            }
            for name in modes
        },
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return
    print(f"tree {root}; {args.n} samples per path, pool warm (refilled and earlier containers removed first)")
    print(f"bare python3 tiny.py: median {data['bare_python3_ms']:.1f} ms")
    print()
    names = list(modes)
    print("| phase (median ms from hand-over) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, key in PHASES:
        cells = [data["paths"][n]["phases_ms"][key] for n in names]
        print(f"| {label} | " + " | ".join("–" if c is None else f"{c:.1f}" for c in cells) + " |")
    print("| run() as the caller sees it | " + " | ".join(f"{data['paths'][n]['run_ms']:.1f}" for n in names) + " |")
    print(
        "| ratio to bare python3 | " + " | ".join(f"{data['paths'][n]['ratio_to_python3']:.2f}" for n in names) + " |"
    )
    print("| runs that took a pooled container | " + " | ".join(f"{pooled_count[n]}/{args.n}" for n in names) + " |")
    for name in names:
        met = data["paths"][name]["run_ms"] <= data["bare_python3_ms"]
        print(f"target pooled ({name}) <= bare python3: {'met' if met else 'MISSED'}")


def _settle(backend: Any) -> None:
    """Wait for the pool to refill and for earlier containers to be removed (both are off the run's path)."""
    if not backend.wait_pool(60):
        raise SystemExit("the warm pool did not fill within 60 s")
    if hasattr(backend, "wait_removed"):
        backend.wait_removed()
    else:  # an older checkout (--tree)
        backend._reaper.drain()


if __name__ == "__main__":
    main()
