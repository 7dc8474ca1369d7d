"""Benchmark: analysis + decision, including inspecting the inputs, for a request over a 10 MB CSV.

    .venv/bin/python bench/analysis_bench.py [--n N] [--mb SIZE]

Target (issue 10): under 150 ms median. Baseline measured in the same run: reading the whole
CSV once with the standard csv module (what a dispatcher that looked at all the data would
pay at least). Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--mb", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-analysis-bench-") as tmp:
        os.environ["HARNESS_DATA_DIR"] = str(Path(tmp) / "data")
        from harness.pipeline import Harness
        from harness.settings import Settings

        folder = Path(tmp) / "sales"
        folder.mkdir()
        row = "2026-01-01,North,widget,3,2.50\n"
        count = int(args.mb * 1024 * 1024 // len(row))
        (folder / "big.csv").write_text("Date,Region,Product,Units,Unit Price\n" + row * count)
        harness = Harness(Settings.from_env(llm_analysis="off"))
        request = "total sales per region"
        harness.analyse(request, ask_llm=False, inputs=[folder])  # load the library and history once
        ours, baseline = [], []
        for _ in range(args.n):
            start = time.perf_counter()
            _analysis, decision = harness.analyse(request, ask_llm=False, inputs=[folder])
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            with (folder / "big.csv").open(newline="") as fh:
                rows = sum(1 for _ in csv.reader(fh))
            baseline.append(time.perf_counter() - start)
        assert decision.params.get("group_by") == "Region", decision
        ours_ms, base_ms = statistics.median(ours) * 1000, statistics.median(baseline) * 1000
        print(f"input: {args.mb:g} MB CSV, {rows} rows; request: {request!r} -> {decision.template} {decision.params}")
        print(f"analysis + decision + input inspection: median {ours_ms:.1f} ms over {args.n} (target < 150 ms)")
        print(f"baseline, reading the CSV once with csv: median {base_ms:.1f} ms")
        print(f"ratio: {ours_ms / base_ms:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
