"""Benchmark: what provenance costs a run, and how fast Ctrl-C brings back a stopped run's outputs.

    .venv/bin/python bench/stop_bench.py [--n N] [--mb SIZE] [--runs R]

1. Recording the inputs (``record_inputs``: resolve, stat, SHA-256 of every file) for a 10 MB CSV
   and for a folder of 1,000 small files, against two baselines: reading the same bytes once
   (page cache), and hashing each file with ``hashlib.file_digest`` alone.
2. On the real engine: from ``DockerBackend.interrupt`` (what the first Ctrl-C calls) to the run's
   result with its outputs collected, against ``DockerBackend.cancel`` (the old path: the container
   is killed and /output is lost) in the same run. Needs an engine; skipped with --runs 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

SCRIPT = (
    "from pathlib import Path\nimport time\n"
    "Path('/output/part.txt').write_text('half done\\n')\n"
    "print('written', flush=True)\ntime.sleep(60)\n"
)


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _read_all(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as fh:
            while fh.read(1 << 20):
                pass


def _sha256_all(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as fh:
            hashlib.file_digest(fh, "sha256")


def _hashing(tmp: Path, n: int, mb: float) -> None:
    from harness.provenance import record_inputs

    big = tmp / "big.csv"
    row = b"2026-01-01,North,widget,3,2.50\n"
    big.write_bytes(b"Date,Region,Product,Units,Unit Price\n" + row * int(mb * 1024 * 1024 // len(row)))
    many = tmp / "many"
    many.mkdir()
    for i in range(1000):
        (many / f"f{i:04d}.txt").write_bytes(hashlib.sha256(str(i).encode()).hexdigest().encode() * 4)
    files = sorted(many.iterdir())
    for label, target, members in ((f"{mb:g} MB CSV", big, [big]), ("1,000 files of 256 B", many, files)):
        ours = _median_ms(lambda t=target: record_inputs([t]), n)
        read = _median_ms(lambda m=members: _read_all(m), n)
        digest = _median_ms(lambda m=members: _sha256_all(m), n)
        print(
            f"record_inputs, {label}: median {ours:.1f} ms; baselines: reading it once {read:.1f} ms "
            f"(ratio {ours / read:.2f}), hashlib.file_digest of each file {digest:.1f} ms (ratio {ours / digest:.2f})"
        )


def _stops(runs: int) -> None:
    from harness.execution.docker import DockerBackend
    from harness.execution.limits import Limits
    from harness.records import RunSpec
    from harness.settings import Settings

    def once(backend: DockerBackend, how: str, out: Path) -> tuple[float, str, bool]:
        spec = RunSpec(script=SCRIPT, output_dir=out, limits=Limits.build(timeout_s=60))
        written = threading.Event()
        asked: list[float] = []

        def watch() -> None:
            if written.wait(60):
                asked.append(time.perf_counter())
                getattr(backend, how)(spec.run_id)

        helper = threading.Thread(target=watch)
        helper.start()
        result = backend.run(spec, on_event=lambda e: written.set() if e.kind == "output" else None)
        done = time.perf_counter()
        helper.join()
        return (done - asked[0]) * 1000, result.status, (out / "part.txt").is_file()

    with (
        tempfile.TemporaryDirectory(prefix="harness-stop-bench-") as tmp,
        DockerBackend(Settings.from_env(pool_size=0)) as backend,
    ):
        for how in ("interrupt", "cancel"):
            rows = [once(backend, how, Path(tmp) / f"{how}-{i}") for i in range(runs)]
            kept = sum(r[2] for r in rows)
            print(
                f"{how}: median {statistics.median(r[0] for r in rows):.0f} ms from the call to the result "
                f"over {runs} runs; status {rows[0][1]}; outputs kept in {kept}/{runs}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-provenance-bench-") as tmp:
        os.environ.setdefault("HARNESS_DATA_DIR", str(Path(tmp) / "data"))
        _hashing(Path(tmp), args.n, args.mb)
    if args.runs:
        _stops(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
