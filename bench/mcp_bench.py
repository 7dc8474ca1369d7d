"""Benchmark: a tiny script through `harness mcp`'s run_python, against `docker run --rm`.

    .venv/bin/python bench/mcp_bench.py [--n N] [--json]

One `harness mcp` process is spawned by the MCP SDK's own stdio client and kept for the whole
measurement, as a coding agent keeps it: each sample is one `tools/call` round trip, from the
request to the decoded result (input file written, container run, outputs collected and read
back, the result's JSON). Between calls the bench sleeps 0.5 s so the warm pool has refilled
(the pooled figure is with the pool warm; the client cannot see the pool, so it waits). The
first call, which may find the pool still filling, is reported separately. The baseline is
`docker run --rm` with the hardening flags harness applies, measured in the same run. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run_bench import TINY, docker_flags, pct  # noqa: E402
from harness.execution.docker import DockerBackend  # noqa: E402
from harness.settings import Settings  # noqa: E402

HARNESS = str(Path(sys.executable).parent / "harness")
REFILL_S = 0.5


async def mcp_samples(n: int, data_dir: Path) -> tuple[float, list[float]]:
    """The first call's time and ``n`` more, in ms, each a run_python round trip with one input file."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("HARNESS_", "DOCKER_"))}
    env["HARNESS_DATA_DIR"] = str(data_dir)
    params = StdioServerParameters(command=HARNESS, args=["mcp"], env=env)
    arguments = {"code": TINY, "files": {"numbers.txt": "1 2 3\n"}}
    samples: list[float] = []
    pooled: list[bool] = []
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            first = 0.0
            for i in range(n + 1):
                await anyio.sleep(REFILL_S)
                start = time.perf_counter()
                result = await session.call_tool("run_python", arguments)
                took = (time.perf_counter() - start) * 1000
                assert not result.is_error and result.structured_content is not None, result.content
                out = result.structured_content
                assert out["status"] == "succeeded", out
                pooled.append(json.loads((Path(out["run_folder"]) / "result.json").read_text())["pooled"])
                if i == 0:
                    first = took
                else:
                    samples.append(took)
    print(f"mcp: {sum(pooled[1:])} of {len(pooled) - 1} measured calls took a pooled container", file=sys.stderr)
    return first, samples


def docker_samples(n: int, tmp: Path) -> list[float]:
    """``n`` hardened `docker run --rm` of the same script, in ms."""
    with DockerBackend(Settings.from_env(data_dir=tmp / "data", pool_size=0)) as backend:
        image = backend.image
    script = tmp / "tiny.py"
    script.write_text(TINY)
    script.chmod(0o644)
    flags = docker_flags(image, str(script))
    samples: list[float] = []
    killed = 0
    while len(samples) < n:
        start = time.perf_counter()
        done = subprocess.run(flags, capture_output=True, stdin=subprocess.DEVNULL)
        took = (time.perf_counter() - start) * 1000
        if done.returncode == 137 and killed < n:
            # On a shared engine other processes' clean-ups have been seen killing containers
            # they did not make; such a sample measures nothing and is taken again.
            killed += 1
            continue
        done.check_returncode()
        samples.append(took)
    if killed:
        print(f"docker run: {killed} samples killed from outside (137) were taken again", file=sys.stderr)
    return samples


def main() -> None:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="harness-mcp-bench-"))
    baseline = docker_samples(args.n, tmp)
    first, pooled = anyio.run(mcp_samples, args.n, tmp / "mcp-data")
    docker_median = statistics.median(baseline)
    rows = [
        {"path": "docker run --rm", "n": len(baseline), "median_ms": docker_median, "p90_ms": pct(baseline, 0.9)},
        {
            "path": "mcp run_python (pool warm)",
            "n": len(pooled),
            "median_ms": statistics.median(pooled),
            "p90_ms": pct(pooled, 0.9),
        },
        {"path": "mcp run_python (first call)", "n": 1, "median_ms": first, "p90_ms": first},
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| path | n | median ms | p90 ms | × docker run --rm |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        ratio = row["median_ms"] / docker_median
        print(f"| {row['path']} | {row['n']} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
