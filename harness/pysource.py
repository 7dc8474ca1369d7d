"""Python source to syntax trees, one conversion at a time in this process.

CPython 3.11 (3.11.7 here) keeps the recursion depth of its AST conversions in state shared by
every thread (gh-106905): two threads parsing at once (a plan's phases are rendered and checked
in parallel) can fail with ``SystemError: AST constructor recursion depth mismatch``. Every parse
and every compile of a tree in harness goes through this lock; parsing is CPU-bound under the
GIL anyway, so nothing that could run in parallel is serialised.
"""

from __future__ import annotations

import ast
import threading
from types import CodeType

__all__ = ["compile_tree", "parse", "parse_expression"]

_LOCK = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` of a module, never in two threads at once."""
    with _LOCK:
        return ast.parse(source, filename=filename)


def parse_expression(source: str) -> ast.Expression:
    """``ast.parse(mode="eval")``, never in two threads at once."""
    with _LOCK:
        return ast.parse(source, mode="eval")


def compile_tree(tree: ast.Module, filename: str, mode: str = "exec") -> CodeType:
    """``compile(tree, ...)`` with ``dont_inherit``, never in two threads at once."""
    with _LOCK:
        return compile(tree, filename, mode, dont_inherit=True)
