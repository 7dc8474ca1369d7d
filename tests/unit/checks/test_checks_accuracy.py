"""The gate in both directions: every known bypass refused, ordinary code let through.

The benign corpus (tests/fixtures/checks/benign) holds ordinary scripts of the kinds users
ask for; the examples corpus is what Debian's python3.11-examples installs (code nobody here
wrote), measured when the package is present. bench/gate_accuracy.py prints the same numbers
for main and for this tree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness.checks import gate, run_checks

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "checks"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gate_accuracy", ROOT / "bench" / "gate_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gate_accuracy", module)
    spec.loader.exec_module(module)
    return module


def _failures(paths: list[Path], policy: str) -> list[str]:
    out = []
    for path in paths:
        report = run_checks(path.read_bytes(), policy)
        if not report.passed:
            out.append(f"{path.name}: " + "; ".join(f.one_line() for f in gate(report, policy).blocking))
    return out


def test_bypass_recall_is_complete() -> None:
    bad = sorted((FIXTURES / "bad").glob("*.py"))
    assert len(bad) >= 124
    missed = [p.name for p in bad if run_checks(p.read_bytes(), "strict").passed]
    assert missed == [], f"recall {1 - len(missed) / len(bad):.1%}: {missed}"


def test_benign_corpus_is_large_and_valid_python() -> None:
    benign = sorted((FIXTURES / "benign").glob("*.py"))
    assert len(benign) >= 100
    for path in benign:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("policy", ["strict", "standard"])
def test_ordinary_scripts_pass_at_least_98_percent(policy: str) -> None:
    benign = sorted((FIXTURES / "benign").glob("*.py"))
    failures = _failures(benign, policy)
    rate = 1 - len(failures) / len(benign)
    assert rate >= 0.98, f"{rate:.1%} pass under {policy}; refused:\n" + "\n".join(failures)


def test_example_classification_is_by_source_not_verdict(tmp_path: Path) -> None:
    bench = _bench()
    cases = {
        "gui.py": "import tkinter\n",
        "net.py": "from urllib.request import urlopen\n",
        "proc.py": "import os\nos.system('ls')\n",
        "strings.py": "eval('1')\n",
        "third.py": "import numpy\n",
        "plain.py": "import csv\nimport os\nprint(os.listdir('.'))\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    reasons = {name: bench.classify(tmp_path / name, text.encode()) for name, text in cases.items()}
    assert reasons["plain.py"] is None
    assert all(reasons[n] for n in cases if n != "plain.py"), reasons


@pytest.mark.skipif(not Path("/usr/share/doc/python3.11/examples").is_dir(), reason="python3.11-examples not installed")
def test_python_examples_mostly_pass() -> None:
    bench = _bench()
    counted, excluded = bench.examples_split()
    assert len(counted) >= 50 and excluded  # the split is reported by the bench, with reasons
    failures = _failures(counted, "strict")
    rate = 1 - len(failures) / len(counted)
    # Before this change 58% passed; what is still refused uses globals(), types.FunctionType,
    # timeit on strings, computed getattr on modules or module monkey-patching, on purpose.
    assert rate >= 0.85, f"{rate:.1%} of {len(counted)} pass; refused:\n" + "\n".join(failures)
