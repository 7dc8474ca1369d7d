"""RestrictedPython's compiler as a second opinion on the AST policy.

RestrictedPython is built to run code inside the host process, which harness never does; its
verdicts are advice here. Its rules about leading underscores and async code are stricter than
this sandbox needs, so those become info findings; anything else it refuses becomes a warning.
"""

from __future__ import annotations

import re
import warnings

from harness.checks.models import Finding, Severity

__all__ = ["check_restricted"]

_LINE = re.compile(r"^Line (\d+): (.*)$")


# Constructs RestrictedPython refuses because of how it guards in-process code, which
# do not matter for a script that runs in its own container.
_HARMLESS = ('starts with "_"', "Async", "await", "AnnAssign", "Augmented assignment", "TryStar", "Match")


def _severity(message: str) -> Severity:
    return "info" if any(marker in message for marker in _HARMLESS) else "warning"


def check_restricted(text: str) -> list[Finding]:
    """RestrictedPython's compile errors for ``text``, as findings."""
    from RestrictedPython.compile import compile_restricted_exec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compile_restricted_exec(text, filename="<script>")
    findings = []
    for error in result.errors:
        match = _LINE.match(error)
        line, message = (int(match.group(1)), match.group(2)) if match else (0, error)
        findings.append(
            Finding(
                code="HR201",
                severity=_severity(message),
                line=line,
                col=0,
                checker="restricted",
                message=f"RestrictedPython: {message}",
                hint="rewrite the construct plainly; see the policy findings for the precise rule",
            )
        )
    return findings
