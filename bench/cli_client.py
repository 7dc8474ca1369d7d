"""Benchmark: ``harness exec tiny.py`` as a whole command with a server running, against ``docker run --rm``.

    .venv/bin/python bench/cli_client.py [--n N] [--server auto|serve|contract] [--json]

Paths, all measured in this run on this machine (medians; ratios matter more than milliseconds):

  docker run      hardened ``docker run --rm`` of the same script (bench/run_bench.py's flags)
  exec (server)   the ``harness`` console script, process start to exit, served by a running server
                  through the thin client; the server's warm pool is refilled between runs (the
                  bench waits for it, so every run takes a pre-started container)
  exec --local    the same command in-process (no server: the typer CLI, a cold container)

Also ``python -X importtime`` of the client path (what ``harness exec`` imports when a server
answers; the median of 7 start-ups), its largest imports, and whether any heavy module was loaded. The server is
``harness serve`` when this tree has it (``--server serve``), else the contract server that the
client's tests use (``tests/contract_server.py``) with a pooled DockerBackend in this process.

Child processes run without ``PYTHONDONTWRITEBYTECODE`` (after a warm-up that writes the
bytecode), as an installed package would: otherwise every start compiles harness from source.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run_bench import docker_flags  # noqa: E402

TINY = "print('hi')\n"
HEAVY = ("pydantic", "docker", "jinja2", "bandit", "celery", "rich", "typer", "anthropic", "fastapi")
HARNESS = str(Path(sys.executable).with_name("harness"))


def timed(fn: Callable[[], Any], n: int, between: Callable[[], Any] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if between is not None:
            between()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def has_serve() -> bool:
    done = subprocess.run([HARNESS, "serve", "--help"], capture_output=True, text=True)
    return done.returncode == 0


@contextmanager
def serve_subprocess(sock: Path, env: dict[str, str]) -> Iterator[Callable[[], None]]:
    """``harness serve`` on ``sock``; yields a function that waits until its pool is full again."""
    from harness.client.endpoint import Endpoint
    from harness.client.transport import Client

    proc = subprocess.Popen([HARNESS, "serve", "--socket", str(sock)], env=env, stderr=subprocess.DEVNULL)
    client = Client(Endpoint(path=str(sock)))
    try:
        deadline = time.monotonic() + 120
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("harness serve did not start")
            time.sleep(0.05)

        def refilled() -> None:
            for _ in range(600):
                pool = client.call("GET", "/healthz")["pool"]
                if pool["ready"] >= pool["size"]:
                    return
                time.sleep(0.01)

        refilled()
        yield refilled
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextmanager
def contract_server(sock: Path, data: Path) -> Iterator[Callable[[], None]]:
    """The tests' contract server with one pooled backend, in this process."""
    from harness.execution.docker import DockerBackend
    from harness.settings import Settings
    from tests.contract_server import ContractServer

    backend = DockerBackend(Settings.from_env(data_dir=data, pool_size=1))
    server = ContractServer(sock, backend=backend)
    try:
        backend.wait_pool(60)
        yield lambda: backend.wait_pool(60)
    finally:
        server.close()
        backend.close()


def import_profile(env: dict[str, str], script: str) -> dict[str, Any]:
    """``-X importtime`` of ``harness exec`` served by the server: total, the largest, and any heavy module."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "harness", "exec", script], capture_output=True, text=True, env=env
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match[2]), len(match[3]), match[4]))
    top = [(cum, name) for cum, depth, name in rows if depth == 1]
    names = {name for _, _, name in rows}
    return {
        "total_ms": sum(cum for cum, _ in top) / 1000,
        "largest": [(name, cum / 1000) for cum, name in sorted(top, reverse=True)[:8]],
        "heavy_loaded": sorted(h for h in HEAVY if h in names or any(n.startswith(h + ".") for n in names)),
        "modules": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--server", choices=("auto", "serve", "contract"), default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="harness-cli-bench-"))
    tmp.chmod(0o755)  # the container's user reads the script through the bind mount
    script = tmp / "tiny.py"
    script.write_text(TINY)
    script.chmod(0o644)
    (tmp / "run").mkdir(mode=0o700)  # the server wants a private folder for its socket
    sock = tmp / "run" / "h.sock"
    os.environ["HARNESS_DATA_DIR"] = str(tmp / "data")  # this process's server (the contract one) too
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HARNESS_DATA_DIR=str(tmp / "data"), HARNESS_URL=f"unix://{sock}")
    kind = args.server if args.server != "auto" else ("serve" if has_serve() else "contract")

    from harness.execution.docker import DockerBackend
    from harness.settings import Settings

    with DockerBackend(Settings.from_env(data_dir=tmp / "data", pool_size=0)) as probe:
        image = probe.image
    rows: dict[str, list[float]] = {}
    docker = docker_flags(image, str(script))
    exec_cmd = [HARNESS, "exec", str(script)]

    def run(cmd: list[str]) -> None:
        done = subprocess.run(cmd, capture_output=True, env=env, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SystemExit(f"{cmd[:3]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")

    try:
        started = serve_subprocess(sock, env) if kind == "serve" else contract_server(sock, tmp / "data")
        with started as refilled:
            for _ in range(2):
                run(exec_cmd)  # warm-up: bytecode written, image and engine caches warm
            rows["docker run"] = timed(lambda: run(docker), args.n)
            rows["exec (server)"] = timed(lambda: run(exec_cmd), args.n, between=refilled)
            # Import times are as noisy as the machine: the median of several start-ups.
            profiles = sorted((import_profile(env, str(script)) for _ in range(7)), key=lambda p: p["total_ms"])
            profile = profiles[len(profiles) // 2]
        rows["exec --local"] = timed(lambda: run([*exec_cmd, "--local"]), max(5, args.n // 3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(rows["docker run"])
    table = [
        {"path": path, "n": len(v), "median_ms": statistics.median(v), "ratio": statistics.median(v) / base}
        for path, v in rows.items()
    ]
    result = {"server": kind, "rows": table, "client_imports": profile}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"server: {kind}")
    print("| path | n | median ms | × docker run --rm |")
    print("|---|---|---|---|")
    for row in table:
        print(f"| {row['path']} | {row['n']} | {row['median_ms']:.1f} | {row['ratio']:.2f} |")
    print(f"client path imports: {profile['total_ms']:.1f} ms over {profile['modules']} modules (-X importtime)")
    print("  largest: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in profile["largest"]))
    print(f"  heavy modules loaded: {profile['heavy_loaded'] or 'none'}")
    ratio = next(r["ratio"] for r in table if r["path"] == "exec (server)")
    print(f"target exec (server) <= 0.6 x docker run --rm: {'met' if ratio <= 0.6 else 'NOT met'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
