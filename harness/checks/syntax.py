"""Decoding, syntax and size limits: the script is read exactly as the interpreter will read it."""

from __future__ import annotations

import ast
import io
import re
import tokenize

from harness.checks.models import Finding

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_LINES", "parse"]

MAX_BYTES = 512 * 1024
MAX_LINES = 10_000
MAX_DEPTH = 100
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_SAFE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "utf8", "ascii", "us-ascii"})


def _finding(code: str, message: str, hint: str, line: int = 0, col: int = 0) -> Finding:
    return Finding(code=code, severity="error", line=line, col=col, message=message, hint=hint, checker="syntax")


def _cookie(data: bytes) -> str | None:
    # Python honours a coding cookie only on the first two lines.
    head = b"\n".join(data.splitlines()[:2])
    match = _COOKIE.search(head)
    return match.group(1).decode("ascii", "replace").lower() if match else None


def parse(source: str | bytes) -> tuple[ast.Module | None, str, list[Finding]]:
    """Decode and parse a script; returns the tree (None if unusable), the text, and findings."""
    findings: list[Finding] = []
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else bytes(source)
    if len(data) > MAX_BYTES:
        return None, "", [_finding("HS002", f"script is {len(data)} bytes (limit {MAX_BYTES})", "split the work up")]
    cookie = _cookie(data)
    if cookie is not None and cookie.replace("_", "-") not in _SAFE_ENCODINGS:
        # The checker and the interpreter must read the same code; only UTF-8 guarantees that here.
        findings.append(
            _finding(
                "HS006",
                f"coding cookie {cookie!r}: scripts must be UTF-8",
                "remove the coding line and save the file as UTF-8",
                line=1,
            )
        )
        return None, "", findings
    if isinstance(source, str):
        text = source
    else:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            return None, "", [_finding("HS001", f"script is not valid UTF-8: {exc}", "save the file as UTF-8")]
    if "\x00" in text:
        return None, text, [_finding("HS001", "script contains NUL bytes", "remove the NUL bytes")]
    lines = text.count("\n") + 1
    if lines > MAX_LINES:
        findings.append(_finding("HS003", f"script has {lines} lines (limit {MAX_LINES})", "split the work up"))
        return None, text, findings
    try:
        tree = ast.parse(text, filename="<script>")
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        findings.append(
            _finding(
                "HS001",
                f"syntax error{where}: {exc.msg}",
                "fix the syntax so that python3 can parse the file",
                line=exc.lineno or 0,
                col=(exc.offset or 1) - 1,
            )
        )
        return None, text, findings
    except (RecursionError, MemoryError, ValueError) as exc:
        findings.append(_finding("HS005", f"script cannot be parsed: {type(exc).__name__}", "simplify nesting"))
        return None, text, findings
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        findings.append(_finding("HS005", f"nesting depth {depth} (limit {MAX_DEPTH})", "flatten the code"))
        return None, text, findings
    return tree, text, findings


def _depth(tree: ast.AST) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest
