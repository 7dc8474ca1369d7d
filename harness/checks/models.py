"""Findings and reports of the static-check gate.

The container, not these checks, is the security boundary. The checks are a gate in front
of it: they turn away code that has no business running there, and every finding says what
is wrong and how to fix it, in words a person or an LLM can act on (the same findings feed
the repair prompt).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = ["CHECKERS", "CheckReport", "Checker", "Finding", "Severity"]

Severity = Literal["error", "warning", "info"]
Checker = Literal["syntax", "policy", "restricted", "bandit", "secrets"]
CHECKERS: tuple[Checker, ...] = ("syntax", "policy", "restricted", "bandit", "secrets")


class Finding(BaseModel):
    """One problem in a script: where it is, what it is, and a concrete fix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="stable identifier, e.g. HP101; harness.checks lists them all")
    severity: Severity
    line: int = Field(default=0, ge=0, description="1-based; 0 when the finding is about the whole script")
    col: int = Field(default=0, ge=0, description="0-based column")
    message: str
    hint: str = Field(default="", description="a concrete fix an LLM can act on")
    checker: Checker

    def one_line(self) -> str:
        """``HP103 line 2:0 error: message. Fix: hint`` (for logs and repair prompts)."""
        fix = f" Fix: {self.hint}" if self.hint else ""
        return f"{self.code} line {self.line}:{self.col} {self.severity}: {self.message}.{fix}"


class CheckReport(BaseModel):
    """Everything the checkers found in one script, and the gate's verdict under ``policy``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    findings: tuple[Finding, ...] = ()
    checkers_run: tuple[Checker, ...] = ()
    durations_ms: dict[str, float] = Field(default_factory=dict, description="per checker, plus 'total'")
    policy: str = Field(default="strict", description="the gate policy the checks ran under")
    passed: bool = Field(default=False, description="the gate's verdict under `policy` (see harness.checks.gate)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        """Findings per severity."""
        out = {"error": 0, "warning": 0, "info": 0}
        for finding in self.findings:
            out[finding.severity] += 1
        return out

    def errors(self) -> tuple[Finding, ...]:
        """The error-level findings."""
        return tuple(f for f in self.findings if f.severity == "error")

    def by_checker(self, checker: Checker) -> tuple[Finding, ...]:
        """The findings of one checker."""
        return tuple(f for f in self.findings if f.checker == checker)
