"""Turning Python source into trees, safely from several threads at once.

CPython 3.11 keeps the AST constructor's recursion-depth counter in interpreter-wide state, so
two threads converting between source, ``ast`` objects and code at the same moment can fail with
``SystemError: AST constructor recursion depth mismatch`` (cpython gh-106905). A plan's phases
render and vet their scripts concurrently, so every parse and compile harness does goes through
one lock. Each takes milliseconds; the lock is never held while anything else runs.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType
from typing import Any

__all__ = ["compile_tree", "exclusive", "literal_eval", "parse", "parse_expression"]

_LOCK = threading.RLock()  # re-entrant: a locked caller may parse again (RestrictedPython does)


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` of a module under the process-wide lock."""
    with _LOCK:
        return ast.parse(source, filename=filename)


def parse_expression(source: str) -> ast.Expression:
    """``ast.parse(..., mode="eval")`` under the process-wide lock."""
    with _LOCK:
        return ast.parse(source, mode="eval")


def literal_eval(source: str | ast.AST) -> Any:
    """``ast.literal_eval`` (it parses) under the process-wide lock."""
    with _LOCK:
        return ast.literal_eval(source)


def compile_tree(tree: ast.Module, filename: str, mode: str = "exec") -> CodeType:
    """``compile`` of a tree under the process-wide lock, with the caller's future flags left out."""
    with _LOCK:
        return compile(tree, filename, mode, dont_inherit=True)


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the lock around a third-party call that parses or compiles (RestrictedPython)."""
    with _LOCK:
        yield
