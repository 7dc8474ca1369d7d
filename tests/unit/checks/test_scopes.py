"""Scope resolution for the AST policy: Python's own rules for which binding a name refers to."""

from __future__ import annotations

import ast

from harness.checks.scopes import build_scopes, resolve

SOURCE = """
import json
import time

def summary(time, items=json):
    total = 0
    for json in items:
        total += 1
    return [time for time in range(3)]

class Holder:
    help = 1
    def method(self):
        return help

def outer():
    value = 1
    def inner():
        nonlocal value
        value = time
    def reader():
        global counter
        counter = 1
    return inner, reader

alias = json
"""


def test_bindings_follow_pythons_scopes() -> None:
    tree = ast.parse(SOURCE)
    table = build_scopes(tree)
    module = table.of(tree)
    assert module is not None
    summary = table.of(tree.body[2])
    assert summary is not None and {"time", "items", "json", "total"} <= summary.bound
    assert resolve(summary, "time") is summary and "time" not in summary.module_bound
    assert resolve(summary, "json") is summary  # the loop variable, not the module
    holder_method = table.of(tree.body[3].body[1])
    assert holder_method is not None and resolve(holder_method, "help") is None  # class names are not visible
    outer = table.of(tree.body[4])
    assert outer is not None and "value" in outer.module_bound  # `value = time` in inner, through nonlocal
    assert "counter" in module.bound  # through `global`
    assert "alias" in module.module_bound and "json" in module.module_bound


def test_builtin_shadowing_needs_a_sure_binding() -> None:
    tree = ast.parse("def help():\n    pass\n\nhelp()\n\ntry:\n    vars = 1\nexcept Exception:\n    pass\nvars()\n")
    table = build_scopes(tree)
    module = table.of(tree)
    assert module is not None
    assert table.shadows_builtin(module, "help")
    assert not table.shadows_builtin(module, "vars")  # bound conditionally: may still be the built-in
