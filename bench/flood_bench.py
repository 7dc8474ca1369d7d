"""Flood cases through the whole ``harness exec`` command, in a child process: disk, CPU, memory.

Two floods from the security review (issue 9, item 9), each run by ``python -m harness exec``
in a fresh data directory:

* ``newlines``: 15 MB of bare newlines (one ``sys.stdout.write`` of ``"\\n" * 15_000_000``);
* ``results``: 15 MB of ``{"v":1,"kind":"result","data":[{},{},...]}`` lines (each just under 64 KiB).

For each it prints the run folder's ``events.jsonl`` size and line count, whether the
``events_dropped`` marker is there, the child's CPU seconds (user + system), its wall time and
its peak RSS (``ru_maxrss`` of the waited-for child). ``--tree PATH`` runs another checkout's
harness (put first on PYTHONPATH) to measure before/after with the same script. Needs the
engine and the sandbox image.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "newlines": 'import sys\nsys.stdout.write("\\n" * 15_000_000)\nsys.stdout.flush()\n',
    "results": (
        "import sys\n"
        "line = '{\"v\":1,\"kind\":\"result\",\"data\":[' + ','.join(['{}'] * 21_000) + ']}\\n'\n"
        "for _ in range(15_000_000 // len(line)):\n"
        "    sys.stdout.write(line)\n"
        "sys.stdout.flush()\n"
    ),
}


def measure(case: str, tree: Path | None, timeout: float) -> dict[str, object]:
    """Run one flood through ``harness exec`` in a child process and measure it."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{case}.py"
        script.write_text(CASES[case], encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
        env["HARNESS_DATA_DIR"] = str(Path(tmp) / "data")
        env["HARNESS_TIMEOUT_S"] = str(timeout)
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "exec", str(script), "--json"],
            env=env,
            cwd=tmp,  # not this checkout: ``-m`` puts the working directory first on sys.path
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        out, _ = proc.communicate()
        wall = time.monotonic() - t0
        # This process (one per case) has no other children: these are that harness's figures.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        logs = list((Path(tmp) / "data" / "runs").glob("*/events.jsonl"))
        size = sum(p.stat().st_size for p in logs)
        lines = 0
        marker = None
        for log in logs:
            with log.open("rb") as fh:
                for raw in fh:
                    lines += 1
                    if b'"events_dropped"' in raw:
                        marker = json.loads(raw)
        try:
            status_text = json.loads(out)["status"]
        except (ValueError, KeyError):
            status_text = "?"
        return {
            "case": case,
            "status": status_text,
            "events_jsonl_bytes": size,
            "events_jsonl_lines": lines,
            "marker": marker,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }


def main() -> None:
    """Measure each case in its own process, so peak RSS is that case's alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="a checkout whose harness to measure instead of this one")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--timeout", type=float, default=120.0, help="the run's timeout in seconds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the per-case child: RUSAGE_CHILDREN then counts only this case's harness
        print(json.dumps(measure(args.one, args.tree, args.timeout)))
        return
    rows = []
    for case in args.case or sorted(CASES):
        cmd = [sys.executable, __file__, "--one", case, "--timeout", str(args.timeout)]
        cmd += ["--tree", str(args.tree)] if args.tree else []
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(
            f"{row['case']:9} {row['status']:12} events.jsonl {row['events_jsonl_bytes'] / 1e6:8.2f} MB "
            f"({row['events_jsonl_lines']} lines)  cpu {row['cpu_s']:6.2f} s  wall {row['wall_s']:6.2f} s  "
            f"peak RSS {row['peak_rss_mb']:7.1f} MB  marker {row['marker'] and row['marker'].get('count')}"
        )


if __name__ == "__main__":
    main()
