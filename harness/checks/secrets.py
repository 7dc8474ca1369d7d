"""Hard-coded secrets: keys and tokens with a recognisable shape, and secret-named literals."""

from __future__ import annotations

import ast
import math
import re
from collections import Counter

from harness.checks.models import Finding

__all__ = ["check_secrets"]

_PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("HK401", "a private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY")),
    ("HK402", "an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("HK403", "an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("HK403", "an OpenAI-style API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{32,}")),
    ("HK404", "a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})")),
    ("HK405", "a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("HK405", "a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
)
_SECRET_NAME = re.compile(r"(?:pass(?:word|wd)?|secret|token|api_?key|access_?key|private_?key|credential)s?$", re.I)
_PLACEHOLDER = re.compile(
    r"^(?:|x+|\*+|<[^>]*>|\$\{?\w+\}?|changeme|example|dummy|test|none|null|todo|your[-_ ].*)$", re.I
)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def check_secrets(text: str, tree: ast.AST | None) -> list[Finding]:
    """Findings for secrets written into the script's text."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), 1):
        for code, what, pattern in _PATTERNS:
            match = pattern.search(line)
            if match:
                findings.append(
                    Finding(
                        code=code,
                        severity="error",
                        line=number,
                        col=match.start(),
                        checker="secrets",
                        message=f"the script contains {what}",
                        hint="never embed credentials; the sandbox has no network, so the script should not need one",
                    )
                )
                break
    if tree is None:
        return findings
    seen_lines = {f.line for f in findings}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.keyword) and node.arg:
            targets, value = [ast.Name(id=node.arg)], node.value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        secret = value.value
        for target in targets:
            name = (
                target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
            )
            where: int = getattr(node, "lineno", None) or value.lineno
            if (
                _SECRET_NAME.search(name)
                and not _PLACEHOLDER.match(secret.strip())
                and len(secret) >= 8
                and _entropy(secret) >= 3.0
                and where not in seen_lines
            ):
                findings.append(
                    Finding(
                        code="HK406",
                        severity="error",
                        line=where,
                        col=getattr(node, "col_offset", 0),
                        checker="secrets",
                        message=f"{name} is assigned what looks like a real secret",
                        hint="take secrets from the run's declared environment (os.environ), never from the source",
                    )
                )
    return findings
