"""Benchmark: the whole static-check gate on a ~300-line script, warm. Target: median <= 100 ms.

    .venv/bin/python bench/checks_bench.py [--runs 30]

Prints the median and p90 per checker and in total, and compile() of the same source as a
baseline measured in the same run (the cheapest thing any checker must do).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from harness.checks import run_checks

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "checks" / "good"


def script_of(lines: int) -> str:
    """A realistic script of about ``lines`` lines, made of the benign corpus."""
    parts: list[str] = []
    for path in sorted(FIXTURES.glob("*.py")):
        parts.append(path.read_text(encoding="utf-8"))
        if sum(p.count("\n") for p in parts) >= lines:
            break
    return "\n".join(parts)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--lines", type=int, default=300)
    args = parser.parse_args()
    source = script_of(args.lines)
    run_checks(source)  # warm: imports, bandit's test set
    totals: list[float] = []
    per: dict[str, list[float]] = {}
    baseline: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        compile(source, "<bench>", "exec")
        baseline.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        report = run_checks(source)
        totals.append((time.perf_counter() - start) * 1000)
        for name, ms in report.durations_ms.items():
            per.setdefault(name, []).append(ms)
    print(f"gate on a {source.count(chr(10)) + 1}-line script, {args.runs} warm runs")
    print(f"{'part':<12} {'median ms':>10} {'p90 ms':>8}")
    for name, values in per.items():
        print(f"{name:<12} {statistics.median(values):>10.2f} {p90(values):>8.2f}")
    median = statistics.median(totals)
    print(f"{'total':<12} {median:>10.2f} {p90(totals):>8.2f}")
    print(f"{'compile()':<12} {statistics.median(baseline):>10.2f} {p90(baseline):>8.2f}   (baseline)")
    print(f"ratio total / compile(): {median / statistics.median(baseline):.1f}x")
    print(f"target median <= 100 ms: {'met' if median <= 100 else 'MISSED'} ({median:.1f} ms)")


if __name__ == "__main__":
    main()
