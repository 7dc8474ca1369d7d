"""Decoding, size limits and syntax: the script is read exactly as the interpreter will read it.

The container, not these checks, is the security boundary; this module makes sure the other
checkers and the interpreter see the same code. Bytes are decoded the way Python decodes a
source file (``tokenize.detect_encoding``), and only UTF-8 (or ASCII) is accepted: a
``coding:`` cookie such as ``utf-7`` or ``rot13`` would make the interpreter run code the
checkers never saw. Size and nesting limits keep every later checker fast and keep their
recursion well inside Python's limits. Identifiers that Python silently NFKC-normalises
(full-width ``ｅｘｅｃ`` is ``exec``) and bidirectional control characters (which make a reviewer
read different code from the interpreter) are reported here too, and so are terminal control
characters (an escape sequence in a comment can erase and rewrite the line a reviewer reads).
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import io
import re
import threading
import tokenize
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness import pysource
from harness.checks.models import Finding, Severity

__all__ = ["Limits", "Parsed", "parse", "quiet_warnings"]

_SAFE_ENCODINGS = frozenset({"utf-8", "utf8", "utf-8-sig", "ascii", "us-ascii"})
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.MULTILINE)  # tokenize's own test, roughly
# Trojan Source (CVE-2021-42574): these reorder how text is displayed, not how it is parsed.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# Terminal control: ESC[2K ESC[1G in a comment erases the line a reviewer would read and prints
# another; CR, FF, tab and newline are ordinary in source (a lone CR is a line break to Python).
_LONE_CR = re.compile("\r(?!\n)")
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


# warnings.catch_warnings() swaps process-wide state; concurrent checks must take turns.
_WARNINGS_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the warnings that parsing and compiling a script emit (they are not findings), thread-safely."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class Limits:
    """Size limits, taken from the gate policy."""

    max_bytes: int = 512 * 1024
    max_lines: int = 10_000
    max_line_length: int = 2_000
    max_depth: int = 200
    max_nodes: int = 150_000


@dataclass
class Parsed:
    """The decoded text, its tree (None when later checkers must not run) and the findings so far."""

    text: str = ""
    tree: ast.Module | None = None
    findings: list[Finding] = field(default_factory=list)
    nodes: int = 0
    depth: int = 0


def _finding(code: str, message: str, hint: str, line: int = 0, col: int = 0, severity: Severity = "error") -> Finding:
    return Finding(
        code=code, severity=severity, line=max(line, 0), col=max(col, 0), message=message, hint=hint, checker="syntax"
    )


def _normal(encoding: str) -> str:
    return encoding.lower().replace("_", "-")


def _decode(source: str | bytes, out: Parsed) -> str | None:
    """The text Python would execute, or None (with a finding) when it cannot be trusted."""
    if isinstance(source, str):
        # Written to a file and run, a str is read through its coding cookie; check that cookie too.
        data = source.encode("utf-8", "surrogatepass")
    else:
        data = bytes(source)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if _COOKIE.search(b"\n".join(data.removeprefix(codecs.BOM_UTF8).split(b"\n", 2)[:2])):
            out.findings.append(
                _finding(
                    "HS006",
                    f"the coding declaration cannot be honoured: {exc.msg}",
                    "delete the `# coding:` line and save the file as UTF-8",
                    line=1,
                )
            )
        else:
            try:
                data.decode("utf-8")
                line = 1
            except UnicodeDecodeError as bad:
                line = data[: bad.start].count(b"\n") + 1
            out.findings.append(_finding("HS008", "the script is not valid UTF-8", "save the file as UTF-8", line=line))
        return None
    if _normal(encoding) not in _SAFE_ENCODINGS:
        out.findings.append(
            _finding(
                "HS006",
                f"the script declares the encoding {encoding!r}; only UTF-8 is accepted, so that the checks and "
                "the interpreter read the same code",
                "delete the `# coding:` line and save the file as UTF-8",
                line=1,
            )
        )
        return None
    if isinstance(source, str):
        return source.removeprefix("\ufeff")  # as Python drops the BOM of a UTF-8 file
    try:
        return data.decode("utf-8-sig" if _normal(encoding) == "utf-8-sig" else "utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        out.findings.append(
            _finding("HS008", f"the script is not valid UTF-8 ({exc.reason})", "save the file as UTF-8", line=line)
        )
        return None


def _line_checks(text: str, limits: Limits, out: Parsed) -> bool:
    """Line count and length; False when the script is too big to check further."""
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > limits.max_lines:
        out.findings.append(
            _finding(
                "HS003",
                f"the script has {lines} lines (limit {limits.max_lines})",
                "split the work into a smaller script; move data into input files",
            )
        )
        return False
    if len(text) > limits.max_line_length:  # cheap guard: no line can be too long otherwise
        for number, line in enumerate(text.splitlines(), 1):
            if len(line) > limits.max_line_length:
                out.findings.append(
                    _finding(
                        "HS004",
                        f"line {number} is {len(line)} characters long (limit {limits.max_line_length})",
                        "wrap long expressions and move embedded data into an input file",
                        line=number,
                    )
                )
                break
    return True


def _bidi(text: str, out: Parsed) -> None:
    match = _BIDI.search(text)
    if match:
        out.findings.append(
            _finding(
                "HS010",
                f"the script contains the invisible bidirectional control character U+{ord(match.group()):04X}, "
                "which makes the code display differently from how it runs",
                "delete the control character; write right-to-left text in a data file instead",
                line=text.count("\n", 0, match.start()) + 1,
            )
        )


def _controls(text: str, out: Parsed) -> None:
    match = _CONTROL.search(text)
    if match is None:
        return
    start = text.rfind("\n", 0, match.start()) + 1
    others = len(_CONTROL.findall(text, match.end()))
    more = f" ({others} more in the script)" if others else ""
    out.findings.append(
        _finding(
            "HS012",
            f"the script contains the control character U+{ord(match.group()):04X}{more}, which a terminal obeys "
            "instead of showing: it can erase or rewrite what a reviewer reads",
            "delete the control character; to produce one at run time write an escape such as '\\x1b' in a string",
            line=text.count("\n", 0, match.start()) + 1,
            col=match.start() - start,
        )
    )


def _lone_cr(text: str, out: Parsed) -> None:
    # Python ends a line at a lone CR; `cat`, pagers and many viewers do not, so the code after it
    # prints over the start of the line and a reviewer outside harness never sees it. Ordinary
    # files have none (0 of 897 in Debian's Python 3.11 library and examples); CRLF is fine.
    match = _LONE_CR.search(text)
    if match is not None:
        out.findings.append(
            _finding(
                "HS013",
                "the script contains a carriage return not followed by a newline: Python starts a new line "
                "there, but a terminal or viewer prints what follows over the line before it",
                "use newline (or CRLF) line endings only",
                line=text.count("\n", 0, match.start()) + 1,
                col=match.start() - (text.rfind("\n", 0, match.start()) + 1),
            )
        )


def _look_alikes(text: str, out: Parsed) -> None:
    """Identifiers Python reads differently from how they are written (NFKC normalisation)."""
    if text.isascii():
        return
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return
    for token in tokens:
        if token.type == tokenize.NAME and not token.string.isascii():
            normal = unicodedata.normalize("NFKC", token.string)
            if normal != token.string:
                out.findings.append(
                    _finding(
                        "HS011",
                        f"the identifier {token.string!r} is written with look-alike characters; Python reads it "
                        f"as {normal!r}",
                        f"write it as plain {normal!r}",
                        line=token.start[0],
                        col=token.start[1],
                    )
                )


def _measure(tree: ast.AST) -> tuple[int, int]:
    """Node count and deepest nesting, without recursion."""
    nodes = deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        nodes += 1
        if level > deepest:
            deepest = level
        for child in ast.iter_child_nodes(node):
            stack.append((child, level + 1))
    return nodes, deepest


def parse(source: str | bytes, limits: Limits | None = None) -> Parsed:
    """Decode and parse a script under ``limits``; never raises."""
    limits = limits or Limits()
    out = Parsed()
    if not isinstance(source, str | bytes | bytearray | memoryview):
        out.findings.append(
            _finding("HS001", f"a script must be text or bytes, not {type(source).__name__}", "pass the source")
        )
        return out
    size = len(source.encode("utf-8", "surrogatepass")) if isinstance(source, str) else len(source)
    if size > limits.max_bytes:
        out.findings.append(
            _finding(
                "HS002",
                f"the script is {size} bytes (limit {limits.max_bytes})",
                "split the work into a smaller script; move data into input files",
            )
        )
        return out
    text = _decode(bytes(source) if isinstance(source, bytearray | memoryview) else source, out)
    if text is None:
        return out
    if "\x00" in text:
        out.findings.append(
            _finding(
                "HS009",
                "the script contains NUL bytes",
                "delete the NUL bytes; a Python script is plain text",
                line=text.count("\n", 0, text.index("\x00")) + 1,
            )
        )
        return out
    out.text = text
    if not _line_checks(text, limits, out):
        return out
    _bidi(text, out)
    _controls(text, out)
    _lone_cr(text, out)
    try:
        with quiet_warnings():  # "invalid escape sequence" and friends are the interpreter's business
            tree = pysource.parse(text, filename="<script>")
    except SyntaxError as exc:
        out.findings.append(
            _finding(
                "HS001",
                f"syntax error: {exc.msg}",
                "fix the syntax so that python3 can parse the file",
                line=exc.lineno or 0,
                col=(exc.offset or 1) - 1,
            )
        )
        return out
    except (RecursionError, MemoryError):
        out.findings.append(
            _finding(
                "HS005",
                "the script nests too deeply for the parser",
                "flatten deeply nested or very long chained expressions",
            )
        )
        return out
    except (ValueError, UnicodeError) as exc:
        out.findings.append(_finding("HS001", f"the script cannot be parsed: {exc}", "save the file as UTF-8 text"))
        return out
    _look_alikes(text, out)
    out.nodes, out.depth = _measure(tree)
    if out.depth > limits.max_depth:
        out.findings.append(
            _finding(
                "HS005",
                f"the code nests {out.depth} levels deep (limit {limits.max_depth})",
                "flatten deeply nested expressions; use loops or helper functions",
            )
        )
        return out
    if out.nodes > limits.max_nodes:
        out.findings.append(
            _finding(
                "HS007",
                f"the script has {out.nodes} syntax-tree nodes (limit {limits.max_nodes})",
                "split the work into a smaller script; move data into input files",
            )
        )
        return out
    try:
        with quiet_warnings():
            # Some errors only appear when compiling: `return` outside a function, `break` outside a loop...
            pysource.compile_tree(tree, "<script>")
    except SyntaxError as exc:
        out.findings.append(
            _finding(
                "HS001",
                f"syntax error: {exc.msg}",
                "fix the code so that python3 can compile the file",
                line=exc.lineno or 0,
                col=(exc.offset or 1) - 1,
            )
        )
        return out
    except (RecursionError, MemoryError, ValueError):
        out.findings.append(_finding("HS005", "the script is too complex to compile", "simplify the code"))
        return out
    out.tree = tree
    return out
