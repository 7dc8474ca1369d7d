"""Report what is under /input: file count and bytes per extension, largest files."""

import json
import os
import sys
from collections import Counter
from pathlib import Path

import harness_runtime as hr

INPUT = Path(os.environ.get("HARNESS_INPUT", "/input"))
OUTPUT = Path(os.environ.get("HARNESS_OUTPUT", "/output"))


def main() -> int:
    with hr.phase("scan"):
        files = [p for p in INPUT.rglob("*") if p.is_file()]
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for index, path in enumerate(files, 1):
            ext = path.suffix.lower() or "(none)"
            counts[ext] += 1
            sizes[ext] += path.stat().st_size
            if index % 50 == 0 or index == len(files):
                hr.progress(index, len(files), str(path.relative_to(INPUT)))
    with hr.phase("write"):
        largest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:10]
        report = {
            "files": len(files),
            "by_extension": {ext: {"files": counts[ext], "bytes": sizes[ext]} for ext in sorted(counts)},
            "largest": [{"path": str(p.relative_to(INPUT)), "bytes": p.stat().st_size} for p in largest],
        }
        (OUTPUT / "tree.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        hr.artifact("tree.json", "files and bytes per extension")
    hr.result({"files": len(files)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
