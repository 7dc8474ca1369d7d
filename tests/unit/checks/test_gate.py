"""The gate: policies, verdicts, reports, and run_checks never raising."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness.checks
from harness.checks import POLICIES, CheckReport, Finding, GatePolicy, gate, get_policy, run_checks
from harness.errors import ConfigError

# A policy warning (HP116, unfiltered tar extraction) and a bandit warning (B202), nothing else.
WARNING_ONLY = "import tarfile\n\nwith tarfile.open('/input/a.tar') as tar:\n    tar.extractall('/tmp/x')\n"


def test_public_surface() -> None:
    assert set(harness.checks.__all__) == {
        "ALLOWED_MODULES", "CHECKERS", "POLICIES", "CheckReport", "Finding", "GateDecision", "GatePolicy",
        "Severity", "Vetted", "gate", "get_policy", "module_allowed", "run_checks", "vet", "warm_up",
    }  # fmt: skip
    for name in harness.checks.__all__:
        assert hasattr(harness.checks, name), name


def test_report_carries_counts_durations_and_the_verdict() -> None:
    report = run_checks("import os\nos.system('id')\n")
    assert report.checkers_run == ("syntax", "policy", "secrets", "bandit", "restricted")
    assert set(report.durations_ms) == {*report.checkers_run, "total"}
    assert all(ms >= 0 for ms in report.durations_ms.values())
    assert report.counts["error"] == len(report.errors()) >= 1
    assert sum(report.counts.values()) == len(report.findings)
    assert report.policy == "strict" and report.passed is False
    assert [f.line for f in report.findings] == sorted(f.line for f in report.findings)
    dumped = report.model_dump(mode="json")
    assert dumped["passed"] is False and dumped["counts"]["error"] >= 1


def test_models_are_frozen_and_strict() -> None:
    finding = Finding(code="HP101", severity="error", message="m", checker="policy")
    with pytest.raises(pydantic.ValidationError):
        Finding(code="HP101", severity="fatal", message="m", checker="policy")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        Finding(code="HP101", severity="error", message="m", checker="policy", approved=True)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        finding.line = 3  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        CheckReport(passed=True, trusted=True)  # type: ignore[call-arg]


def test_strict_blocks_policy_warnings_that_standard_lets_through() -> None:
    strict, standard = run_checks(WARNING_ONLY, "strict"), run_checks(WARNING_ONLY, "standard")
    assert strict.counts["error"] == 0 and strict.counts["warning"] >= 1
    assert not strict.passed and standard.passed
    decision = gate(strict, "strict")
    assert not decision.passed and [f.code for f in decision.blocking] == ["HP116"]
    assert decision.reasons[0].startswith("HP116 line 4:") and decision.reasons[0].endswith("(warning)")
    passed = gate(standard, "standard")
    assert passed.passed and passed.blocking == () and "no blocking findings" in passed.reasons[0]


def test_bandit_and_restricted_warnings_never_block_on_their_own() -> None:
    source = "import hashlib\nprint(hashlib.md5(b'x').hexdigest())\n"
    report = run_checks(source, "strict")
    assert any(f.checker == "bandit" and f.severity == "warning" for f in report.findings)
    assert report.passed


def test_errors_block_under_both_policies() -> None:
    for policy in ("strict", "standard"):
        report = run_checks("eval('1')\n", policy)
        assert not report.passed and not gate(report, policy).passed
        assert {f.code for f in gate(report, policy).blocking} >= {"HP102"}


def test_policies_and_extension() -> None:
    strict, standard = POLICIES["strict"], POLICIES["standard"]
    assert strict.fail_on == {"error"} and strict.fail_on_warnings_from == {"policy", "secrets"}
    assert not strict.allow_code_loading and standard.allow_code_loading
    assert standard.max_line_length > strict.max_line_length
    granted = strict.extend("socket", name="strict+socket")
    assert granted.name == "strict+socket" and "socket" in granted.extra_modules and not strict.extra_modules
    assert run_checks("import socket\n", granted).passed and not run_checks("import socket\n", strict).passed
    warnings_block = GatePolicy(name="paranoid", fail_on=frozenset({"error", "warning"}))
    assert not gate(run_checks("import hashlib\nhashlib.md5(b'x')\n", warnings_block), warnings_block).passed
    with pytest.raises(pydantic.ValidationError):
        GatePolicy(name="x", max_bytes=0)


def test_unknown_policy_names() -> None:
    assert get_policy("standard") is POLICIES["standard"]
    with pytest.raises(ConfigError, match="unknown gate policy"):
        get_policy("lax")
    report = run_checks(WARNING_ONLY, "lax")  # run_checks never raises: it falls back to strict
    assert report.policy == "strict" and not report.passed


def test_a_crashing_checker_becomes_an_error_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> list[Finding]:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.checks, "check_bandit", explode)
    report = run_checks("x = 1\n")
    crash = [f for f in report.findings if f.code == "HX001"]
    assert len(crash) == 1 and crash[0].checker == "bandit" and "boom" in crash[0].message
    assert not report.passed and "bandit" in report.durations_ms


def test_concurrent_checks_agree_and_leave_warning_filters_alone() -> None:
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    sources = [
        "import os\nos.system('id')\n",
        "import re\nPAT = re.compile('\\d+')\nprint(PAT)\n",  # an invalid escape: a SyntaxWarning
        "import json\nprint(json.dumps({}))\n",
    ] * 8
    before = list(warnings.filters)
    expected = [run_checks(s).findings for s in sources]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run_checks, sources))
    assert [r.findings for r in results] == expected
    assert warnings.filters == before


PATHOLOGICAL: list[str | bytes] = [
    "x = 1\n" * 2_000_000,  # 12 MB
    b"x = 1\x00\n",
    b"\xff\xfe\x00\x00",
    b"\x80abc",
    "\udcff = 1",  # a lone surrogate
    "(" * 100_000,
    "[" * 1_000 + "]" * 1_000,
    "x = " + "not " * 50_000 + "1",
    "f'" + "{" * 200 + "x" + "}" * 200 + "'",
    "def f():\n" + "".join("    " * i + "if x:\n" for i in range(1, 150)) + "    " * 150 + "pass\n",
    "\t\t\tx = 1",
    "import",
    "lambda: (yield)",
    "'" * 10_000,
    "\\\n" * 1_000,
]


@pytest.mark.parametrize("source", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_inputs_do_not_raise(source: str | bytes) -> None:
    report = run_checks(source)
    assert report.checkers_run[0] == "syntax"
    assert isinstance(report.passed, bool)
    if report.passed:
        assert not report.errors()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_run_checks_never_raises_on_random_input(source: str | bytes) -> None:
    report = run_checks(source, "strict")
    assert report.checkers_run[0] == "syntax"
    assert not any(f.code == "HX001" for f in report.findings), [f.one_line() for f in report.findings]


PYTHONISH = st.lists(
    st.sampled_from(
        [
            "import os",
            "import json",
            "x = 1",
            "def f(a):",
            "    return a",
            "class A:",
            "    pass",
            "print(f'{x!r}')",
            "getattr(x, 'y')",
            "'{0.y}'.format(x)",
            "open('/tmp/a', 'w')",
            "async def g():",
            "    await g()",
            "@f",
            "x: 'int' = 2",
            "for i in range(3):",
            "    yield i",
            "try:",
            "except Exception:",
            "lambda q: q",
            "with open('a') as fh:",
            "    fh.read()",
            "'''>>> x\n1'''",
            "del x",
            "global y",
        ]
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(PYTHONISH, st.sampled_from(["strict", "standard"]))
def test_run_checks_never_raises_on_python_like_input(lines: list[str], policy: str) -> None:
    report = run_checks("\n".join(lines) + "\n", policy)
    assert not any(f.code == "HX001" for f in report.findings), [f.one_line() for f in report.findings]


def test_vet_is_the_report_and_the_verdict_under_one_policy() -> None:
    vetted = harness.checks.vet(WARNING_ONLY, "standard")
    assert (
        vetted.passed
        and vetted.policy == "standard"
        and vetted.report.findings == run_checks(WARNING_ONLY, "standard").findings
    )
    strict = harness.checks.vet(WARNING_ONLY, "strict")
    assert not strict.passed and strict.passed == gate(strict.report, "strict").passed
