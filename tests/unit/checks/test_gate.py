"""The static-check gate: both corpora, near misses for each rule, and it never raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checks import POLICIES, gate, run_checks
from harness.checks.policy import module_allowed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# The benign corpus, plus the example scripts shipped in examples/.
GOOD = sorted((FIXTURES / "good").glob("*.py")) + sorted(EXAMPLES.glob("*.py"))
BAD = sorted((FIXTURES / "bad").glob("*.py"))


def codes(source: str | bytes, severity: str = "error") -> set[str]:
    return {f.code for f in run_checks(source).findings if f.severity == severity}


def test_corpora_are_substantial() -> None:
    assert len(GOOD) >= 10 and len(BAD) >= 30


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
@pytest.mark.parametrize("policy", ["strict", "standard"])
def test_benign_scripts_pass_with_no_error(path: Path, policy: str) -> None:
    report = run_checks(path.read_text(encoding="utf-8"), policy)
    assert report.counts["error"] == 0, [f for f in report.findings if f.severity == "error"]
    assert gate(report, policy).passed
    assert set(report.checkers_run) == {"syntax", "policy", "restricted", "bandit", "secrets"}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_each_bypass_is_caught_with_its_code(path: Path) -> None:
    data = path.read_bytes()
    expected = data.splitlines()[0].decode().split("expect:")[1].strip()
    report = run_checks(data)
    assert expected in {f.code for f in report.findings if f.severity == "error"}
    assert not gate(report, "strict").passed and not gate(report, "standard").passed
    finding = next(f for f in report.findings if f.code == expected)
    assert finding.message and finding.hint and finding.line >= 1


@pytest.mark.parametrize(
    ("tripped", "near_miss", "code"),
    [
        ("import subprocess", "import json", "HP101"),
        ("eval('1')", "import ast\nast.literal_eval('1')", "HP102"),
        ("import os\nos.system('x')", "import os\nos.path.join('a', 'b')", "HP103"),
        ("x = (1).__class__", "class A:\n    def __init__(self):\n        super().__init__()", "HP104"),
        ("x = __builtins__", "if __name__ == '__main__':\n    print(__file__)", "HP105"),
        ("n = 'a'\ngetattr(object(), n)", "getattr(object(), 'real', None)", "HP106"),
        ("'{0.__class__}'.format(1)", "'{0.real} {name}'.format(1, name='x')", "HP107"),
        ("def g():\n    yield\ng().gi_frame", "def g():\n    yield\nnext(g(), None)", "HP108"),
        ("import tempfile\ntempfile._os", "import tempfile\ntempfile.mkdtemp()", "HP109"),
        ("open('/etc/x', 'w')", "open('/output/x', 'w')\nopen('/etc/hosts')", "HP110"),
        ("open('/proc/1/environ')", "open('/input/proc.txt')", "HP111"),
        ("from os import *", "from os import path", "HP112"),
        ("# coding: latin-1\nx = 1", "# coding: utf-8\nx = 1", "HS006"),
        ("token = 'ghp_" + "A" * 36 + "'", "token = os.environ.get('TOKEN', '')", "HK404"),
        ("api_key = 'q8Zr3LmP0xVt7NwK'", "api_key = 'changeme'", "HK406"),
    ],
)
def test_each_rule_trips_and_its_near_miss_does_not(tripped: str, near_miss: str, code: str) -> None:
    assert code in codes(tripped)
    assert code not in codes(near_miss) and not codes(near_miss) & {"HP101", "HP102", "HP103", "HP104"}


def test_full_width_identifiers_are_checked_as_python_reads_them() -> None:
    assert "HP102" in codes("\uff45\uff56\uff41\uff4c('1')")  # ｅｖａｌ
    assert "HP104" in codes("x = ().__\uff43\uff4c\uff41\uff53\uff53__")  # __ｃｌａｓｓ__


def test_bytes_are_decoded_exactly_as_python_does() -> None:
    assert "HS006" in codes(b"# -*- coding: utf-7 -*-\n+AGkAbQBwAG8AcgB0ACA-os\n")
    assert "HS001" in codes(b"x = '\xff\xfe'\n")
    assert codes("x = 'caf\u00e9'\n".encode()) == set()


def test_size_and_pathological_inputs_do_not_raise() -> None:
    assert "HS002" in codes("x = 1\n" * 200_000)
    assert "HS001" in codes("x = 1\x00\n")
    assert codes("(" * 300 + ")" * 300) & {"HS001", "HS005"}
    assert "HS005" in codes("x = " + "-" * 150 + "1\n")  # parses, but deeper than the limit


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=400)))
def test_run_checks_never_raises(source: str | bytes) -> None:
    report = run_checks(source)
    assert report.checkers_run[0] == "syntax"


def test_policy_extension_allows_a_module() -> None:
    source = "import socket\n"
    assert not gate(run_checks(source, "standard"), "standard").passed
    extended = POLICIES["standard"].extend("socket")
    assert gate(run_checks(source, extended), extended).passed
    assert module_allowed("xml.etree.ElementTree") and not module_allowed("xml.sax")


def test_strict_blocks_policy_warnings_that_standard_lets_through() -> None:
    report = run_checks("Dynamic = type('Dynamic', (), {})\n")
    assert report.counts["warning"] >= 1
    assert not gate(report, "strict").passed and gate(report, "standard").passed


def test_findings_feed_a_repair_prompt() -> None:
    report = run_checks("import os\nos.system('rm -rf /')\n")
    finding = next(f for f in report.findings if f.code == "HP103")
    assert (finding.line, finding.col) == (2, 0) and "os.system" in finding.message and finding.hint
