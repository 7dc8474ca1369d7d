"""Gate policies, and the gate's pass/fail verdict on a CheckReport.

The container, not the gate, is the security boundary: a policy decides which scripts are
worth sending to it. Two policies are built in:

* ``strict`` for LLM output: errors block, and so do warnings from the AST policy and the
  secret scan (the two checkers written for this sandbox, whose warnings are precise).
* ``standard`` for reviewed scaffolds: only errors block, and code that loads code written at
  run time (``sys.path`` changes, unittest discovery of generated test modules) is allowed,
  because a person has read the scaffold.

Some findings depend on the policy the checks ran under (``allow_code_loading``, and how
RestrictedPython's complaints are graded), so gate a report under the policy that produced it.
A policy can grant more modules with ``extend``; granting is explicit and wins over the
built-in deny-list.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.checks.models import Checker, CheckReport, Finding, Severity
from harness.errors import ConfigError

__all__ = ["POLICIES", "GateDecision", "GatePolicy", "gate", "get_policy"]


class GatePolicy(BaseModel):
    """How strict the gate is: what blocks, which extra modules are granted, and size limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    extra_modules: frozenset[str] = frozenset()
    fail_on: frozenset[Severity] = frozenset({"error"})
    fail_on_warnings_from: frozenset[Checker] = frozenset()
    allow_code_loading: bool = False
    strict_second_opinion: bool = Field(default=True, description="grade RestrictedPython strictly (restricted.py)")
    max_bytes: int = Field(default=512 * 1024, gt=0)
    max_lines: int = Field(default=10_000, gt=0)
    max_line_length: int = Field(default=2_000, gt=0)
    max_depth: int = Field(default=200, gt=0, description="deepest AST nesting; the checkers recurse this deep")
    max_nodes: int = Field(default=150_000, gt=0)

    def extend(self, *modules: str, name: str | None = None) -> GatePolicy:
        """This policy with more modules allowed (a reviewed policy may grant them)."""
        return self.model_copy(
            update={"extra_modules": self.extra_modules | frozenset(modules), "name": name or self.name}
        )

    def blocks(self, finding: Finding) -> bool:
        """True when ``finding`` makes a script fail under this policy."""
        return finding.severity in self.fail_on or (
            finding.severity == "warning" and finding.checker in self.fail_on_warnings_from
        )


POLICIES: dict[str, GatePolicy] = {
    "strict": GatePolicy(
        name="strict",
        description="LLM output: errors, and warnings from the AST policy and the secret scan, block the run",
        fail_on_warnings_from=frozenset({"policy", "secrets"}),
    ),
    "standard": GatePolicy(
        name="standard",
        description="reviewed scaffolds: only errors block; code loading for self-tests is allowed",
        allow_code_loading=True,
        strict_second_opinion=False,
        max_line_length=10_000,
    ),
}


class GateDecision(BaseModel):
    """The gate's verdict, the findings that decided it, and the reasons in words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str
    passed: bool
    blocking: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()


def get_policy(policy: GatePolicy | str) -> GatePolicy:
    """A policy by name (or the policy itself); ConfigError for an unknown name."""
    if isinstance(policy, GatePolicy):
        return policy
    try:
        return POLICIES[policy]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown gate policy {policy!r}", hint=f"use one of: {', '.join(POLICIES)}") from None


def gate(report: CheckReport, policy: GatePolicy | str = "strict") -> GateDecision:
    """Pass or fail a report under a policy."""
    chosen = get_policy(policy)
    blocking = tuple(f for f in report.findings if chosen.blocks(f))
    if blocking:
        reasons = tuple(
            f"{f.code} line {f.line}: {f.message}" + ("" if f.severity == "error" else f" ({f.severity})")
            for f in blocking
        )
    else:
        shown = sum(1 for f in report.findings if f.severity != "info")
        reasons = (f"no blocking findings under the {chosen.name} policy ({shown} non-blocking)",)
    return GateDecision(policy=chosen.name, passed=not blocking, blocking=blocking, reasons=reasons)
