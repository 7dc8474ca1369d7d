"""Findings and reports of the static-check gate.

The checks are a gate in front of the sandbox, not a sandbox: the container is the security
boundary. A finding says what is wrong and how to fix it, in words an LLM can act on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = ["CheckReport", "Checker", "Finding", "Severity"]

Severity = Literal["error", "warning", "info"]
Checker = Literal["syntax", "policy", "restricted", "bandit", "secrets"]


class Finding(BaseModel):
    """One problem in a script, located and explained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    severity: Severity
    line: int = 0
    col: int = 0
    message: str
    hint: str = ""
    checker: Checker


class CheckReport(BaseModel):
    """Everything the checkers found in one script."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    findings: tuple[Finding, ...] = ()
    checkers_run: tuple[str, ...] = ()
    durations_ms: dict[str, float] = Field(default_factory=dict)

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
