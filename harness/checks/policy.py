"""The AST policy: which modules, names and attributes a sandboxed script may use.

This is a gate, not a sandbox. It rejects code that reaches for things it should not need
(process control, sockets, introspection that walks out of Python's object model) so that
such code never reaches the container; the container still assumes it might.

Identifiers are checked as Python sees them: ``ast`` gives NFKC-normalised names, so a
full-width ``ｅｘｅｃ`` is ``exec`` here too.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import re
import string
import sys
import types
from collections.abc import Iterator

from harness.checks.models import Finding, Severity

__all__ = ["ALLOWED_MODULES", "check_policy", "module_allowed"]

# Standard-library modules that are useful and harmless inside a no-network, no-privilege
# container. A dotted entry allows that package and everything under it, and nothing above it.
ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "__future__",
        "abc",
        "argparse",
        "array",
        "ast",
        "base64",
        "binascii",
        "bisect",
        "bz2",
        "calendar",
        "cmath",
        "collections",
        "colorsys",
        "concurrent.futures",
        "configparser",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "doctest",
        "email",
        "enum",
        "errno",
        "fnmatch",
        "fractions",
        "functools",
        "glob",
        "graphlib",
        "gzip",
        "hashlib",
        "heapq",
        "hmac",
        "html",
        "io",
        "ipaddress",
        "itertools",
        "json",
        "keyword",
        "locale",
        "logging",
        "lzma",
        "math",
        "mimetypes",
        "numbers",
        "operator",
        "os",
        "os.path",
        "pathlib",
        "posixpath",
        "pprint",
        "queue",
        "random",
        "re",
        "reprlib",
        "sched",
        "secrets",
        "shlex",
        "shutil",
        "signal",
        "sqlite3",
        "stat",
        "statistics",
        "string",
        "struct",
        "sys",
        "tarfile",
        "tempfile",
        "textwrap",
        "threading",
        "time",
        "tomllib",
        "traceback",
        "typing",
        "unicodedata",
        "unittest",
        "urllib.parse",
        "uuid",
        "warnings",
        "weakref",
        "xml.dom.minidom",
        "xml.etree",
        "zipfile",
        "zlib",
        "zoneinfo",
        "harness_runtime",
    }
)
_WHY_NOT = {
    "subprocess": "scripts cannot start other programs; do the work in Python",
    "socket": "the sandbox has no network",
    "ctypes": "native calls are not allowed",
    "importlib": "modules are imported with a plain `import` statement",
    "pickle": "unpickling runs arbitrary code; use json",
    "marshal": "use json",
    "shelve": "it is built on pickle; use json or sqlite3",
    "multiprocessing": "use threading or concurrent.futures.ThreadPoolExecutor",
    "inspect": "introspection of frames and code objects is not allowed",
    "gc": "walking the garbage collector's objects is not allowed",
    "builtins": "use built-in functions directly",
    "code": "interactive interpreters are not allowed",
    "pty": "scripts cannot start other programs",
    "urllib": "the sandbox has no network; urllib.parse is allowed",
    "http": "the sandbox has no network",
    "requests": "the sandbox has no network and no third-party packages",
}
BANNED_BUILTINS: dict[str, str] = {
    "eval": "parse data with json or ast.literal_eval",
    "exec": "write the code directly instead of executing strings",
    "compile": "write the code directly instead of compiling strings",
    "__import__": "use a plain `import` statement",
    "breakpoint": "remove debugging hooks",
    "globals": "pass values explicitly",
    "locals": "pass values explicitly",
    "vars": "use the object's attributes or a dict",
}
BANNED_ATTRS: dict[str, frozenset[str]] = {
    "os": frozenset(
        """system popen fork forkpty kill killpg execl execle execlp execlpe execv execve execvp execvpe spawnl
        spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe posix_spawn posix_spawnp setuid setgid seteuid
        setegid setreuid setregid setresuid setresgid setgroups chroot plock startfile register_at_fork
        pidfd_open""".split()
    ),
    "sys": frozenset(
        """_getframe _current_frames modules settrace setprofile addaudithook meta_path path_hooks
        path_importer_cache setrecursionlimit""".split()
    ),
}
# Attributes that expose frames, code or globals, whatever object they are read from.
INTROSPECTION_ATTRS = frozenset(
    """tb_frame tb_next gi_frame gi_code cr_frame cr_code ag_frame ag_code f_back f_globals f_locals f_builtins
    f_code co_code func_globals func_code""".split()
)
SAFE_DUNDERS = frozenset(
    """__name__ __doc__ __file__ __version__ __qualname__ __module__ __init__ __enter__ __exit__ __iter__
    __next__ __len__ __str__ __repr__ __eq__ __ne__ __hash__ __lt__ __le__ __gt__ __ge__ __contains__
    __getitem__ __setitem__ __delitem__ __add__ __sub__ __mul__ __bool__ __post_init__ __all__ __slots__
    __annotations__""".split()
)
_NAME_DUNDERS = frozenset({"__name__", "__file__", "__doc__", "__all__", "__slots__", "__version__"})
_WRITE_ROOTS = ("/output", "/tmp", "/work")  # noqa: S108 - the container's own folders
_KERNEL_ROOTS = ("/proc", "/sys", "/dev")
_FORMAT_FIELD = re.compile(r"\{[^{}]*?(?:\.|\[)\s*['\"]?_")
_STDLIB = frozenset(sys.stdlib_module_names) - {"harness_runtime"}


def module_allowed(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when ``name`` (dotted) is an allowed module or lies under one."""
    allowed = ALLOWED_MODULES | extra
    parts = name.split(".")
    return any(".".join(parts[:n]) in allowed for n in range(1, len(parts) + 1))


def _finding(node: ast.AST, code: str, message: str, hint: str, severity: Severity = "error") -> Finding:
    return Finding(
        code=code,
        severity=severity,
        line=getattr(node, "lineno", 0),
        col=getattr(node, "col_offset", 0),
        message=message,
        hint=hint,
        checker="policy",
    )


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _literal_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, extra_modules: frozenset[str]) -> None:
        self.extra = extra_modules
        self.findings: list[Finding] = []
        self.modules: dict[str, str] = {}  # local name -> module it is bound to
        self.parents: dict[int, ast.AST] = {}

    def _is_receiver(self, node: ast.Name) -> bool:
        return isinstance(self.parents.get(id(node)), ast.Attribute)

    def add(self, *args: object, **kwargs: object) -> None:
        self.findings.append(_finding(*args, **kwargs))  # type: ignore[arg-type]

    # -- imports -------------------------------------------------------------------------------
    def _check_module(self, node: ast.AST, name: str) -> None:
        if module_allowed(name, self.extra):
            return
        root = name.split(".")[0]
        why = _WHY_NOT.get(root) or _WHY_NOT.get(name) or "it is not on the sandbox's allow-list"
        self.add(node, "HP101", f"import of {name!r} is not allowed", f"do without {name}: {why}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            local = alias.asname or alias.name.split(".")[0]
            self.modules[local] = alias.name if alias.asname else alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add(
                node, "HP101", "relative imports are not allowed", "scripts are single files; import stdlib modules"
            )
            return
        module = node.module or ""
        self._check_module(node, module)
        for alias in node.names:
            if alias.name == "*":
                self.add(node, "HP112", f"`from {module} import *` hides what is used", "import the names you need")
                continue
            banned = BANNED_ATTRS.get(module, frozenset())
            if alias.name in banned or alias.name in INTROSPECTION_ATTRS:
                self.add(node, "HP103", f"{module}.{alias.name} is not allowed", _attr_hint(module, alias.name))
            elif alias.name.startswith("__") or (alias.name.startswith("_") and module != "__future__"):
                self.add(node, "HP109", f"{module}.{alias.name} is private", "use the module's public API")
            target = _module_attribute(module, alias.name) if module_allowed(module, self.extra) else None
            if target is not None:
                if _is_submodule(module, alias.name, target) and module_allowed(target, self.extra):
                    self.modules[alias.asname or alias.name] = target
                else:
                    self.add(
                        node,
                        "HP109",
                        f"{module}.{alias.name} reaches module {target!r} through {module}",
                        f"import {target} directly if it is allowed; never reach it through another module",
                    )
        self.generic_visit(node)

    # -- names and attributes ---------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        # `o = os` makes o another name for the module; follow it.
        if isinstance(node.value, ast.Name) and node.value.id in self.modules:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.modules[target.id] = self.modules[node.value.id]
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.modules and isinstance(node.ctx, ast.Load) and not self._is_receiver(node):
            self.add(
                node,
                "HP109",
                f"the module {self.modules[node.id]} is used as a value",
                "call the module's functions directly instead of passing the module around",
            )
        if node.id in BANNED_BUILTINS:
            self.add(node, "HP102", f"{node.id} is not allowed", BANNED_BUILTINS[node.id])
        elif node.id.startswith("__") and node.id.endswith("__") and node.id not in _NAME_DUNDERS:
            self.add(node, "HP105", f"the name {node.id} is not allowed", "use ordinary names and built-ins")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("__") and attr.endswith("__") and attr not in SAFE_DUNDERS:
            self.add(
                node,
                "HP104",
                f"access to {attr} is not allowed",
                "dunder attributes walk Python's internals; use the object's public API",
            )
        elif attr in INTROSPECTION_ATTRS:
            self.add(
                node,
                "HP108",
                f"access to {attr} (frames, code, globals) is not allowed",
                "do not inspect frames or code objects",
            )
        else:
            self._check_module_attribute(node)
        self.generic_visit(node)

    def _check_module_attribute(self, node: ast.Attribute) -> None:
        chain = _dotted(node)
        if not chain or chain[0] not in self.modules:
            return
        path = self.modules[chain[0]]
        for attr in chain[1:]:
            full = f"{path}.{attr}"
            if attr in BANNED_ATTRS.get(path, frozenset()):
                self.add(node, "HP103", f"{full} is not allowed", _attr_hint(path, attr))
                return
            if attr.startswith("_") and not attr.startswith("__"):
                self.add(node, "HP109", f"{full} is a private internal of {path}", "use the module's public API")
                return
            target = _module_attribute(path, attr)
            if target is None:
                return  # an ordinary attribute (function, class, constant)
            if not _is_submodule(path, attr, target) or not module_allowed(target, self.extra):
                self.add(
                    node,
                    "HP109",
                    f"{full} reaches module {target!r} through {path}",
                    f"import {target} directly if it is allowed; never reach it through another module",
                )
                return
            path = target

    # -- calls ----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("getattr", "setattr", "delattr", "hasattr"):
            self._check_dynamic_attribute(node, name)
        elif name == "type" and len(node.args) == 3:
            self.add(
                node,
                "HP113",
                "type() with three arguments builds classes at run time",
                "write a class statement",
                severity="warning",
            )
        elif name == "open" or (isinstance(func, ast.Attribute) and func.attr in _PATH_WRITERS):
            self._check_write_target(node)
        self.generic_visit(node)

    def _check_dynamic_attribute(self, node: ast.Call, name: str) -> None:
        if len(node.args) < 2:
            return
        target = _literal_str(node.args[1])
        if target is None:
            self.add(
                node,
                "HP106",
                f"{name}() with a computed attribute name",
                f"use a literal attribute name, e.g. {name}(obj, 'field'), or a dict",
            )
            return
        if target.startswith("_") or target in INTROSPECTION_ATTRS:
            self.add(node, "HP104", f"{name}() of {target!r} is not allowed", "use the object's public API")
        chain = _dotted(node.args[0])
        if chain and chain[0] in self.modules and len(chain) == 1:
            module = self.modules[chain[0]]
            if target in BANNED_ATTRS.get(module, frozenset()):
                self.add(node, "HP103", f"{module}.{target} is not allowed", _attr_hint(module, target))

    def _check_write_target(self, node: ast.Call) -> None:
        func = node.func
        path: str | None = None
        writing = False
        if isinstance(func, ast.Name):  # open(path, mode)
            path = _literal_str(node.args[0]) if node.args else None
            mode = _literal_str(node.args[1]) if len(node.args) > 1 else None
            for keyword in node.keywords:
                if keyword.arg == "mode":
                    mode = _literal_str(keyword.value)
                if keyword.arg == "file":
                    path = _literal_str(keyword.value)
            writing = mode is not None and any(c in mode for c in "wax+")
        elif isinstance(func, ast.Attribute):  # Path("/x").write_text(...), Path("/x").open("w")
            receiver = func.value
            if isinstance(receiver, ast.Call) and receiver.args:
                path = _literal_str(receiver.args[0])
            if func.attr == "open":
                mode = _literal_str(node.args[0]) if node.args else None
                for keyword in node.keywords:
                    if keyword.arg == "mode":
                        mode = _literal_str(keyword.value)
                writing = mode is not None and any(c in mode for c in "wax+")
            else:
                writing = True
        if path is None or not path.startswith("/"):
            return
        if path.startswith(_KERNEL_ROOTS) and path != "/dev/null":
            self.add(node, "HP111", f"{path} is a kernel interface", "read inputs from /input only")
        elif writing and not path.startswith(_WRITE_ROOTS):
            self.add(
                node,
                "HP110",
                f"writes to {path}, outside /output, /tmp and /work",
                "write results under /output (scratch files under /tmp)",
            )

    def visit_Constant(self, node: ast.Constant) -> None:
        # A format template can be applied far from where it is written; judge it where it is.
        if isinstance(node.value, str) and "{" in node.value and _unsafe_format(node.value):
            self.add(
                node,
                "HP107",
                "format string reads attributes or items starting with '_'",
                "format plain values: '{}'.format(value)",
            )


_PATH_WRITERS = frozenset({"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir", "open"})


def _is_submodule(parent: str, attr: str, target: str) -> bool:
    # os.path is posixpath by another name; every other module reached through a module must
    # really be its submodule, or it is a way around the allow-list (logging.os, shutil.os).
    return target.startswith(parent + ".") or f"{parent}.{attr}" == "os.path"


@functools.lru_cache(maxsize=4096)
def _module_attribute(module: str, attr: str) -> str | None:
    """The module that ``module.attr`` names, if it names one (found by importing the host's stdlib)."""
    if module not in _STDLIB and module.split(".")[0] not in _STDLIB:
        return None
    try:
        loaded = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a module that does not import here has nothing to resolve
        return None
    value = getattr(loaded, attr, None)
    if isinstance(value, types.ModuleType):
        return value.__name__
    if value is None:
        try:
            spec = importlib.util.find_spec(f"{module}.{attr}")
        except (ImportError, ValueError):
            return None
        return spec.name if spec is not None else None
    return None


def _unsafe_format(template: str) -> bool:
    if not _FORMAT_FIELD.search(template):
        return False
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError:
        return True
    return any(re.search(r"(?:\.|\[)\s*['\"]?_", f) for f in fields)


def _attr_hint(module: str, attr: str) -> str:
    if module == "os":
        return "scripts cannot start or signal processes or change identity; do the work in Python"
    if module == "sys":
        return "leave the interpreter's internals alone"
    return "use another function"


def _dedupe(findings: list[Finding]) -> Iterator[Finding]:
    seen: set[tuple[str, int, int, str]] = set()
    for finding in findings:
        key = (finding.code, finding.line, finding.col, finding.message)
        if key not in seen:
            seen.add(key)
            yield finding


def check_policy(tree: ast.AST, extra_modules: frozenset[str] = frozenset()) -> list[Finding]:
    """Findings of the AST policy for a parsed script."""
    visitor = _Visitor(extra_modules)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            visitor.parents[id(child)] = parent
    visitor.visit(tree)
    return list(_dedupe(visitor.findings))
