"""The static-check gate: findings about a script before it may run.

The container is the security boundary; these checks are a gate in front of it. They turn
away code that reaches for process control, the network, introspection or hidden imports,
and give findings precise enough for a person or an LLM to fix (the same findings feed the
repair prompt). Five checkers run in order on one parse of the script:

1. ``syntax``: decoding exactly as Python does, size limits, syntax, look-alike identifiers;
2. ``policy``: the AST policy (allowed modules, banned names and attributes, known bypasses);
3. ``secrets``: hard-coded credentials;
4. ``bandit``: bandit's plugins, through its Python API;
5. ``restricted``: RestrictedPython's compiler as a second opinion (it transforms the tree,
   so it runs last).

``run_checks`` never raises: a checker that fails becomes an ``HX001`` error finding, so a
script nobody could check never passes. ``gate`` turns a report into a pass/fail decision.
``run_checks`` is safe to call from several threads (calls take turns).

Finding codes (severity is error unless noted):

=====  ==========================================================================================
HS001  syntax error (including errors only the compiler sees, such as ``return`` outside a def)
HS002  too many bytes             HS003  too many lines            HS004  a line is too long
HS005  nesting too deep           HS006  a coding cookie other than UTF-8, or one that is broken
HS007  too many syntax-tree nodes HS008  not valid UTF-8           HS009  NUL bytes
HS010  bidirectional control characters (Trojan Source)
HS011  an identifier spelled with look-alike characters (``ｅｘｅｃ`` is read as ``exec``)
HS012  a C0/C1 control character or DEL other than tab, newline, carriage return and form feed
HS013  a carriage return not followed by a newline (Python breaks the line there; terminals do not)
HP101  import of a module that is not allowed (or reached as a submodule)
HP102  eval, exec, compile, __import__, breakpoint, globals, locals, vars, help
HP103  a refused attribute of an allowed module (``os.system``, ``sys.modules``); code loading
       (``sys.path``, unittest loading by name) is info under the standard policy
HP104  dunder attribute access or assignment (``__class__``, ``__globals__``, ``__subclasses__``)
HP105  dunder names (``__builtins__``, ``__loader__``) and dunder definitions outside the data model
HP106  getattr/setattr/delattr with a computed name, or used as a value (hasattr: warning)
HP107  a format template that reads internals (info when the template is computed at run time)
HP108  frame and code attributes (``gi_frame``, ``tb_frame``, ``f_globals``, ``f_back``)
HP109  a module reached through another (``logging.os``), private, used as a value, or patched
HP110  a literal write outside /output, /tmp and /work, an importable file on the import path, or an
       archive unpacked into the working directory (``extractall()`` with no target path)
HP111  a kernel interface (/proc, /sys, /dev)
HP112  ``from module import *``
HP113  ``type()`` with three arguments
HP114  rot13 (obfuscation)
HP115  an annotation that is not a plain type expression
HP116  ``TarFile.extractall`` without ``members=`` (warning: blocks under strict)
HK401  private key   HK402  AWS key id   HK403  Anthropic/OpenAI-style key   HK404  GitHub token
HK405  Slack token or webhook   HK407  Google API or Stripe live key
HK406  a secret-named literal that looks real (warning when merely suspicious)
HR201  RestrictedPython: exec/eval      HR202  names starting with "_" (graded, see restricted.py)
HR203  frame/code attributes            HR204  constructs it cannot guard (info)   HR299  other
HBnnn  bandit test Bnnn, graded by severity and confidence (see bandit_check.py)
HX001  a checker failed on this script
=====  ==========================================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from harness import pysource
from harness.checks.bandit_check import check_bandit, warm_bandit
from harness.checks.gate import POLICIES, GateDecision, GatePolicy, gate, get_policy
from harness.checks.models import CHECKERS, Checker, CheckReport, Finding, Severity
from harness.checks.names import module_allowed
from harness.checks.policy import PolicyOptions, check_policy
from harness.checks.restricted import check_restricted
from harness.checks.rules import ALLOWED_MODULES
from harness.checks.secrets import check_secrets
from harness.checks.syntax import Limits, Parsed, parse

__all__ = [
    "ALLOWED_MODULES",
    "CHECKERS",
    "POLICIES",
    "CheckReport",
    "Finding",
    "GateDecision",
    "GatePolicy",
    "Severity",
    "Vetted",
    "gate",
    "get_policy",
    "module_allowed",
    "run_checks",
    "vet",
    "warm_up",
]

# One check at a time. Each checker is safe on its own (bandit gets a fresh visitor per script,
# warnings are silenced under a lock), but the checks are CPU-bound, so taking turns costs
# nothing under the GIL and keeps every process-wide side effect (warning filters) orderly.


def _crash(checker: Checker, exc: BaseException) -> Finding:
    return Finding(
        code="HX001",
        severity="error",
        checker=checker,
        message=f"the {checker} checker failed on this script: {type(exc).__name__}: {exc}"[:500],
        hint="simplify the construct near the reported line; report this if the script is ordinary code",
    )


def _run(
    checker: Checker, durations: dict[str, float], findings: list[Finding], work: Callable[[], list[Finding]]
) -> None:
    start = time.perf_counter()
    try:
        findings.extend(work())
    except Exception as exc:  # noqa: BLE001 - a checker's crash is a finding, never an exception
        findings.append(_crash(checker, exc))
    durations[checker] = round((time.perf_counter() - start) * 1000, 3)


def warm_up() -> None:
    """Load the slow parts (bandit's plugins, RestrictedPython) ahead of the first script."""
    warm_bandit()
    run_checks("import json\nprint(json.dumps({}))\n")


def run_checks(source: str | bytes, policy: GatePolicy | str = "strict") -> CheckReport:
    """Run every checker on ``source`` under ``policy``; never raises. Safe to call from several threads."""
    # One lock with every other parse in the process (harness.pysource): the checkers are not
    # thread-safe, and CPython 3.11's AST state is shared with renders running in other threads.
    with pysource.exclusive():
        return _run_checks(source, policy)


def _run_checks(source: str | bytes, policy: GatePolicy | str) -> CheckReport:
    try:
        chosen = get_policy(policy)
    except Exception:  # noqa: BLE001 - an unknown policy name falls back to the strictest
        chosen = POLICIES["strict"]
    started = time.perf_counter()
    durations: dict[str, float] = {}
    findings: list[Finding] = []
    ran: list[Checker] = ["syntax"]
    limits = Limits(chosen.max_bytes, chosen.max_lines, chosen.max_line_length, chosen.max_depth, chosen.max_nodes)
    parsed: Parsed | None = None

    def syntax() -> list[Finding]:
        nonlocal parsed
        parsed = parse(source, limits)
        return parsed.findings

    _run("syntax", durations, findings, syntax)
    if parsed is not None:
        tree, text = parsed.tree, parsed.text
        if tree is not None:
            options = PolicyOptions(chosen.name, chosen.extra_modules, chosen.allow_code_loading)
            _run("policy", durations, findings, lambda: check_policy(tree, options))
            ran.append("policy")
        if text:
            _run("secrets", durations, findings, lambda: check_secrets(text, tree))
            ran.append("secrets")
        if tree is not None:
            _run("bandit", durations, findings, lambda: check_bandit(tree, text))
            # Last: RestrictedPython transforms the tree in place.
            _run("restricted", durations, findings, lambda: check_restricted(tree, chosen.strict_second_opinion))
            ran += ["bandit", "restricted"]
    durations["total"] = round((time.perf_counter() - started) * 1000, 3)
    findings.sort(key=lambda f: (f.line, f.col, f.code))
    report = CheckReport(findings=tuple(findings), checkers_run=tuple(ran), durations_ms=durations, policy=chosen.name)
    try:
        passed = gate(report, chosen).passed
    except Exception:  # noqa: BLE001 - never raise; a report that cannot be judged does not pass
        passed = False
    return report.model_copy(update={"passed": passed})


class Vetted(BaseModel):
    """A script's findings and the gate's verdict on them under ``policy``: the check stage's output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: CheckReport
    policy: str
    passed: bool


def vet(script: str, policy: str = "standard") -> Vetted:
    """Check ``script`` and decide, under ``policy``, whether it may run; never raises."""
    report = run_checks(script, policy)
    return Vetted(report=report, policy=policy, passed=gate(report, policy).passed)
