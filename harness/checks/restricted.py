"""RestrictedPython's compiler as a second opinion on the AST policy.

The container, not these checks, is the security boundary. RestrictedPython was built to run
untrusted code *inside* a host process, behind guard functions; harness never does that, so
its verdict here is advice, graded so that ordinary scripts still pass:

==========================================================  ===========  ==========
RestrictedPython complaint                                   strict       standard
==========================================================  ===========  ==========
exec / eval calls (HR201)                                    error        error
frame and code attributes: tb_frame, f_back ... (HR203)      error        warning
dunder names the AST policy also refuses (HR202)             warning      info
``_private`` names, safe dunders (``__init__``) (HR202)      info         info
constructs it cannot guard: async, nonlocal, ``x.a += 1``,   info         info
``metaclass=``, ``*`` unpacking in comprehensions (HR204)
star imports (HR204)                                         warning      warning
anything else (HR299)                                        warning      warning
==========================================================  ===========  ==========

Leading underscores are ordinary Python for helpers and private attributes, and the AST policy
already refuses the dangerous dunders precisely; RestrictedPython's blanket rule would fail
almost every real script. Its warnings never block on their own (see ``harness.checks.gate``).

The checker reuses the tree the syntax checker parsed (``compile_restricted_exec`` accepts an
``ast.Module``) and transforms it in place, so it runs after every other checker.
"""

from __future__ import annotations

import ast
import re

from harness import pysource
from harness.checks.models import Finding, Severity
from harness.checks.rules import DUNDER_NAMES_READ, DUNDER_NAMES_STORE, INSTANCE_DUNDER_READS, SAFE_DUNDER_READS
from harness.checks.syntax import quiet_warnings

__all__ = ["check_restricted"]

_LINE = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)
# Dunders the AST policy allows (in the contexts it checks precisely): only noted here.
_POLICY_JUDGED = SAFE_DUNDER_READS | INSTANCE_DUNDER_READS | DUNDER_NAMES_READ | DUNDER_NAMES_STORE
_UNDERSCORE = re.compile(r'^"([^"]+)" is an invalid (?:variable|attribute) name because it starts with "_"')
_INSPECT = re.compile(r'^"([^"]+)" is a restricted name')
_UNGUARDED = (
    "statements are not allowed",
    "Augmented assignment",
    "Unpacking in comprehensions",
    'keyword argument "metaclass"',
    "is a reserved name",
    'ends with "__roles__"',
    "Lazy import",
)
_HINTS = {
    "HR201": "parse data with json or ast.literal_eval; write code directly",
    "HR202": "fine for helpers; dunder access is judged precisely by the AST policy (HP104/HP105)",
    "HR203": "do not inspect frames, tracebacks or code objects",
    "HR204": "nothing to do: the container, not RestrictedPython's guards, confines this script",
    "HR299": "rewrite the construct plainly; see the AST policy's findings for the precise rule",
}


def _grade(message: str, strict: bool) -> tuple[str, Severity]:
    if message.startswith(("Exec calls", "Eval calls")):
        return "HR201", "error"
    if _INSPECT.match(message):
        return "HR203", "error" if strict else "warning"
    underscore = _UNDERSCORE.match(message)
    if underscore:
        name = underscore.group(1)
        risky = name.startswith("__") and name.endswith("__") and name not in _POLICY_JUDGED
        return "HR202", "warning" if (risky and strict) else "info"
    if message.startswith('"*" imports'):
        return "HR204", "warning"
    if any(marker in message for marker in _UNGUARDED):
        return "HR204", "info"
    return "HR299", "warning"


def check_restricted(tree: ast.Module | str, strict: bool = True) -> list[Finding]:
    """RestrictedPython's complaints about a script, graded for the sandbox (mutates ``tree``)."""
    with quiet_warnings():  # its SyntaxWarnings and "prints but never reads" notes
        from RestrictedPython.compile import compile_restricted_exec

        with pysource.exclusive():  # it compiles the tree: one thread at a time (see harness.pysource)
            result = compile_restricted_exec(tree, filename="<script>")
    findings = []
    for error in result.errors:
        match = _LINE.match(error)
        line, message = (int(match.group(1)), match.group(2)) if match else (0, error)
        code, severity = _grade(message, strict)
        findings.append(
            Finding(
                code=code,
                severity=severity,
                line=max(line, 0),
                checker="restricted",
                message=f"RestrictedPython: {message.rstrip('.')}",
                hint=_HINTS[code],
            )
        )
    return findings
