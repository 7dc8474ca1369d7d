"""The labelled request suite as a scorecard: right, wrong, refused and failed per half.

    .venv/bin/python bench/request_accuracy.py [--only ID-PREFIX] [--json]

Runs every request in tests/e2e/cases.py through `harness run` (real containers, no API key,
a fresh data dir each) on generated data, and checks each answer against figures computed
from that data. A wrong success is the one outcome that must never happen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from cases import CASES
from runner import run_all, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose id starts with this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scored = run_all([c for c in CASES if c.id.startswith(args.only)])
    if args.json:
        print(json.dumps([{"id": s.case.id, "outcome": s.outcome, "detail": s.detail} for s in scored], indent=2))
        return 0
    for item in scored:
        print(f"{item.outcome:8} {item.case.id:32} {item.seconds:5.1f}s  {item.detail}")
    print()
    for key, row in sorted(summary(scored).items()):
        total = sum(row.values())
        print(f"{key:18} " + "  ".join(f"{k} {v}/{total}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
