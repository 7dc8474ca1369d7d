"""The static-check gate: findings about a script before it may run.

The container is the security boundary; these checks are a gate in front of it. They turn
away code that reaches for process control, the network, introspection or hidden imports,
and give findings precise enough for a person or an LLM to fix. ``run_checks`` never raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.checks.bandit_check import check_bandit
from harness.checks.gate import POLICIES, GateDecision, GatePolicy, gate, get_policy
from harness.checks.models import CheckReport, Finding
from harness.checks.policy import ALLOWED_MODULES, check_policy
from harness.checks.restricted import check_restricted
from harness.checks.secrets import check_secrets
from harness.checks.syntax import parse

__all__ = [
    "ALLOWED_MODULES",
    "POLICIES",
    "CheckReport",
    "Finding",
    "GateDecision",
    "GatePolicy",
    "gate",
    "run_checks",
]


def _timed(name: str, durations: dict[str, float], findings: list[Finding], fn: Callable[[], list[Finding]]) -> None:
    start = time.perf_counter()
    try:
        findings.extend(fn())
    except Exception as exc:  # noqa: BLE001 - a checker's crash is a finding, never an exception
        findings.append(
            Finding(
                code="HX001",
                severity="error",
                checker="syntax",
                message=f"the {name} checker failed: {type(exc).__name__}: {exc}",
                hint="simplify the script; report this if it is ordinary code",
            )
        )
    durations[name] = round((time.perf_counter() - start) * 1000, 3)


# One check at a time: bandit's manager is shared, and warnings.catch_warnings (used around
# bandit and RestrictedPython) changes process-wide state that concurrent checks would race on.
_CHECK_LOCK = threading.Lock()


def run_checks(source: str | bytes, policy: GatePolicy | str = "strict") -> CheckReport:
    """Run every checker on ``source``; never raises. Safe to call from several threads."""
    with _CHECK_LOCK:
        return _run_checks(source, policy)


def _run_checks(source: str | bytes, policy: GatePolicy | str) -> CheckReport:
    try:
        chosen = get_policy(policy)
    except Exception:  # noqa: BLE001 - an unknown policy name falls back to the strictest
        chosen = POLICIES["strict"]
    durations: dict[str, float] = {}
    findings: list[Finding] = []
    start = time.perf_counter()
    try:
        tree, text, syntax_findings = parse(source)
    except Exception as exc:  # noqa: BLE001
        tree, text, syntax_findings = (
            None,
            "",
            [
                Finding(
                    code="HS001", severity="error", checker="syntax", message=f"script cannot be read: {exc}", hint=""
                )
            ],
        )
    findings.extend(syntax_findings)
    durations["syntax"] = round((time.perf_counter() - start) * 1000, 3)
    ran = ["syntax"]
    if tree is not None:
        _timed("policy", durations, findings, lambda: check_policy(tree, chosen.extra_modules))
        _timed("restricted", durations, findings, lambda: check_restricted(text))
        _timed("bandit", durations, findings, lambda: check_bandit(text))
        ran += ["policy", "restricted", "bandit"]
    if text:
        _timed("secrets", durations, findings, lambda: check_secrets(text, tree))
        ran.append("secrets")
    findings.sort(key=lambda f: (f.line, f.col, f.code))
    return CheckReport(findings=tuple(findings), checkers_run=tuple(ran), durations_ms=durations)
