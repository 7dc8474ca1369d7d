"""Summarise sales CSV files under /input by region: totals, units, best product."""

import csv
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import harness_runtime as hr

INPUT = Path(os.environ.get("HARNESS_INPUT", "/input"))
OUTPUT = Path(os.environ.get("HARNESS_OUTPUT", "/output"))


def main() -> int:
    with hr.phase("discover"):
        files = sorted(INPUT.rglob("*.csv"))
        hr.log(f"found {len(files)} CSV file(s)")
    if not files:
        print("no CSV files under /input", file=sys.stderr)
        return 2

    regions: dict[str, dict] = defaultdict(
        lambda: {"rows": 0, "units": 0, "revenue": 0.0, "products": defaultdict(float)}
    )
    with hr.phase("aggregate"):
        for index, path in enumerate(files, 1):
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    stats = regions[row["region"]]
                    revenue = int(row["units"]) * float(row["unit_price"])
                    stats["rows"] += 1
                    stats["units"] += int(row["units"])
                    stats["revenue"] += revenue
                    stats["products"][row["product"]] += revenue
            hr.progress(index, len(files), path.name)

    with hr.phase("report"):
        summary = {
            region: {
                "rows": s["rows"],
                "units": s["units"],
                "revenue": round(s["revenue"], 2),
                "best_product": max(s["products"], key=s["products"].get),
            }
            for region, s in sorted(regions.items())
        }
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        lines = ["| region | rows | units | revenue | best product |", "|---|---:|---:|---:|---|"]
        lines += [
            f"| {r} | {s['rows']} | {s['units']} | {s['revenue']:.2f} | {s['best_product']} |"
            for r, s in summary.items()
        ]
        (OUTPUT / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        hr.artifact("summary.json", "totals per region")
        hr.artifact("summary.md", "the same as a markdown table")
        hr.metric("revenue_total", round(sum(s["revenue"] for s in summary.values()), 2), "USD")
    hr.result({"regions": len(summary)})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
