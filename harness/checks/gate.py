"""Gate policies: how strict the gate is, and its pass/fail verdict on a CheckReport."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from harness.checks.models import CheckReport, Finding
from harness.errors import ConfigError

__all__ = ["POLICIES", "GateDecision", "GatePolicy", "gate", "get_policy"]


class GatePolicy(BaseModel):
    """What passes: errors always fail; ``strict`` also fails warnings from the named checkers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    extra_modules: frozenset[str] = frozenset()
    fail_on_warnings_from: frozenset[str] = frozenset()

    def extend(self, *modules: str) -> GatePolicy:
        """This policy with more modules allowed (a reviewed policy may grant them)."""
        return self.model_copy(update={"extra_modules": self.extra_modules | frozenset(modules)})


POLICIES: dict[str, GatePolicy] = {
    # LLM output: anything the policy or secret scan warns about blocks the run.
    "strict": GatePolicy(name="strict", fail_on_warnings_from=frozenset({"policy", "secrets"})),
    # Reviewed scaffolds: only errors block.
    "standard": GatePolicy(name="standard"),
}


class GateDecision(BaseModel):
    """The gate's verdict and the findings that decided it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str
    passed: bool
    blocking: tuple[Finding, ...] = ()


def get_policy(policy: GatePolicy | str) -> GatePolicy:
    """A policy by name (or the policy itself); ConfigError for an unknown name."""
    if isinstance(policy, GatePolicy):
        return policy
    try:
        return POLICIES[policy]
    except KeyError:
        raise ConfigError(f"unknown gate policy {policy!r}", hint=f"use one of: {', '.join(POLICIES)}") from None


def gate(report: CheckReport, policy: GatePolicy | str = "strict") -> GateDecision:
    """Pass or fail a report under a policy."""
    chosen = get_policy(policy)
    blocking = tuple(
        f
        for f in report.findings
        if f.severity == "error" or (f.severity == "warning" and f.checker in chosen.fail_on_warnings_from)
    )
    return GateDecision(policy=chosen.name, passed=not blocking, blocking=blocking)
