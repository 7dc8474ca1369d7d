"""Imports follow the stage order (REVIEW.md §9): a module never imports a later layer.

foundation < dispatch < generation < checks < execution < report < history, runs < review
< pipeline (and the plan runner, the composition root) < app, testing < front-ends.

Type-only imports (under ``if TYPE_CHECKING:``) are not dependencies and are not counted. The
imports that break the order today are listed in ``KNOWN`` with the step that removes them; the
list may only shrink: a new upward import fails, and so does an entry that no longer happens.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "harness"

RANK = {
    "errors": 0,
    "settings": 0,
    "records": 0,
    "events": 0,
    "progress": 0,
    "safe_text": 0,
    "pysource": 0,
    "_version": 0,
    "runtime_data": 0,
    "limits": 0,
    "ports": 0,
    "provenance": 0,
    "dispatch": 1,
    "generation": 2,
    "checks": 3,
    "execution": 4,
    "assertions": 5,
    "report": 5,
    "history": 6,
    "runs": 6,
    "review": 7,
    "schedule": 8,
    "orchestrate": 8,
    "pipeline": 8,
    "services": 8,
    "app": 9,
    "testing": 9,
    "cli": 10,
    "server": 10,
    "client": 10,
    "mcp": 10,
    "worker": 10,
}

# Upward imports that exist today, each with the fix that ends it (REVIEW.md §9).
KNOWN = {
    ("harness.records", "harness.execution.limits"),  # Limits moves to harness/limits.py
    ("harness.settings", "harness.execution.limits"),  # same
    ("harness.settings", "harness.generation.scaffolds"),  # scaffolds_root becomes a setting
    ("harness.dispatch.analyse", "harness.history.store"),  # weighting moves to dispatch/evidence.py
    ("harness.generation.generate", "harness.checks"),  # generation returns a Draft; vetting is a stage after it
    ("harness.generation.generate", "harness.review.store"),  # the app layer saves the attempts
    ("harness.generation.prompts", "harness.checks"),  # findings reach the prompt as data
    ("harness.generation.scaffolds", "harness.assertions"),  # the Assertion model moves to the foundation
    ("harness.settings", "harness.generation.agents"),  # the roles file's default path becomes a setting
    ("harness.runs.retention", "harness.review.store"),  # reviews name their runs through a port
    ("harness.generation.agents", "harness.execution.backend"),  # AgentDeclined moves to a port
    ("harness.generation.scaffolds", "harness.execution.egress"),  # host parsing moves to the foundation
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        lines.add(sub.lineno)
    return lines


def _imports(tree: ast.Module) -> set[str]:
    skip = _type_only(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness."):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("harness."))
    return names


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def _upward() -> set[tuple[str, str]]:
    found = set()
    for name, tree in _modules().items():
        mine = _rank(name)
        if mine is None:
            continue  # harness/__init__ and __main__: the entry points see everything
        for target in _imports(tree):
            theirs = _rank(target)
            if theirs is not None and theirs > mine:
                found.add((name, target))
    return found


def test_every_package_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    tops -= {"__init__", "__main__", "__pycache__"}
    assert tops <= set(RANK), f"give these a layer: {sorted(tops - set(RANK))}"


def test_no_module_imports_a_later_layer() -> None:
    found = _upward()
    assert found - KNOWN == set(), "new upward imports"
    assert KNOWN - found == set(), "fixed: take these out of KNOWN"


def test_the_app_layer_imports_no_front_end() -> None:
    modules = _modules()
    for name, tree in modules.items():
        if name.startswith("harness.app"):
            fronts = {t for t in _imports(tree) if (_rank(t) or 0) >= RANK["cli"]}
            assert not fronts, f"{name} imports {fronts}"


def test_every_parse_goes_through_the_lock() -> None:
    """CPython 3.11's AST state is shared by threads (gh-106905): plan phases parse at once."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "pysource.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("parse", "literal_eval")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "ast"
            ) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "compile"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == [], "use harness.pysource.parse / compile_tree: " + ", ".join(offenders)
