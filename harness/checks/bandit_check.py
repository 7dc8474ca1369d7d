"""bandit, through its Python API, on the tree the syntax checker already parsed.

The container, not these checks, is the security boundary; bandit adds a broad second look
(weak hashes, unsafe archive extraction, SQL built from strings, shell use ...). Its plugins
and test set load once per process and are reused; each script gets a fresh node visitor, so
no file, no subprocess and no second parse are needed, and concurrent calls do not share
results. bandit's ``# nosec`` comments are ignored: a script's author does not get to silence
the gate.

Tests for libraries that the sandbox does not have (flask, django, jinja2, requests, paramiko,
yaml, torch ...) are not loaded: the AST policy refuses those imports, so they cannot fire.

Grading: HIGH severity with MEDIUM or HIGH confidence is an error, LOW severity is info, the rest
are warnings. A few tests are graded down because, inside a throwaway offline container, they
describe habits rather than dangers (see ``_GRADED``).
"""

from __future__ import annotations

import ast
import io
import logging
import threading
from typing import Any

from harness.checks.models import Finding, Severity
from harness.checks.syntax import quiet_warnings

__all__ = ["check_bandit", "warm_bandit"]

# test id -> (severity, hint): graded by what they mean inside the sandbox.
_GRADED: dict[str, tuple[Severity, str]] = {
    "B101": ("info", "assert is fine in scripts"),
    "B108": ("info", "the sandbox's /tmp is its own tmpfs; tempfile.mkdtemp() is still tidier"),
    "B311": ("info", "random is fine for anything but secrets (use the secrets module for those)"),
    "B324": ("warning", "pass usedforsecurity=False when the hash is not for security, or use hashlib.sha256"),
    # The AST policy's HP116 blocks this under strict; the sandbox's Python 3.11.2 has no filter="data".
    "B202": ("warning", "pass members=: only regular files and folders, no absolute names, no '..' parts"),
    # XML: the standard library's expat refuses entity-expansion bombs, and memory is capped anyway.
    **{
        f"B{n}": ("info", "fine for the script's own inputs; defusedxml is not available in the sandbox")
        for n in (*range(313, 321), *range(405, 412))
    },
}
_HINTS = {
    "B102": "write the code directly instead of executing strings",
    "B307": "parse data with json.loads or ast.literal_eval",
    "B105": "take secrets from the run's declared environment (os.environ), never from the source",
    "B106": "take secrets from the run's declared environment (os.environ), never from the source",
    "B107": "take secrets from the run's declared environment (os.environ), never from the source",
    "B110": "handle or log the exception instead of passing silently",
    "B112": "handle or log the exception instead of continuing silently",
    "B306": "use tempfile.mkstemp() or NamedTemporaryFile()",
    "B608": "use parameterised SQL with ? placeholders; never build SQL from values",
    "B310": "the sandbox has no network; read inputs from /input, or use hr.fetch(url) for a granted host",
}
# Tests for libraries the sandbox does not have (the AST policy refuses their imports), or for
# the network it does not have: they cannot fire on a script that passes the policy, and
# skipping them halves bandit's time on every Call node.
_NOT_IN_SANDBOX = (
    "B201 B501 B502 B503 B504 B505 B506 B507 B508 B509 B601 B610 B611 B614 B615 B701 B702 B703 B704 B113".split()
)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _fast_visitor(base: type[Any], interesting: frozenset[str]) -> type[Any]:
    """bandit's node visitor, minus its per-node bookkeeping for node types nothing looks at.

    ``BanditNodeVisitor.generic_visit`` builds a context, logs and runs an empty test list for
    every node (Name, Load, Attribute ...); this subclass still links every node to its parent
    and sibling (plugins read those) but only does the bookkeeping where a test or a
    ``visit_*`` method will use it. The issues found are the same; the time is about halved.
    """

    class FastVisitor(base):  # type: ignore[misc]
        def generic_visit(self, node: ast.AST) -> None:
            for _, value in ast.iter_fields(node):
                if isinstance(value, list):
                    last = len(value) - 1
                    for index, item in enumerate(value):
                        if isinstance(item, ast.AST):
                            item._bandit_sibling = value[index + 1] if index < last else None  # type: ignore[attr-defined]
                            item._bandit_parent = node  # type: ignore[attr-defined]
                            self._child(item)
                elif isinstance(value, ast.AST):
                    value._bandit_sibling = None  # type: ignore[attr-defined]
                    value._bandit_parent = node  # type: ignore[attr-defined]
                    self._child(value)

        def _child(self, item: ast.AST) -> None:
            if type(item).__name__ in interesting:
                if self.pre_visit(item):
                    self.visit(item)
                    self.generic_visit(item)
                    self.post_visit(item)
            else:
                self.generic_visit(item)

    return FastVisitor


def warm_bandit() -> None:
    """Load bandit's configuration and plugins once (the slow part: about a quarter of a second)."""
    if "tests" in _state:
        return
    with _lock:
        if "tests" in _state:
            return
        logging.getLogger("bandit").setLevel(logging.CRITICAL)  # its internal errors are not ours to print
        with quiet_warnings():  # deprecation notices from bandit's plugin loading
            from bandit.core import config, meta_ast, node_visitor, test_set

            conf = config.BanditConfig()
            tests = test_set.BanditTestSet(conf, {"exclude": _NOT_IN_SANDBOX})
        base = node_visitor.BanditNodeVisitor
        interesting = frozenset(tests.tests) | {n[len("visit_") :] for n in dir(base) if n.startswith("visit_")}
        _state["visitor"] = _fast_visitor(base, interesting)
        _state["meta"] = meta_ast.BanditMetaAst()
        _state["tests"] = tests


def _grade(issue: Any) -> tuple[Severity, str]:
    test_id = str(issue.test_id)
    if test_id in _GRADED:
        return _GRADED[test_id]
    hint = _HINTS.get(test_id, f"rewrite this without the pattern bandit {test_id} ({issue.test}) flags")
    if issue.severity == "LOW":
        return "info", hint
    if issue.severity == "HIGH" and issue.confidence in ("HIGH", "MEDIUM"):
        return "error", hint
    return "warning", hint


def check_bandit(tree: ast.Module, text: str) -> list[Finding]:
    """bandit's issues for a parsed script, graded into findings."""
    warm_bandit()
    data = text.encode("utf-8")
    with quiet_warnings():  # bandit's own deprecation notices are not findings
        from bandit.core import metrics

        stats = metrics.Metrics()
        stats.begin("<script>")
        visitor = _state["visitor"]("<script>", io.BytesIO(data), _state["meta"], _state["tests"], False, {}, stats)
        # BanditNodeVisitor.process() minus its ast.parse: walk our tree, then the whole-file tests.
        visitor.generic_visit(tree)
        visitor.context = {
            "file_data": visitor.fdata,
            "filename": visitor.fname,
            "lineno": 0,
            "linerange": [0, 1],
            "col_offset": 0,
        }
        visitor.update_scores(visitor.tester.run_tests(visitor.context, "File"))
    findings = []
    for issue in visitor.tester.results:
        severity, hint = _grade(issue)
        findings.append(
            Finding(
                code=f"HB{str(issue.test_id)[1:]}",
                severity=severity,
                line=max(int(issue.lineno or 0), 0),
                col=max(int(getattr(issue, "col_offset", 0) or 0), 0),
                checker="bandit",
                message=f"bandit {issue.test_id} ({str(issue.severity).lower()} severity, "
                f"{str(issue.confidence).lower()} confidence): {issue.text}",
                hint=hint,
            )
        )
    return findings
