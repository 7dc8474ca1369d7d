"""The AST policy: which modules, names, attributes and paths a sandboxed script may use.

This is a gate, not a sandbox: the container is the security boundary and assumes any code
may reach it. The policy turns away code that reaches for what an automation script never
needs (process control, sockets, frames, the import machinery, code built from strings), and
closes the known ways around such a list:

* names are checked as Python reads them: ``ast`` gives NFKC-normalised identifiers, so a
  full-width ``ｅｘｅｃ`` is ``exec`` here too; and in the scope Python reads them in
  (:mod:`harness.checks.scopes`), so a parameter named ``vars`` or a local ``time`` is not the
  built-in or the module;
* dunder attributes (``__class__``, ``__subclasses__``, ``__globals__`` ...) and frame or code
  attributes (``gi_frame``, ``f_back``, ``tb_frame``) are refused on every object;
* ``getattr`` and friends on a module need a literal attribute name; on the script's own
  objects a computed name is allowed where it cannot be a spelled-out internal
  (``_computed_attribute_allowed`` gives the rules);
* modules reached through allowed ones (``logging.os``, ``tempfile._os``), modules passed around
  as values, and module attributes assigned at run time are refused;
* format templates that read Python's internals (``'{0.__class__}'``) are refused where they
  are written, and ``string.Formatter`` is refused;
* doctest examples in string literals, and string annotations (which ``typing`` evaluates),
  are checked as code; annotations must be plain type expressions.

The tables live in :mod:`harness.checks.rules`, name resolution in :mod:`harness.checks.names`,
paths in :mod:`harness.checks.paths`, and code inside strings in :mod:`harness.checks.embedded`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks import paths
from harness.checks.embedded import (
    ANNOTATION_NODES,
    annotation_expression,
    doctest_examples,
    is_dunder,
    is_internal,
    unsafe_format_field,
)
from harness.checks.models import Finding, Severity
from harness.checks.names import (
    Names,
    checkable,
    denial_reason,
    module_allowed,
    module_attribute,
    scan_names,
)
from harness.checks.rules import (
    BANNED_BUILTINS,
    BANNED_METHODS,
    CODE_LOADING,
    DATA_MODEL_DUNDERS,
    DUNDER_NAMES_READ,
    DUNDER_NAMES_STORE,
    DYNAMIC_ATTRIBUTE_BUILTINS,
    INSTANCE_DUNDER_READS,
    INTROSPECTION_ATTRS,
    SAFE_DUNDER_READS,
    STAR_IMPORTABLE,
    STORABLE_MODULE_ATTRS,
    attribute_allowed,
    call_arguments_allowed,
)
from harness.checks.scopes import Scope, ScopeTable, build_scopes, resolve

__all__ = ["PolicyOptions", "check_policy"]

_DUNDER_HINTS = {
    "__class__": "use type(obj) (and type(obj).__name__)",
    "__dict__": "use explicit attributes or dataclasses.asdict(obj)",
    "__traceback__": "use traceback.format_exc() inside the except block",
}
# Adding to sys.argv can hand unittest.main a test name to import; removing (`del sys.argv[1]`,
# pop, remove) or reordering only drops or moves what the user passed, so old-style option
# parsing is allowed.
_LIST_MUTATORS = frozenset({"append", "extend", "insert"})
_ROT13 = frozenset({"rot13", "rot_13", "rot-13"})
_TEST_NAME = re.compile(r"^[A-Za-z]\w*(?:\.[A-Za-z]\w*)?$")
# Built-in classes whose __dict__ (or vars()) would hand out their dunder methods.
_BUILTIN_TYPES = frozenset(
    "type object int float complex str bytes bytearray list tuple dict set frozenset bool range slice "
    "memoryview property classmethod staticmethod super BaseException Exception".split()
)
# Dunder keys ordinary code looks up (`modules.get("__main__")`-style).
_HARMLESS_KEYS = frozenset({"__main__"})
# Calls that build a string from pieces: a getattr name made by one of them was written to be hidden.
_NAME_BUILDERS = frozenset(
    {"chr", "join", "format", "format_map", "decode", "replace", "encode", "bytes", "str", "dir", "vars", "reversed"}
)
# Works on the sandbox's Python 3.11.2, which has no extractall(filter="data") (added in 3.11.4).
_TAR_HINT = (
    "pick the members first: safe = [m for m in tar.getmembers() if (m.isfile() or m.isdir()) and "
    "not m.name.startswith('/') and '..' not in m.name.split('/')], then tar.extractall(dest, members=safe)"
)


@dataclass(frozen=True)
class PolicyOptions:
    """The parts of a gate policy the AST policy needs."""

    name: str = "strict"
    extra_modules: frozenset[str] = frozenset()
    allow_code_loading: bool = False


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _identifier_prefix(node: ast.AST) -> str:
    """The literal text a computed string starts with (f"handle_{x}" -> 'handle_')."""
    if isinstance(node, ast.JoinedStr) and node.values:
        return _literal(node.values[0]) or ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) or _identifier_prefix(node.left)
    return ""


class _Policy(ast.NodeVisitor):
    def __init__(
        self,
        names: Names,
        options: PolicyOptions,
        table: ScopeTable,
        line_offset: int = 0,
        prefix: str = "",
        depth: int = 0,
    ) -> None:
        self.names = names
        self.options = options
        self.table = table
        self.line_offset = line_offset
        self.prefix = prefix
        self.depth = depth
        self.findings: list[Finding] = []
        self.parent: ast.AST | None = None
        self.scopes: list[str] = ["module"]
        self.scope: Scope = next(iter(table.scopes.values())) if table.scopes else Scope("module", None)
        self.lazy_annotations = False  # inside an annotation Python never evaluates (or keeps as a string)

    # -- plumbing --------------------------------------------------------------------------------
    def nested(self, line_offset: int, prefix: str, tree: ast.AST | None = None) -> _Policy:
        """A visitor for code embedded in this script (string annotations, doctest examples)."""
        table = build_scopes(tree) if tree is not None else self.table
        nested = _Policy(self.names, self.options, table, self.line_offset + line_offset, prefix, self.depth + 1)
        if tree is None:
            nested.scope = self.scope
        return nested

    def visit_child(self, parent: ast.AST, child: ast.AST | None) -> None:
        """Visit ``child`` as a child of ``parent`` (for nodes whose parts are visited in different scopes)."""
        if child is None:
            return
        outer, self.parent = self.parent, parent
        self.visit(child)
        self.parent = outer

    def binding(self, name: str) -> Scope | None:
        """The scope that binds ``name`` where it is read (None: a built-in, or unbound)."""
        return resolve(self.scope, name)

    def is_builtin(self, name: str) -> bool:
        """True when ``name`` here is Python's built-in: nothing binds it, or only an alias does (``vars = vars``)."""
        if name in self.names.objects or name in self.names.modules:
            return False  # an import binds it (and the import itself is judged)
        scope = self.binding(name)
        return scope is None or not self.table.shadows_builtin(scope, name)

    def is_module_name(self, name: str) -> bool:
        """True when ``name`` read here can be a module (scope-aware: a local non-module binding is not)."""
        if name not in self.names.modules:
            return False
        scope = self.binding(name)
        return scope is None or scope.kind == "module" or name in scope.module_bound

    def generic_visit(self, node: ast.AST) -> None:
        outer, self.parent = self.parent, node
        for child in ast.iter_child_nodes(node):
            self.visit(child)
        self.parent = outer

    def add(self, node: ast.AST, code: str, message: str, hint: str, severity: Severity = "error") -> None:
        self.findings.append(
            Finding(
                code=code,
                severity=severity,
                line=getattr(node, "lineno", 0) + self.line_offset,
                col=getattr(node, "col_offset", 0),
                message=self.prefix + message,
                hint=hint,
                checker="policy",
            )
        )

    def code_loading(self, node: ast.AST, what: str, hint: str) -> None:
        if self.options.allow_code_loading:
            message = f"{what} loads code written at run time (allowed under the {self.options.name} policy)"
            self.add(node, "HP103", message, hint, severity="info")
        else:
            self.add(node, "HP103", f"{what} loads code written at run time, which the checks never saw", hint)

    def qualname(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to: ``open``, ``os.path.join``, ``operator.attrgetter``."""
        if isinstance(node, ast.Name):
            return self.names.modules.get(node.id) or self.names.objects.get(node.id) or node.id
        if isinstance(node, ast.Attribute):
            root: ast.expr = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and (root.id in self.names.modules or root.id in self.names.objects):
                base = self.qualname(node.value)
                return f"{base}.{node.attr}" if base else None
        return None

    def assigned(self, name: str) -> ast.expr | None:
        """The value of a name bound exactly once (for path resolution)."""
        return self.names.assigned(name)

    def context(self, name: str) -> ast.expr | None:
        """What ``with X as name`` entered, when that is the name's only binding."""
        entered = self.names.contexts.get(name, [])
        return entered[0] if len(entered) == 1 and self.names.stores.get(name) == 1 else None

    def _is_call_target(self, node: ast.AST) -> bool:
        return isinstance(self.parent, ast.Call) and self.parent.func is node

    # -- imports ---------------------------------------------------------------------------------
    def _check_import(self, node: ast.AST, name: str) -> None:
        if not module_allowed(name, self.options.extra_modules):
            self.add(node, "HP101", f"import of {name!r} is not allowed", f"do without {name}: {denial_reason(name)}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)
            if alias.asname and is_dunder(alias.asname):
                self.add(node, "HP105", f"imports a module as {alias.asname}", "import it under an ordinary name")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            hint = "scripts are single files; import standard-library modules"
            self.add(node, "HP101", "relative imports are not allowed", hint)
            return
        module = node.module or ""
        allowed = module_allowed(module, self.options.extra_modules)
        if allowed or not self._submodules_only(node, module):
            self._check_import(node, module)
        for alias in node.names:
            if alias.name == "*":
                if not (allowed and module in STAR_IMPORTABLE):
                    self.add(
                        node,
                        "HP112",
                        f"`from {module} import *` hides which names are used",
                        f"import the names you need: from {module} import a, b",
                    )
            elif allowed and module != "__future__":
                self._check_module_attribute(node, module, alias.name, store=False)

    def _submodules_only(self, node: ast.ImportFrom, module: str) -> bool:
        """``from concurrent import futures``: each name is an allowed submodule of a package that is not.

        The same import as ``import concurrent.futures``, which is allowed; the package itself
        (``from concurrent import *``, or a name that is not an allowed submodule) is still refused.
        """
        if not checkable(module, self.options.extra_modules) or module_allowed(module, self.options.extra_modules):
            return False
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if alias.name == "*" or module_attribute(module, alias.name) != full:
                return False
            if not module_allowed(full, self.options.extra_modules):
                return False
        return True

    # -- modules and their attributes ------------------------------------------------------------
    def _check_module_attribute(self, node: ast.AST, module: str, attr: str, *, store: bool) -> None:
        full = f"{module}.{attr}"
        if full in CODE_LOADING:
            self.code_loading(node, full, CODE_LOADING[full])
            return
        if store and full not in STORABLE_MODULE_ATTRS:
            self.add(node, "HP109", f"assigns to {full}, changing a module at run time", "leave modules unchanged")
            return
        allowed, why = attribute_allowed(module, attr)
        if not allowed:
            self.add(node, "HP103", f"{full} is not allowed", why)
            return
        if is_dunder(attr):
            return  # judged as a dunder attribute
        if attr.startswith("_"):
            self.add(node, "HP109", f"{full} is a private internal of {module}", f"use {module}'s public API")
            return
        target = module_attribute(module, attr)
        if target is None:
            return  # a function, class or constant
        if target != full and target != "os.path":
            self.add(
                node,
                "HP109",
                f"{full} reaches the module {target!r} through {module}",
                f"import {target} directly if it is allowed; never reach a module through another one",
            )
        elif not module_allowed(target, self.options.extra_modules):
            self.add(node, "HP101", f"the module {target!r} is not allowed", denial_reason(target))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        store = not isinstance(node.ctx, ast.Load)
        if is_dunder(attr):
            if store:
                self.add(node, "HP104", f"assigns the attribute {attr}", "set ordinary attributes only")
            elif attr not in SAFE_DUNDER_READS and not self._plain_setattr(node) and not self._instance_read(node):
                hint = _DUNDER_HINTS.get(attr, "dunder attributes walk Python's internals; use the public API")
                self.add(node, "HP104", f"access to {attr} is not allowed", hint)
        elif attr in INTROSPECTION_ATTRS:
            message = f"access to {attr} (frames, code, globals) is not allowed"
            self.add(node, "HP108", message, "do not inspect frames or code objects")
        elif attr in BANNED_METHODS:
            self.add(node, "HP103", f".{attr}() is not allowed", BANNED_METHODS[attr])
        elif attr in ("loadTestsFromName", "loadTestsFromNames"):
            self.code_loading(node, f".{attr}()", CODE_LOADING[attr])
        elif attr == "discover" and (self.qualname(node.value) or "").startswith("unittest"):
            self.code_loading(node, "unittest discovery", CODE_LOADING["discover"])
        module = self.names.module_of(node.value)
        if module is not None:
            if checkable(module, self.options.extra_modules):  # else its import is already reported
                self._check_module_attribute(node, module, attr, store=store)
        elif attr in _LIST_MUTATORS and self.qualname(node.value) == "sys.argv":
            self.add(node, "HP109", f"sys.argv.{attr}() changes the script's arguments", "copy sys.argv[1:] instead")
        self.generic_visit(node)

    def _instance_read(self, node: ast.Attribute) -> bool:
        """``obj.__class__`` and ``obj.__dict__`` read from a value that is not a module.

        ``obj.__class__`` is ``type(obj)``, which is allowed; the steps that make it dangerous
        (``__bases__``, ``__mro__``, ``__subclasses__``, ``__globals__``) are refused on their own.
        An instance's ``__dict__`` holds what its attributes hold, readable by name anyway. A
        module's ``__dict__`` is its globals (with ``__builtins__``) and a class's holds its dunder
        methods: both stay refused.
        """
        if node.attr not in INSTANCE_DUNDER_READS:
            return False
        if node.attr == "__dict__" and self._may_be_class(node.value):
            return False
        return self.names.module_of(node.value) is None and not self._may_be_module(node.value)

    def _may_be_class(self, node: ast.expr) -> bool:
        """A visible class: a built-in type, a class of the script, ``type(x)`` or ``x.__class__``.

        A class's ``__dict__`` holds its dunder methods (``type.__dict__['__subclasses__']``), the
        first step of the classic walk to every class in the interpreter; an instance's does not.
        """
        if isinstance(node, ast.Name):
            return node.id in self.names.classes or (node.id in _BUILTIN_TYPES and self.is_builtin(node.id))
        if isinstance(node, ast.Attribute):
            return node.attr == "__class__"
        if isinstance(node, ast.Call):
            return isinstance(node.func, ast.Name) and node.func.id == "type"
        return False

    def _plain_setattr(self, node: ast.Attribute) -> bool:
        """``object.__setattr__(self, "name", v)`` in a frozen dataclass: a literal, ordinary name."""
        call = self.parent
        if node.attr != "__setattr__" or not (isinstance(call, ast.Call) and call.func is node):
            return False
        position = 0 if isinstance(node.value, ast.Call) else 1  # super().__setattr__("x", v)
        name = _literal(call.args[position]) if len(call.args) > position else None
        return name is not None and name.isidentifier() and not name.startswith("_")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Store) and self.qualname(node.value) == "sys.argv":
            self.add(node, "HP109", "assigns into sys.argv", "copy sys.argv[1:] into a list of your own")
        self._check_internal_key(node, node.slice)
        self.generic_visit(node)

    def _check_internal_key(self, node: ast.AST, key: ast.expr | None) -> None:
        """``d['__builtins__']``, ``d.get('__subclasses__')``: a namespace read by an internal name.

        Only namespaces (globals, class and module dicts) have such keys, so an ordinary
        script never spells one; the attribute rules would refuse the same read written with a dot.
        """
        text = _literal(key)
        if text is not None and is_dunder(text) and is_internal(text) and text not in _HARMLESS_KEYS:
            self.add(node, "HP104", f"reads the key {text!r}, an internal name", "use the object's public API")

    # -- names -----------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        load = isinstance(node.ctx, ast.Load)
        # Scope-aware: the script's own `help` function or a parameter named `vars` is not the built-in.
        builtin = load and self.is_builtin(name)
        if name in BANNED_BUILTINS and builtin and not self._harmless_builtin_call(node):
            self.add(node, "HP102", f"{name} is not allowed", BANNED_BUILTINS[name])
        elif name in DYNAMIC_ATTRIBUTE_BUILTINS and builtin and not self._is_call_target(node):
            self.add(node, "HP106", f"{name} is used as a value", f"call {name}(obj, 'literal_name') directly")
        elif is_dunder(name):
            self._check_dunder_name(node)
        if load and self.is_module_name(name):
            self._check_module_value(node)
        elif self.names.objects.get(name) in ("operator.attrgetter", "operator.methodcaller"):
            if not self._is_call_target(node):
                self.add(node, "HP106", f"{name} is used as a value", "call it directly with a literal name")

    def _check_dunder_name(self, node: ast.Name) -> None:
        name = node.id
        allowed = DUNDER_NAMES_READ if isinstance(node.ctx, ast.Load) else DUNDER_NAMES_STORE
        if name in allowed or (self.scopes[-1] == "class" and name in DATA_MODEL_DUNDERS):
            return  # `__radd__ = __add__` in a class body is fine too
        self.add(node, "HP105", f"the name {name} is not allowed", "use ordinary names and built-in functions")

    def _harmless_builtin_call(self, node: ast.Name) -> bool:
        """``vars(obj)`` on a value that is not a module: the instance's attributes, readable by name anyway.

        ``vars()`` with no argument is the caller's namespace, and ``vars(module)`` is the module's
        globals (``__builtins__`` included): both stay refused.
        """
        call = self.parent
        if node.id != "vars" or not (isinstance(call, ast.Call) and call.func is node):
            return False
        if len(call.args) != 1 or call.keywords or isinstance(call.args[0], ast.Starred):
            return False
        if self._may_be_class(call.args[0]):
            return False
        return self.names.module_of(call.args[0]) is None and not self._may_be_module(call.args[0])

    def _may_be_module(self, node: ast.expr) -> bool:
        """A module name (scope-aware), or an expression that hands one back (``a or os``)."""
        if isinstance(node, ast.Name):
            return self.is_module_name(node.id)
        if isinstance(node, ast.BoolOp):
            return any(self._may_be_module(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self._may_be_module(node.body) or self._may_be_module(node.orelse)
        return False

    def _check_module_value(self, node: ast.Name) -> None:
        parent = self.parent
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return
        if isinstance(parent, ast.Assign | ast.AnnAssign | ast.NamedExpr) and parent.value is node:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            # Another name for the module, followed by scan_names; but not in a class body, where
            # the name becomes a class attribute (A.m.system) that no name-based rule follows.
            if all(isinstance(t, ast.Name) for t in targets) and self.scope.kind != "class":
                return
        if self._harmless_module_use(node, parent):
            return
        self.add(
            node,
            "HP109",
            f"the module {self.names.modules[node.id]} is used as a value",
            "call the module's functions directly instead of passing the module around",
        )

    def _harmless_module_use(self, node: ast.Name, parent: ast.AST | None) -> bool:
        """Uses of a module that cannot hand it to other code.

        * ``x is None`` / ``x is not None``: identity never calls a method, and the result is a bool
          (``==`` is not here: the other operand's ``__eq__`` would receive the module);
        * a truth test (``if x:``, ``not x``): modules have no ``__bool__``, the answer is True;
        * ``hasattr(os, "fsdecode")``, ``getattr(os, "fsdecode", None)``: a literal attribute name,
          judged exactly like ``os.fsdecode`` (``_check_literal_attribute``);
        * an annotation Python never evaluates (a local variable's) or keeps as a string
          (``from __future__ import annotations``); an evaluated one would reach the module
          through ``__annotations__`` or ``dataclasses.fields``.

        The optional-import fallback (``try: import x`` / ``except ImportError: x = None`` ...
        ``if x is None``) is made of exactly these.
        """
        if isinstance(parent, ast.Compare):
            return all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops)
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            return True
        if isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert) and parent.test is node:
            return True
        if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
            func = parent.func
            if isinstance(func, ast.Name) and func.id in ("hasattr", "getattr") and self.is_builtin(func.id):
                second = parent.args[1] if len(parent.args) > 1 else None
                known = _literal(second) is not None or (
                    isinstance(second, ast.Name) and self.names.strings(second.id) is not None
                )
                return known and not parent.keywords
        return self.lazy_annotations

    # -- definitions and annotations ------------------------------------------------------------
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if is_dunder(node.name) and node.name not in DATA_MODEL_DUNDERS:
            self.add(node, "HP105", f"defines {node.name}, which is not a special method", "use an ordinary name")
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
        annotations = [arg.annotation for arg in every if arg is not None and arg.annotation is not None]
        if node.returns is not None:
            annotations.append(node.returns)
        for annotation in annotations:
            self._check_annotation(annotation)
        # Decorators, defaults and annotations are evaluated where the def is, not inside it.
        for decorator in node.decorator_list:
            self.visit_child(node, decorator)
        self._visit_defaults(node, arguments)
        for annotation in annotations:
            self._visit_annotation(node, annotation, lazy=self.names.future_annotations)
        self._enter(node, "function", node.body)

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def _visit_defaults(self, node: ast.AST, arguments: ast.arguments) -> None:
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            self.visit_child(node, default)

    def _visit_annotation(self, parent: ast.AST, annotation: ast.expr, *, lazy: bool) -> None:
        outer, self.lazy_annotations = self.lazy_annotations, lazy
        self.visit_child(parent, annotation)
        self.lazy_annotations = outer

    def _enter(self, node: ast.AST, kind: str, body: Sequence[ast.AST]) -> None:
        """Visit ``body`` inside the scope ``node`` opens."""
        outer_scope = self.scope
        self.scope = self.table.of(node) or Scope(kind, outer_scope)
        self.scopes.append("class" if kind == "class" else "function")
        for child in body:
            self.visit_child(node, child)
        self.scopes.pop()
        self.scope = outer_scope

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_defaults(node, node.args)
        self._enter(node, "function", [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if is_dunder(node.name):
            self.add(node, "HP105", f"defines the class {node.name}", "use an ordinary class name")
        for expr in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit_child(node, expr)
        self._enter(node, "class", node.body)

    def _visit_comprehension(self, node: ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp) -> None:
        first, *rest = node.generators
        self.visit_child(first, first.iter)  # the first iterable is evaluated outside the comprehension
        parts: list[ast.AST] = [first.target, *first.ifs]
        for generator in rest:
            parts += [generator.target, generator.iter, *generator.ifs]
        parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self._enter(node, "comprehension", parts)

    visit_GeneratorExp = _visit_comprehension
    visit_ListComp = _visit_comprehension
    visit_SetComp = _visit_comprehension
    visit_DictComp = _visit_comprehension

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.visit_child(node, node.target)
        if node.value is not None:
            self.visit_child(node, node.value)
        # Python never evaluates the annotation of a local variable (PEP 526).
        local = self.scope.kind == "function" and isinstance(node.target, ast.Name)
        self._visit_annotation(node, node.annotation, lazy=local or self.names.future_annotations)

    def _check_annotation(self, annotation: ast.expr) -> None:
        """Annotations are types; typing.get_type_hints and singledispatch evaluate their strings as code."""
        for sub in ast.walk(annotation):
            if not isinstance(sub, ANNOTATION_NODES):
                self.add(
                    sub,
                    "HP115",
                    f"the annotation contains a {type(sub).__name__} expression; annotations must be plain types",
                    "annotate with classes such as int, list[str] or 'MyClass'",
                )
                return
            if isinstance(sub, ast.BinOp) and not isinstance(sub.op, ast.BitOr):
                self.add(sub, "HP115", "the annotation computes a value", "annotate with classes joined by |")
                return
            text = _literal(sub)
            inner = annotation_expression(text) if text is not None and self.depth < 3 else None
            if inner is not None:
                nested = self.nested(getattr(sub, "lineno", 1) - 1, self.prefix)
                nested._check_annotation(inner)
                nested.visit(inner)
                self.findings.extend(nested.findings)

    # -- calls -----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualname(node.func)
        if name in DYNAMIC_ATTRIBUTE_BUILTINS and self.is_builtin(name):
            self._check_dynamic_attribute(node, name)
        elif name == "operator.attrgetter":
            for arg in node.args:
                self._check_attribute_names(node, arg, "attrgetter", dotted=True)
        elif name == "operator.methodcaller":
            first = node.args[0] if node.args else None
            self._check_attribute_names(node, first, "methodcaller", dotted=False)
        elif name == "type" and len(node.args) == 3:
            self.add(node, "HP113", "type() with three arguments builds a class at run time", "write a class statement")
        elif name == "unittest.main":
            self._check_unittest_main(node)
        elif name is not None:
            problem = call_arguments_allowed(name, node, self._callable_argument)
            if problem is not None:
                self.add(node, "HP103", problem[0], problem[1])
        if isinstance(node.func, ast.Attribute) and node.func.attr == "extractall":
            self._check_extractall(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "format_map"):
            self._check_format_receiver(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop", "setdefault") and node.args:
            self._check_internal_key(node, node.args[0])
        for value in [*node.args, *(k.value for k in node.keywords)]:
            text = _literal(value)
            if text is not None and text.lower() in _ROT13:
                self.add(node, "HP114", "rot13 hides what the code says", "write strings plainly")
        self._check_paths(node, name)
        self.generic_visit(node)

    def _check_dynamic_attribute(self, node: ast.Call, name: str) -> None:
        if len(node.args) < 2 or any(isinstance(a, ast.Starred) for a in node.args[:2]) or node.keywords:
            self.add(node, "HP106", f"{name}() with unpacked arguments", f"call {name}(obj, 'literal_name') directly")
            return
        target = node.args[1]
        literal = _literal(target)
        if literal is None and isinstance(target, ast.Name):
            known = self.names.strings(target.id)  # `for field in ("a", "b"): getattr(obj, field)`
            if known is not None:
                for value in known:
                    self._check_literal_attribute(node, name, value)
                return
        if literal is None:
            if not self._computed_attribute_allowed(node, name, target):
                # hasattr only answers True or False: a warning, which blocks under strict.
                severity: Severity = "warning" if name == "hasattr" else "error"
                self.add(
                    node,
                    "HP106",
                    f"{name}() with a computed attribute name",
                    f"use a literal name, e.g. {name}(obj, 'field'), a literal prefix (f'handle_{{kind}}'), or a dict",
                    severity=severity,
                )
            return
        self._check_literal_attribute(node, name, literal)

    def _computed_attribute_allowed(self, node: ast.Call, name: str, target: ast.expr) -> bool:
        """Whether ``name(obj, <computed>)`` may run: decided by what ``obj`` is and where the name comes from.

        * on a module, never: that is ``getattr(os, "sys" + "tem")``;
        * ``hasattr`` on anything else: it only answers True or False;
        * a literal identifier prefix (``getattr(self, f"handle_{kind}")``) cannot reach a dunder;
        * ``setattr``/``delattr`` on an instance (``setattr(self, key, value)`` in a config
          loader): it stores values the script already holds, and special methods are looked up
          on the type, so an instance attribute named like one changes nothing. On a class of the
          script it would define behaviour (``__init_subclass__``, descriptors): refused;
        * ``getattr`` on an instance, when the name comes from data (a parameter, a loop over a
          config's keys, ``field.name``) rather than from text the script spells: the known ways to
          build a name are refused (literals, concatenation, f-strings, ``chr``, ``join``,
          ``dir()``), and so is any computed ``getattr`` in a script that spells an internal name
          (``"__globals__"``) anywhere. A name that arrives inside the data at run time is not
          seen here; the container is the boundary.
        """
        receiver = node.args[0]
        if self.names.module_of(receiver) is not None or self._may_be_module(receiver):
            return False
        if name == "hasattr":
            return True
        prefix = _identifier_prefix(target)
        if prefix[:1].isalpha() and prefix.replace("_", "a").isalnum():
            return True
        if isinstance(receiver, ast.Name) and receiver.id in self.names.classes:
            return False
        if name in ("setattr", "delattr"):
            return True
        return self._from_data(target) and not self.names.spells_internals

    def _from_data(self, target: ast.expr, depth: int = 0) -> bool:
        """The name is taken from data, not built from text written in the script."""
        if depth > 4:
            return False
        for sub in ast.walk(target):
            if isinstance(sub, ast.Constant | ast.JoinedStr | ast.BinOp | ast.Slice | ast.Lambda):
                return False
            if isinstance(sub, ast.Call):
                func = sub.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in _NAME_BUILDERS:
                    return False
        if isinstance(target, ast.Name):
            sources = self.names.values.get(target.id, []) + self.names.loops.get(target.id, [])
            return all(self._from_data(source, depth + 1) for source in sources)
        return True

    def _callable_argument(self, node: ast.expr | None) -> bool:
        """A function the script defined, a lambda, or a partial of one: code the checks have seen."""
        if node is None:
            return True
        if isinstance(node, ast.Lambda):
            return True
        if isinstance(node, ast.Name):
            if node.id in self.names.values:
                return False
            loops = self.names.loops.get(node.id, [])
            if loops:  # `for func in (a, b): timeit(func)`
                return all(
                    isinstance(it, ast.Tuple | ast.List) and all(self._callable_argument(e) for e in it.elts)
                    for it in loops
                ) and self.names.stores.get(node.id) == len(loops)
            return node.id in self.names.functions
        if isinstance(node, ast.Attribute):
            # A method of the script's own object (self.step); a string is never written this way.
            return isinstance(node.value, ast.Name) and node.attr in self.names.functions
        if isinstance(node, ast.Call) and self.qualname(node.func) == "functools.partial" and node.args:
            return self._callable_argument(node.args[0])
        return False

    def _check_extractall(self, node: ast.Call) -> None:
        """An unfiltered ``TarFile.extractall``: members can be absolute paths, ``..`` or links out of dest."""
        if not isinstance(node.func, ast.Attribute) or not self.names.imports_tarfile or self._is_zip(node.func):
            return
        if any(k.arg in ("members", "filter") for k in node.keywords) or len(node.args) >= 2:
            return
        # A warning from the policy checker: it blocks under strict and is advice under standard.
        self.add(
            node,
            "HP116",
            "tarfile extractall() without checking the members: a member can be an absolute path, "
            "climb out with '..' or be a link or a device",
            _TAR_HINT,
            severity="warning",
        )

    def _is_zip(self, func: ast.Attribute) -> bool:
        receiver = func.value
        if isinstance(receiver, ast.Name):
            sources = self.names.values.get(receiver.id, []) + self.names.contexts.get(receiver.id, [])
            return bool(sources) and all(
                isinstance(v, ast.Call) and (self.qualname(v.func) or "").startswith("zipfile.") for v in sources
            )
        return isinstance(receiver, ast.Call) and (self.qualname(receiver.func) or "").startswith("zipfile.")

    def _check_literal_attribute(self, node: ast.Call, name: str, literal: str) -> None:
        store = name in ("setattr", "delattr")
        module = self.names.module_of(node.args[0])
        if is_dunder(literal) and (store or literal not in SAFE_DUNDER_READS):
            self.add(node, "HP104", f"{name}() of {literal!r} is not allowed", "use the object's public API")
        elif literal in INTROSPECTION_ATTRS:
            self.add(node, "HP108", f"{name}() of {literal!r} (frames, code) is not allowed", "do not inspect frames")
        elif literal in BANNED_METHODS:
            self.add(node, "HP103", f"{name}() of {literal!r} is not allowed", BANNED_METHODS[literal])
        elif module is not None:
            self._check_module_attribute(node, module, literal, store=store)

    def _check_attribute_names(self, node: ast.Call, arg: ast.expr | None, what: str, *, dotted: bool) -> None:
        literal = _literal(arg)
        known: tuple[str, ...] | None = (literal,) if literal is not None else None
        if known is None and isinstance(arg, ast.Name):
            known = self.names.strings(arg.id)
        if known is None:
            self.add(node, "HP106", f"{what}() with a computed attribute name", "use a literal attribute name")
            return
        for text in known:
            if any(is_internal(part) for part in (text.split(".") if dotted else [text])):
                self.add(node, "HP104", f"{what}() of {text!r} is not allowed", "use the object's public API")
                return

    def _check_unittest_main(self, node: ast.Call) -> None:
        def argument(position: int, keyword: str) -> ast.expr | None:
            return paths.argument(node, position, keyword)

        module = argument(0, "module")
        if (
            module is not None
            and _literal(module) != "__main__"
            and not (isinstance(module, ast.Constant) and module.value is None)
        ):
            self.code_loading(node, "unittest.main(module=...)", "call unittest.main() for the tests in this script")
        default = argument(1, "defaultTest")
        if default is not None:
            items = default.elts if isinstance(default, ast.List | ast.Tuple) else [default]
            for item in items:
                text = _literal(item)
                if not (text and _TEST_NAME.match(text) and text.split(".")[0] in self.names.classes):
                    self.code_loading(node, "unittest.main(defaultTest=...)", "name TestCase classes of this script")
                    break
        argv = argument(2, "argv")
        if argv is not None and not self._harmless_argv(argv):
            self.code_loading(node, "unittest.main(argv=...)", "pass argv=[sys.argv[0]] or options starting with '-'")
        if argument(4, "testLoader") is not None:
            self.code_loading(node, "unittest.main(testLoader=...)", "use the default test loader")

    def _harmless_argv(self, argv: ast.expr) -> bool:
        if isinstance(argv, ast.List | ast.Tuple):
            return all((_literal(e) or "").startswith("-") for e in argv.elts[1:])  # options only, no test names
        if isinstance(argv, ast.Subscript) and isinstance(argv.slice, ast.Slice) and argv.slice.lower is None:
            upper = argv.slice.upper
            return isinstance(upper, ast.Constant) and upper.value in (0, 1)
        return False

    def _check_format_receiver(self, node: ast.Call) -> None:
        func = node.func
        assert isinstance(func, ast.Attribute)
        template: ast.expr | None = func.value
        if isinstance(template, ast.Name) and template.id == "str":
            template = node.args[0] if node.args else None
        if template is None or _literal(template) is not None:
            return  # literal templates are judged where they are written (visit_Constant)
        if isinstance(template, ast.Name) and self.names.strings(template.id) is not None:
            return  # bound only to literals, which visit_Constant judges
        self.add(
            node,
            "HP107",
            "the format template is computed at run time, so its fields cannot be checked",
            "format with a literal template or an f-string",
            severity="info",
        )

    def _check_paths(self, node: ast.Call, name: str | None) -> None:
        for code, message in paths.call_path_problems(node, name, self):
            hint = (
                "read inputs from /input and write results under /output"
                if code == "HP111"
                else "write results under /output (scratch files under /tmp)"
            )
            self.add(node, code, message, hint)

    # -- literals ----------------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if not isinstance(value, str):
            return
        field = unsafe_format_field(value)
        if field is not None:
            self.add(
                node,
                "HP107",
                f"the format field {{{field}}} reads Python's internals",
                "format plain values: '{}'.format(value) or an f-string",
            )
        if self.depth < 2:
            self._check_doctest(node, value)

    def _check_doctest(self, node: ast.Constant, text: str) -> None:
        """doctest.testmod() runs the examples in docstrings: they are code, so check them as code.

        Only doctest runs them, so in a script that never imports doctest they are documentation
        (``>>> import numpy as np`` in a usage example is not an import).
        """
        if not self.names.imports_doctest:
            return
        parsed = doctest_examples(text)
        if not parsed:
            return
        # The examples run in the script's globals, plus whatever earlier examples imported.
        names = self.names.merged(scan_names(ast.Module(body=[s for _, t in parsed for s in t.body], type_ignores=[])))
        for lineno, tree in parsed:
            nested = self.nested(getattr(node, "lineno", 1) + lineno - 1, "in a doctest example: ", tree)
            nested.names = names
            nested.visit(tree)
            self.findings.extend(nested.findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, int, int, str]] = set()
    out = []
    for finding in findings:
        key = (finding.code, finding.line, finding.col, finding.message)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def check_policy(tree: ast.AST, options: PolicyOptions | None = None) -> list[Finding]:
    """Findings of the AST policy for a parsed script."""
    visitor = _Policy(scan_names(tree), options or PolicyOptions(), build_scopes(tree))
    visitor.visit(tree)
    return _dedupe(visitor.findings)
