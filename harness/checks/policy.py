"""The AST policy: which modules, names, attributes and paths a sandboxed script may use.

This is a gate, not a sandbox: the container is the security boundary and assumes any code
may reach it. The policy turns away code that reaches for what an automation script never
needs (process control, sockets, frames, the import machinery, code built from strings), and
closes the known ways around such a list:

* names are checked as Python reads them: ``ast`` gives NFKC-normalised identifiers, so a
  full-width ``ｅｘｅｃ`` is ``exec`` here too;
* dunder attributes (``__class__``, ``__subclasses__``, ``__globals__`` ...) and frame or code
  attributes (``gi_frame``, ``f_back``, ``tb_frame``) are refused on every object;
* ``getattr`` and friends need a literal attribute name (or a literal, non-underscore prefix);
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
from harness.checks.names import Names, checkable, denial_reason, module_allowed, module_attribute, scan_names
from harness.checks.rules import (
    BANNED_BUILTINS,
    BANNED_METHODS,
    CODE_LOADING,
    DATA_MODEL_DUNDERS,
    DUNDER_NAMES_READ,
    DUNDER_NAMES_STORE,
    DYNAMIC_ATTRIBUTE_BUILTINS,
    INTROSPECTION_ATTRS,
    SAFE_DUNDER_READS,
    STORABLE_MODULE_ATTRS,
    attribute_allowed,
)

__all__ = ["PolicyOptions", "check_policy"]

_DUNDER_HINTS = {
    "__class__": "use type(obj) (and type(obj).__name__)",
    "__dict__": "use explicit attributes or dataclasses.asdict(obj)",
    "__traceback__": "use traceback.format_exc() inside the except block",
}
_LIST_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"})
_ROT13 = frozenset({"rot13", "rot_13", "rot-13"})
_TEST_NAME = re.compile(r"^[A-Za-z]\w*(?:\.[A-Za-z]\w*)?$")


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
        self, names: Names, options: PolicyOptions, line_offset: int = 0, prefix: str = "", depth: int = 0
    ) -> None:
        self.names = names
        self.options = options
        self.line_offset = line_offset
        self.prefix = prefix
        self.depth = depth
        self.findings: list[Finding] = []
        self.parent: ast.AST | None = None
        self.scopes: list[str] = ["module"]

    # -- plumbing --------------------------------------------------------------------------------
    def nested(self, line_offset: int, prefix: str) -> _Policy:
        """A visitor for code embedded in this script (string annotations, doctest examples)."""
        return _Policy(self.names, self.options, self.line_offset + line_offset, prefix, self.depth + 1)

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
        self._check_import(node, module)
        allowed = module_allowed(module, self.options.extra_modules)
        for alias in node.names:
            if alias.name == "*":
                self.add(
                    node,
                    "HP112",
                    f"`from {module} import *` hides which names are used",
                    f"import the names you need: from {module} import a, b",
                )
            elif allowed and module != "__future__":
                self._check_module_attribute(node, module, alias.name, store=False)

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
            elif attr not in SAFE_DUNDER_READS and not self._plain_setattr(node):
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

    def _plain_setattr(self, node: ast.Attribute) -> bool:
        """``object.__setattr__(self, "name", v)`` in a frozen dataclass: a literal, ordinary name."""
        call = self.parent
        if node.attr != "__setattr__" or not (isinstance(call, ast.Call) and call.func is node):
            return False
        position = 0 if isinstance(node.value, ast.Call) else 1  # super().__setattr__("x", v)
        name = _literal(call.args[position]) if len(call.args) > position else None
        return name is not None and name.isidentifier() and not name.startswith("_")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load) and self.qualname(node.value) == "sys.argv":
            self.add(node, "HP109", "assigns into sys.argv", "copy sys.argv[1:] into a list of your own")
        self.generic_visit(node)

    # -- names -----------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        local = name in self.names.objects or name in self.names.modules
        if name in BANNED_BUILTINS and not local:
            self.add(node, "HP102", f"{name} is not allowed", BANNED_BUILTINS[name])
        elif name in DYNAMIC_ATTRIBUTE_BUILTINS and not local and not self._is_call_target(node):
            self.add(node, "HP106", f"{name} is used as a value", f"call {name}(obj, 'literal_name') directly")
        elif is_dunder(name):
            self._check_dunder_name(node)
        if name in self.names.modules and isinstance(node.ctx, ast.Load):
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

    def _check_module_value(self, node: ast.Name) -> None:
        parent = self.parent
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return
        if isinstance(parent, ast.Assign | ast.AnnAssign | ast.NamedExpr) and parent.value is node:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if all(isinstance(t, ast.Name) for t in targets):
                return  # another name for the module: followed by scan_names
        self.add(
            node,
            "HP109",
            f"the module {self.names.modules[node.id]} is used as a value",
            "call the module's functions directly instead of passing the module around",
        )

    # -- definitions and annotations ------------------------------------------------------------
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if is_dunder(node.name) and node.name not in DATA_MODEL_DUNDERS:
            self.add(node, "HP105", f"defines {node.name}, which is not a special method", "use an ordinary name")
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
            if arg is not None and arg.annotation is not None:
                self._check_annotation(arg.annotation)
        if node.returns is not None:
            self._check_annotation(node.returns)
        self.scopes.append("function")
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.scopes.append("function")
        self.generic_visit(node)
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if is_dunder(node.name):
            self.add(node, "HP105", f"defines the class {node.name}", "use an ordinary class name")
        self.scopes.append("class")
        self.generic_visit(node)
        self.scopes.pop()

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

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
        if name in DYNAMIC_ATTRIBUTE_BUILTINS:
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
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "format_map"):
            self._check_format_receiver(node)
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
            prefix = _identifier_prefix(target)
            module = self.names.module_of(node.args[0])
            if module is None and prefix[:1].isalpha() and prefix.replace("_", "a").isalnum():
                return  # getattr(self, f"handle_{kind}") cannot reach a dunder or a private name
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
        """doctest.testmod() runs the examples in docstrings: they are code, so check them as code."""
        parsed = doctest_examples(text)
        if not parsed:
            return
        # The examples run in the script's globals, plus whatever earlier examples imported.
        names = self.names.merged(scan_names(ast.Module(body=[s for _, t in parsed for s in t.body], type_ignores=[])))
        for lineno, tree in parsed:
            nested = self.nested(getattr(node, "lineno", 1) + lineno - 1, "in a doctest example: ")
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
    visitor = _Policy(scan_names(tree), options or PolicyOptions())
    visitor.visit(tree)
    return _dedupe(visitor.findings)
