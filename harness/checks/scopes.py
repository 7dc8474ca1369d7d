"""Which scope binds a name: Python's own rules (LEGB), found before the policy walks the tree.

The container, not this module, is the security boundary. The AST policy needs to know
whether ``time`` in ``def f(time): ...`` is the parameter or the ``time`` module, and whether
``help`` is the script's own function or the built-in that imports modules by name. The rules
here are Python's: a name assigned anywhere in a function body (parameters, ``for`` targets,
``with ... as``, ``except ... as``, imports, ``def``/``class``, walrus targets, ``match``
captures) is local to the whole function unless declared ``global``/``nonlocal``;
comprehensions and lambdas are scopes of their own; a class body is a scope that nested
functions do not see.

Each binding also records whether it can hold a module (an ``import`` or an alias such as
``o = os``), so a local name that shadows a module is only "not the module" when none of its
bindings in that scope could make it one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Scope", "ScopeTable", "build_scopes", "resolve"]

_SCOPE_NODES = (
    ast.Module,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.GeneratorExp,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
)


@dataclass
class Scope:
    """The names one scope binds, and which of those bindings could hold a module or a built-in."""

    kind: str  # "module", "function", "comprehension" or "class"
    parent: Scope | None
    bound: set[str] = field(default_factory=set)
    module_bound: set[str] = field(default_factory=set)  # bound by import, or by an alias of another name
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)


@dataclass
class ScopeTable:
    """The scope each scope-making node opens."""

    scopes: dict[int, Scope] = field(default_factory=dict)
    # Module-level names bound by an unconditional top-level statement, with its line.
    settled: dict[str, int] = field(default_factory=dict)
    first_read: dict[str, int] = field(default_factory=dict)  # name -> first line it is read on, anywhere
    deleted: set[str] = field(default_factory=set)  # names some `del` statement unbinds

    def of(self, node: ast.AST) -> Scope | None:
        """The scope ``node`` (a module, def, lambda, class or comprehension) opens."""
        return self.scopes.get(id(node))

    def shadows_builtin(self, scope: Scope, name: str) -> bool:
        """Whether ``scope``'s binding of ``name`` hides the built-in of that name wherever it is read.

        A function's locals never fall back to built-ins (an unbound local raises), so any
        binding there shadows. A module or class name that is not bound yet, or was deleted,
        *is* the built-in (``try: help = x`` that fails, ``del help``), so at module level only
        an unconditional top-level statement that comes before every read shadows it.
        """
        if name in scope.module_bound or name in self.deleted:
            return False
        if scope.kind in ("function", "comprehension"):
            return True
        if scope.kind != "module":
            return False
        line = self.settled.get(name)
        return line is not None and self.first_read.get(name, line + 1) > line


def resolve(scope: Scope, name: str) -> Scope | None:
    """The scope whose binding ``name`` refers to when read in ``scope`` (None: a built-in or unbound)."""
    current: Scope | None = scope
    first = True
    while current is not None:
        if current.kind == "class" and not first:
            current = current.parent  # a class body's names are not visible to code nested in it
            continue
        if name in current.declared_global:
            while current.parent is not None:
                current = current.parent
            return current if name in current.bound else None
        if name in current.bound:
            return current
        first = False
        current = current.parent
    return None


def _may_alias(value: ast.expr | None) -> bool:
    """Whether a bound value could be another name's module or built-in, carried over whole.

    A module or built-in can only travel as a value through a visible use of it, and the policy
    refuses every such use except a plain alias (``o = os``, ``o = a or os``), so only those
    bindings can make a name a module.
    """
    if isinstance(value, ast.Name | ast.Attribute | ast.NamedExpr):
        return True
    if isinstance(value, ast.BoolOp):
        return any(_may_alias(v) for v in value.values)
    if isinstance(value, ast.IfExp):
        return _may_alias(value.body) or _may_alias(value.orelse)
    return False


class _Builder(ast.NodeVisitor):
    def __init__(self, table: ScopeTable) -> None:
        self.table = table
        self.scope: Scope = Scope("module", None)

    def open(self, node: ast.AST, kind: str, body: Callable[[], None]) -> None:
        outer = self.scope
        self.scope = Scope(kind, outer)
        self.table.scopes[id(node)] = self.scope
        body()
        self.scope = outer

    def bind(self, name: str, *, module: bool) -> None:
        scope = self.scope
        if name in scope.declared_global:
            while scope.parent is not None:
                scope = scope.parent
        elif name in scope.declared_nonlocal:
            # The binding belongs to the nearest enclosing function that has the name.
            outer = scope.parent
            while outer is not None and (outer.kind == "class" or name not in outer.bound):
                outer = outer.parent
            scope = outer if outer is not None else scope
        scope.bound.add(name)
        if module:
            scope.module_bound.add(name)

    def bind_target(self, target: ast.expr, value: ast.expr | None) -> None:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                # Only `name = value` carries the value whole; unpacking hands out parts of it.
                self.bind(sub.id, module=sub is target and _may_alias(value))

    # -- scopes ----------------------------------------------------------------------------------
    def visit_Module(self, node: ast.Module) -> None:
        self.table.scopes[id(node)] = self.scope
        for statement in node.body:
            names: list[str] = []
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [statement.name]
            elif isinstance(statement, ast.Assign) and not _may_alias(statement.value):
                names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            for name in names:
                self.table.settled.setdefault(name, statement.lineno)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                if isinstance(sub.ctx, ast.Load):
                    current = self.table.first_read.get(sub.id, sub.lineno)
                    self.table.first_read[sub.id] = min(current, sub.lineno)
                elif isinstance(sub.ctx, ast.Del):
                    self.table.deleted.add(sub.id)
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        # Defaults, decorators and annotations are evaluated in the enclosing scope.
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        if not isinstance(node, ast.Lambda):
            self.bind(node.name, module=False)
            for decorator in node.decorator_list:
                self.visit(decorator)

        def body() -> None:
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None:
                    self.bind(arg.arg, module=False)  # what callers pass is judged at the call
            self._declarations(node.body if not isinstance(node, ast.Lambda) else [])
            if isinstance(node, ast.Lambda):
                self.visit(node.body)
            else:
                for statement in node.body:
                    self.visit(statement)

        self.open(node, "function", body)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.bases, *(k.value for k in node.keywords), *node.decorator_list]:
            self.visit(expr)
        self.bind(node.name, module=False)

        def body() -> None:
            self._declarations(node.body)
            for statement in node.body:
                self.visit(statement)

        self.open(node, "class", body)

    def _comprehension(self, node: ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # the first iterable is evaluated outside

        def body() -> None:
            for index, generator in enumerate(generators):
                if index:
                    self.visit(generator.iter)
                self.bind_target(generator.target, None)
                for condition in generator.ifs:
                    self.visit(condition)
            for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
                self.visit(part)

        self.open(node, "comprehension", body)

    visit_GeneratorExp = _comprehension
    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension

    def _declarations(self, body: list[ast.stmt]) -> None:
        """``global``/``nonlocal`` apply to the whole body, wherever they are written."""
        for statement in body:
            for sub in ast.walk(statement):
                if isinstance(sub, _SCOPE_NODES) and sub is not statement:
                    continue
                if isinstance(sub, ast.Global):
                    self.scope.declared_global.update(sub.names)
                elif isinstance(sub, ast.Nonlocal):
                    self.scope.declared_nonlocal.update(sub.names)

    # -- bindings --------------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.bind_target(target, node.value)
            self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.bind_target(node.target, node.value)
        self.visit(node.annotation)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.bind_target(node.target, node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        outer = self.scope
        # A walrus in a comprehension binds in the enclosing function (or module) scope.
        while self.scope.kind == "comprehension" and self.scope.parent is not None:
            self.scope = self.scope.parent
        self.bind(node.target.id, module=_may_alias(node.value))
        self.scope = outer

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.bind_target(node.target, None)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self.bind_target(node.optional_vars, None)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bind(node.name, module=False)  # always an exception instance
        for statement in node.body:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.bind(alias.asname or alias.name.split(".")[0], module=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.bind(alias.asname or alias.name, module=True)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bind(node.name, module=False)  # a module as the subject is refused where it is read
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bind(node.name, module=False)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bind(node.rest, module=False)
        self.generic_visit(node)


def build_scopes(tree: ast.AST) -> ScopeTable:
    """The scopes of ``tree`` and the names each binds."""
    table = ScopeTable()
    builder = _Builder(table)
    if not isinstance(tree, ast.Module):
        table.scopes[id(tree)] = builder.scope
    builder.visit(tree)
    return table
