"""bandit, through its Python API, on the already-decoded script (no files, no subprocess).

bandit's ``# nosec`` comments are ignored: the script's author does not get to silence the gate.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from typing import Any

from harness.checks.models import Finding, Severity

__all__ = ["check_bandit"]

# Tests that say nothing useful about code that runs in a throwaway, offline container.
_QUIET = {
    "B101": "assert is fine in scripts",
    "B108": "the sandbox's temporary folder is its own tmpfs",
    "B311": "random is fine",
}
_manager: Any = None
_lock = threading.Lock()


def _get_manager() -> Any:
    global _manager
    if _manager is None:
        from bandit.core import config, manager

        logging.getLogger("bandit").setLevel(logging.ERROR)
        _manager = manager.BanditManager(config.BanditConfig(), "file", ignore_nosec=True)
    return _manager


def _severity(issue: Any) -> Severity:
    if issue.test_id in _QUIET or issue.severity == "LOW":
        return "info"
    if issue.severity == "HIGH" and issue.confidence in ("HIGH", "MEDIUM"):
        return "error"
    return "warning"


def check_bandit(text: str) -> list[Finding]:
    """bandit's issues for ``text``, mapped to findings by severity and confidence."""
    data = text.encode("utf-8")
    with _lock, warnings.catch_warnings():  # the manager accumulates results; one script at a time
        warnings.simplefilter("ignore")  # bandit's own deprecation notices are not findings
        mgr = _get_manager()
        mgr.results = []
        mgr.metrics.begin("<script>")
        mgr._execute_ast_visitor("<script>", io.BytesIO(data), data, {})
        issues = list(mgr.results)
        mgr.results = []
    return [
        Finding(
            code=f"HB-{issue.test_id}",
            severity=_severity(issue),
            line=int(issue.lineno or 0),
            col=int(getattr(issue, "col_offset", 0) or 0),
            checker="bandit",
            message=f"bandit {issue.test_id} ({issue.severity.lower()} severity, {issue.confidence.lower()} "
            f"confidence): {issue.text}",
            hint=_QUIET.get(issue.test_id, "rewrite this without the flagged call or pattern"),
        )
        for issue in issues
    ]
