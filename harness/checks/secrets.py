"""Hard-coded secrets: credentials with a recognisable shape, and secret-named literals.

The container, not these checks, is the security boundary, and it has no network; but a
credential written into a script leaks wherever the script goes (generated/, history, logs,
the LLM's context). Two passes, both tuned for few false alarms:

* shapes (errors): private key blocks, AWS access key ids, Anthropic and OpenAI-style keys,
  GitHub and Slack tokens, Slack webhooks, Google API keys, Stripe live keys. They are searched
  in the whole text, comments included.
* names (errors when clearly random, warnings when merely suspicious): a string literal bound
  to a name like ``password``, ``secret``, ``token`` or ``api_key`` (assignment, keyword
  argument, dict key, default argument, comparison) that has no spaces, is not a placeholder,
  a path, a URL or an environment variable's name, and is random enough (Shannon entropy).
"""

from __future__ import annotations

import ast
import bisect
import math
import re
from collections import Counter

from harness.checks.models import Finding, Severity

__all__ = ["check_secrets"]

_SHAPES: tuple[tuple[str, str, str], ...] = (
    ("HK401", "a private key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ("HK402", "an AWS access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("HK403", "an Anthropic API key", r"\bsk-ant-(?:api|admin|sid)\d{2}-[A-Za-z0-9_\-]{20,}"),
    ("HK403", "an OpenAI-style API key", r"\bsk-(?:proj-|svcacct-|admin-)?(?!ant-)[A-Za-z0-9_\-]{32,}"),
    ("HK404", "a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    ("HK405", "a Slack token", r"\bxox[abposre]-[0-9A-Za-z][0-9A-Za-z-]{8,}"),
    ("HK405", "a Slack webhook URL", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{20,}"),
    ("HK407", "a Google API key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("HK407", "a Stripe live key", r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}"),
)
_SHAPE = re.compile("|".join(f"(?P<g{i}>{pattern})" for i, (_, _, pattern) in enumerate(_SHAPES)))
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|apikey|access_?key|auth_?key|private_?key|"
    r"client_?secret|credentials?|session_?key|signing_?key)s?$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"^(?:x+|\*+|\.+|-+|<[^>]*>|\$\{?\w+\}?|\{\{?[^}]*\}?\}|%\(?\w*\)?s|changeme|change_me|example\w*|dummy\w*|"
    r"test\w*|fake\w*|sample\w*|none|null|todo|tbd|redacted|secret|password|token|your[-_ ].*|.*(?:here|xxxx).*)$",
    re.IGNORECASE,
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")  # os.environ["API_TOKEN"]-style names, not values


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _grade(value: str) -> Severity | None:
    """How much a secret-named string literal looks like a real secret (None: not at all)."""
    text = value.strip()
    if len(text) < 8 or len(text) > 512 or any(c.isspace() for c in text):
        return None
    if _PLACEHOLDER.match(text) or _ENV_NAME.match(text) or text.startswith(("/", "./", "~", "http://", "https://")):
        return None
    if "{" in text or "%s" in text or (text.isalpha() and text.islower()):
        return None
    entropy = _entropy(text)
    classes = sum(
        (any(c.islower() for c in text), any(c.isupper() for c in text), any(c.isdigit() for c in text))
    ) + any(not c.isalnum() for c in text)
    if len(text) >= 16 and entropy >= 3.5 and classes >= 2:
        return "error"
    if entropy >= 2.8 and classes >= 2:
        return "warning"
    return None


def _target_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return ""


def _pairs(tree: ast.AST) -> list[tuple[str, ast.expr, ast.AST]]:
    """(name, value, where) for every place a literal is bound to a name."""
    out: list[tuple[str, ast.expr, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            out.extend((_target_name(t), node.value, node) for t in node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            out.append((_target_name(node.target), node.value, node))
        elif isinstance(node, ast.Call):
            out.extend((k.arg, k.value, k.value) for k in node.keywords if k.arg)
        elif isinstance(node, ast.Dict):
            out.extend(
                (k.value, v, v)
                for k, v in zip(node.keys, node.values, strict=False)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            )
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            defaults = list(zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=False))
            defaults += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=False) if d is not None]
            out.extend((arg.arg, default, default) for arg, default in defaults)
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1:
            left, right = node.left, node.comparators[0]
            out.append((_target_name(left), right, node))
            out.append((_target_name(right), left, node))
    return out


def check_secrets(text: str, tree: ast.AST | None) -> list[Finding]:
    """Findings for secrets written into the script's text."""
    findings: list[Finding] = []
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    lines_with_shapes: set[int] = set()
    for match in _SHAPE.finditer(text):
        code, what, _ = _SHAPES[int(str(match.lastgroup)[1:])]
        line = bisect.bisect_right(starts, match.start())
        if line in lines_with_shapes:
            continue
        lines_with_shapes.add(line)
        findings.append(
            Finding(
                code=code,
                severity="error",
                line=line,
                col=match.start() - starts[line - 1],
                checker="secrets",
                message=f"the script contains {what}",
                hint="never embed credentials: the sandbox has no network, and a declared environment variable "
                "(os.environ) is the place for anything secret",
            )
        )
    if tree is None:
        return findings
    for name, value, where in _pairs(tree):
        if not (name and isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        if not _SECRET_NAME.search(name):
            continue
        severity = _grade(value.value)
        line = getattr(where, "lineno", 0)
        if severity is None or line in lines_with_shapes:
            continue
        findings.append(
            Finding(
                code="HK406",
                severity=severity,
                line=line,
                col=getattr(where, "col_offset", 0),
                checker="secrets",
                message=f"{name} is given a literal that looks like a real secret",
                hint="take secrets from the run's declared environment (os.environ.get(...)), never from the source",
            )
        )
    return findings
