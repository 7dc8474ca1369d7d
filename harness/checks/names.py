"""What the names in a script refer to: modules, imported objects, and values assigned once.

The container, not this module, is the security boundary. The AST policy needs to know that
``o`` in ``o = os; o.system("x")`` is the ``os`` module, that ``logging.os`` is ``os`` reached
through ``logging``, and that ``OUT`` in ``OUT = Path("/output")`` is a path. The analysis is
deliberately flow-insensitive: a name that is *ever* bound to a module is treated as that module
everywhere, which can only make the policy stricter.

Whether ``module.attr`` is itself a module is answered by importing the (allowed, standard
library) module on the host, once per name; modules that a policy grants on top of the built-in
allow-list are never imported here, and are judged by name instead.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import re
import types
from dataclasses import dataclass, field

from harness.checks.rules import (
    ALLOWED_MODULES,
    DATA_MODEL_DUNDERS,
    DENIED_MODULES,
    DUNDER_NAMES_READ,
    INTROSPECTION_ATTRS,
    SAFE_DUNDER_READS,
    STAR_IMPORTABLE,
    STDLIB_MODULES,
)

__all__ = ["Names", "checkable", "denial_reason", "module_allowed", "module_attribute", "scan_names", "star_names"]

_DUNDER_TOKEN = re.compile(r"__[A-Za-z]\w*")
# Dunder words a string may mention without spelling a way into Python's internals.
_HARMLESS_DUNDER_WORDS = SAFE_DUNDER_READS | DATA_MODEL_DUNDERS | DUNDER_NAMES_READ | {"__main__", "__pycache__"}


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def module_allowed(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when the dotted module ``name`` may be imported.

    A policy's explicit grant wins; otherwise the most specific entry decides, so ``urllib.parse``
    is allowed while ``urllib`` (and ``urllib.request``) is not.
    """
    prefixes = _prefixes(name)
    if any(p in extra for p in prefixes):
        return True
    for prefix in prefixes:
        if prefix in DENIED_MODULES:
            return False
        if prefix in ALLOWED_MODULES:
            return True
    return False


def denial_reason(name: str) -> str:
    """Why ``name`` may not be imported, in words an LLM can act on."""
    for prefix in _prefixes(name):
        if prefix in DENIED_MODULES:
            return DENIED_MODULES[prefix]
    if name.split(".")[0] not in STDLIB_MODULES:
        return "the sandbox has only the standard library; do the work with stdlib modules"
    return "it is not on the sandbox's allow-list; use the allowed standard-library modules"


# Standard-library packages that are not allowed themselves but hold allowed submodules.
_STDLIB_PARENTS = (
    frozenset(
        ".".join(name.split(".")[:n])
        for name in ALLOWED_MODULES
        for n in range(1, name.count(".") + 1)
        if name.split(".")[0] in STDLIB_MODULES
    )
    - ALLOWED_MODULES
)


def checkable(module: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when attributes of ``module`` need checking: it is allowed, or it is the parent of an allowed module."""
    return module in _STDLIB_PARENTS or module_allowed(module, extra)


def _host_resolvable(module: str) -> bool:
    # Only the built-in allow-list is imported on the host; granted extras are judged by name.
    return module.split(".")[0] in STDLIB_MODULES and module_allowed(module) and module != "__future__"


@functools.lru_cache(maxsize=4096)
def module_attribute(module: str, attr: str) -> str | None:
    """The module that ``module.attr`` names, if it names one (``os.path`` -> ``os.path``, ``logging.os`` -> ``os``)."""
    if module == "os" and attr == "path":
        return "os.path"  # posixpath by another name, and the documented spelling
    full = f"{module}.{attr}"
    if not _host_resolvable(module):
        if full in ALLOWED_MODULES or full in DENIED_MODULES:
            return full
        if module in _STDLIB_PARENTS:  # xml, urllib, concurrent: find the submodule without importing it
            try:
                spec = importlib.util.find_spec(full)
            except (ImportError, ValueError):
                spec = None
            if spec is not None:
                return spec.name
        # Judged by name: an attribute named like a stdlib module is taken to be that module.
        return attr if attr in STDLIB_MODULES and attr != module.rsplit(".", 1)[-1] else None
    try:
        loaded = importlib.import_module("posixpath" if module == "os.path" else module)
        value = getattr(loaded, attr, None)  # may run a module __getattr__ (concurrent.futures)
    except Exception:  # noqa: BLE001 - a module that does not import here has nothing to resolve
        return None
    if isinstance(value, types.ModuleType):
        return "os.path" if value.__name__ == "posixpath" else value.__name__
    if value is None and hasattr(loaded, "__path__"):  # an unimported submodule of a package
        try:
            spec = importlib.util.find_spec(f"{module}.{attr}")
        except (ImportError, ValueError):
            return None
        return spec.name if spec is not None else None
    return None


@dataclass
class Names:
    """The bindings a whole script makes, found before the policy walks it."""

    modules: dict[str, str] = field(default_factory=dict)  # local name -> module
    objects: dict[str, str] = field(default_factory=dict)  # local name -> dotted name of an imported object
    values: dict[str, list[ast.expr]] = field(default_factory=dict)  # name -> every value assigned to it
    stores: dict[str, int] = field(default_factory=dict)  # name -> how many times it is bound
    loops: dict[str, list[ast.expr]] = field(default_factory=dict)  # loop variable -> what it iterates over
    contexts: dict[str, list[ast.expr]] = field(default_factory=dict)  # `with X as name` -> X
    classes: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)  # names of every def in the script
    future_annotations: bool = False  # `from __future__ import annotations`: annotations stay strings
    spells_internals: bool = False  # a string literal names an internal attribute ("__globals__")
    imports_tarfile: bool = False
    imports_doctest: bool = False  # only doctest runs the `>>>` examples in a script's strings

    def merged(self, other: Names) -> Names:
        """These bindings plus ``other``'s (code embedded in the script, such as doctest examples)."""
        return Names(
            modules={**self.modules, **other.modules},
            objects={**self.objects, **other.objects},
            values={k: self.values.get(k, []) + other.values.get(k, []) for k in self.values.keys() | other.values},
            stores={k: self.stores.get(k, 0) + other.stores.get(k, 0) for k in self.stores.keys() | other.stores},
            loops={k: self.loops.get(k, []) + other.loops.get(k, []) for k in self.loops.keys() | other.loops},
            contexts={
                k: self.contexts.get(k, []) + other.contexts.get(k, []) for k in self.contexts.keys() | other.contexts
            },
            classes=self.classes | other.classes,
            functions=self.functions | other.functions,
            future_annotations=self.future_annotations,
            spells_internals=self.spells_internals or other.spells_internals,
            imports_tarfile=self.imports_tarfile or other.imports_tarfile,
            imports_doctest=self.imports_doctest or other.imports_doctest,
        )

    def assigned(self, name: str) -> ast.expr | None:
        """The value of a name bound exactly once, by an assignment."""
        values = self.values.get(name)
        if values is not None and len(values) == 1 and self.stores.get(name) == 1:
            return values[0]
        return None

    def strings(self, name: str) -> tuple[str, ...] | None:
        """Every string ``name`` can hold, when each binding is a string literal (``for f in ("a", "b")`` too)."""
        found: list[str] = []
        bindings = 0
        for value in self.values.get(name, []):
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                return None
            found.append(value.value)
            bindings += 1
        for iterable in self.loops.get(name, []):
            if not isinstance(iterable, ast.Tuple | ast.List | ast.Set):
                return None
            for element in iterable.elts:
                if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
                    return None
                found.append(element.value)
            bindings += 1
        if not bindings or bindings != self.stores.get(name):
            return None
        return tuple(found)

    def module_of(self, node: ast.AST) -> str | None:
        """The module an expression is (``os``, ``os.path``, an alias of either), if it is one."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.NamedExpr):  # (m := os).system
            return self.module_of(node.value)
        if isinstance(node, ast.Attribute):
            base = self.module_of(node.value)
            if base is None:
                return None
            target = module_attribute(base, node.attr)
            if target is not None and (target == f"{base}.{node.attr}" or target == "os.path"):
                return target
        return None


def _bind_import(names: Names, node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                names.modules[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                names.modules[root] = root
        return
    if node.level or not node.module:
        return
    for alias in node.names:
        if alias.name == "*":
            for public in star_names(node.module):
                names.objects[public] = f"{node.module}.{public}"
            continue
        local = alias.asname or alias.name
        target = module_attribute(node.module, alias.name)
        if target == f"{node.module}.{alias.name}" or target == "os.path":
            names.modules[local] = target
        elif target is None:
            names.objects[local] = f"{node.module}.{alias.name}"
        # a module reached through another one (`from logging import os`) is reported, not bound


@functools.lru_cache(maxsize=64)
def star_names(module: str) -> tuple[str, ...]:
    """The names ``from module import *`` binds, for the few modules where that is allowed (else none)."""
    if module not in STAR_IMPORTABLE:
        return ()
    loaded = importlib.import_module(module)
    public = getattr(loaded, "__all__", None)
    if public is None:
        public = [n for n in dir(loaded) if not n.startswith("_")]
    return tuple(sorted(public))


def _spells_internals(text: str | bytes) -> bool:
    """Whether a string literal names an internal attribute (``"__globals__"``, ``"f_back"``)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if text in INTROSPECTION_ATTRS:
        return True
    return any(token not in _HARMLESS_DUNDER_WORDS for token in _DUNDER_TOKEN.findall(text))


def scan_names(tree: ast.AST) -> Names:
    """Every import, assignment and class name in ``tree``, with module aliases followed."""
    names = Names()
    aliases: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            _bind_import(names, node)
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names.imports_tarfile |= "tarfile" in imported
            names.imports_doctest |= any(m == "doctest" or m.startswith("doctest.") for m in imported)
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                names.future_annotations |= any(a.name == "annotations" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            names.spells_internals = names.spells_internals or _spells_internals(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.functions.add(node.name)
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            names.contexts.setdefault(node.optional_vars.id, []).append(node.context_expr)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.stores[node.id] = names.stores.get(node.id, 0) + 1
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.values.setdefault(target.id, []).append(node.value)
                    aliases.append((target.id, node.value))
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            if isinstance(node.target, ast.Name):
                names.values.setdefault(node.target.id, []).append(node.value)
                aliases.append((node.target.id, node.value))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension) and isinstance(node.target, ast.Name):
            names.loops.setdefault(node.target.id, []).append(node.iter)
        elif isinstance(node, ast.ClassDef):
            names.classes.add(node.name)
    # `o = os` (and `p = o.path`) make more names for modules; follow chains to a fixed point.
    changed, rounds = True, 0
    while changed and rounds < 20:
        changed, rounds = False, rounds + 1
        for local, value in aliases:
            module = names.module_of(value)
            if module is not None and names.modules.get(local) != module:
                names.modules[local] = module
                changed = True
            elif isinstance(value, ast.Name) and value.id in names.objects and local not in names.objects:
                names.objects[local] = names.objects[value.id]
                changed = True
    return names
