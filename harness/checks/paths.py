"""Paths a script names in its source: where it writes, and whether it touches kernel interfaces.

The container, not this module, is the security boundary: its root filesystem is read-only,
/input is mounted read-only and only /output, /tmp and /work are writable. What this module
adds is an early, precise finding when the source *visibly* aims elsewhere (a literal
``open("/etc/passwd", "w")``, ``Path("/proc/self/mem")``), so the LLM can fix it before a run.
Paths computed at run time are not guessed at.

A path is resolved statically through literals, f-string prefixes, ``Path(...) / "x"``,
``os.path.join``, ``os.environ.get(name, default)`` (the default) and names assigned once.
It is then made absolute against the sandbox's working directory and normalised, so
``/tmp/../etc/x`` is judged as ``/etc/x``.
"""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = [
    "PATH_METHODS",
    "PATH_TYPES",
    "SINKS",
    "Resolver",
    "Sink",
    "StaticPath",
    "argument",
    "call_path_problems",
    "kernel_problem",
    "static_path",
    "static_suffix",
    "write_problem",
]

WORK_DIR = "/work"  # the sandbox's working directory and sys.path[0] (sandbox/entrypoint.py)
WRITABLE = ("/output", "/tmp", WORK_DIR, "/dev/shm")  # noqa: S108 - the container's own tmpfs folders
WRITABLE_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
KERNEL_ROOTS = ("/proc", "/sys", "/dev")
KERNEL_READABLE = frozenset(
    {
        "/dev/null",
        "/dev/zero",
        "/dev/random",
        "/dev/urandom",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/loadavg",
        "/proc/uptime",
        "/proc/version",
    }
)
KERNEL_READABLE_TREES = ("/dev/shm", "/sys/fs/cgroup")  # noqa: S108 - the container's own tmpfs
IMPORTABLE_SUFFIXES = (".py", ".pyc", ".pth", ".so")
PATH_TYPES = frozenset(
    {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath", "os.path.join", "posixpath.join"}
)
_SAME_PATH = frozenset(
    {"str", "os.fspath", "os.path.abspath", "os.path.normpath", "os.path.realpath", "os.path.expanduser"}
)
_ENV_DEFAULT = frozenset({"os.environ.get", "os.getenv"})
_OS_WRITE_FLAGS = frozenset({"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"})
_ARCHIVES = ("tarfile.", "zipfile.")


class StaticPath(NamedTuple):
    """A path known from the source: the whole of it (exact) or a leading part."""

    text: str
    exact: bool


class Resolver(Protocol):
    """What path resolution needs from the AST policy."""

    def qualname(self, node: ast.expr) -> str | None:
        """The dotted name a call target resolves to (``os.path.join``), if known."""
        ...

    def assigned(self, name: str) -> ast.expr | None:
        """The value of a name assigned exactly once, if any."""
        ...

    def context(self, name: str) -> ast.expr | None:
        """What ``with X as name`` entered, when that is the name's only binding."""
        ...


@dataclass(frozen=True)
class Sink:
    """A call that takes paths: where they are, and whether it writes to them."""

    paths: tuple[tuple[int, str], ...]  # (position, keyword) of each path argument; position -1: keyword only
    mode: tuple[int, str, str] | None = None  # (position, keyword, default) of a mode string
    writes: bool = False


_READ = Sink(((0, "path"),))
_WRITE0 = Sink(((0, "path"),), writes=True)
_WRITE_DST = Sink(((1, "dst"),), writes=True)
_OPEN = Sink(((0, "file"),), mode=(1, "mode", "r"))
_COMPRESSED = Sink(((0, "filename"),), mode=(1, "mode", "rb"))
_TEMP = Sink(((-1, "dir"),), writes=True)
SINKS: dict[str, Sink] = {
    "open": _OPEN,
    "io.open": _OPEN,
    "codecs.open": Sink(((0, "filename"),), mode=(1, "mode", "r")),
    "gzip.open": _COMPRESSED,
    "bz2.open": _COMPRESSED,
    "lzma.open": _COMPRESSED,
    "gzip.GzipFile": _COMPRESSED,
    "tarfile.open": Sink(((0, "name"),), mode=(1, "mode", "r")),
    "zipfile.ZipFile": Sink(((0, "file"),), mode=(1, "mode", "r")),
    "os.open": Sink(((0, "path"),)),
    "sqlite3.connect": Sink(((0, "database"),)),
    **{f"os.{name}": _WRITE0 for name in "remove unlink rmdir removedirs mkdir makedirs chmod utime truncate".split()},
    **{f"os.{name}": Sink(((0, "src"), (1, "dst")), writes=True) for name in ("rename", "renames", "replace")},
    "os.symlink": _WRITE_DST,
    "os.link": _WRITE_DST,
    **{f"shutil.{name}": _WRITE_DST for name in "copy copy2 copyfile copytree copymode copystat".split()},
    "shutil.move": Sink(((0, "src"), (1, "dst")), writes=True),
    "shutil.rmtree": _WRITE0,
    "shutil.make_archive": Sink(((0, "base_name"),), writes=True),
    "shutil.unpack_archive": Sink(((1, "extract_dir"),), writes=True),
    "logging.FileHandler": Sink(((0, "filename"),), writes=True),
    "logging.basicConfig": Sink(((-1, "filename"),), writes=True),
    **{
        f"logging.handlers.{name}": Sink(((0, "filename"),), writes=True)
        for name in ("RotatingFileHandler", "TimedRotatingFileHandler", "WatchedFileHandler")
    },
    **{
        f"tempfile.{name}": _TEMP
        for name in "mkstemp mkdtemp NamedTemporaryFile TemporaryDirectory TemporaryFile SpooledTemporaryFile".split()
    },
}
# Methods called on a path object: does the call write to the receiver's path?
PATH_METHODS: dict[str, bool] = {
    **dict.fromkeys(
        "write_text write_bytes touch mkdir unlink rmdir chmod lchmod symlink_to hardlink_to rename replace".split(),
        True,
    ),
    **dict.fromkeys("read_text read_bytes iterdir glob rglob exists is_file is_dir stat lstat open".split(), False),
}


def _fold(parts: list[StaticPath | None]) -> StaticPath | None:
    """Join path components the way ``Path(a, b)`` / ``os.path.join`` does, as far as they are known."""
    if not parts or parts[0] is None:
        return None
    text, exact = parts[0]
    for part in parts[1:]:
        if not exact:
            break
        if part is None:
            return StaticPath(text.rstrip("/") + "/", False)
        text = posixpath.join(text, part.text)
        exact = part.exact
    return StaticPath(text, exact)


def argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    """The argument passed at ``position`` or as ``keyword`` (position -1: keyword only)."""
    if 0 <= position < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
        return call.args[position]
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return None


def static_path(node: ast.expr | None, resolver: Resolver, depth: int = 0) -> StaticPath | None:
    """The path (or its known leading part) that ``node`` evaluates to, when the source shows it."""
    if node is None or depth > 8:
        return None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return StaticPath(node.value, True)
        if isinstance(node.value, bytes):
            return StaticPath(node.value.decode("latin-1"), True)
        return None
    if isinstance(node, ast.JoinedStr):
        prefix = ""
        for value in node.values:
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                return StaticPath(prefix, False) if prefix else None
            prefix += value.value
        return StaticPath(prefix, True)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = static_path(node.left, resolver, depth + 1)
        if left is None or not left.exact:
            return left
        right = static_path(node.right, resolver, depth + 1)
        if right is None:
            return StaticPath(left.text, False)
        return StaticPath(left.text + right.text, right.exact)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _fold([static_path(node.left, resolver, depth + 1), static_path(node.right, resolver, depth + 1)])
    if isinstance(node, ast.Name):
        return static_path(resolver.assigned(node.id), resolver, depth + 1)
    if isinstance(node, ast.Call):
        return _static_call(node, resolver, depth)
    return None


def _static_call(node: ast.Call, resolver: Resolver, depth: int) -> StaticPath | None:
    name = resolver.qualname(node.func)
    if name in PATH_TYPES:
        if not node.args:
            return StaticPath(".", True)
        return _fold([static_path(arg, resolver, depth + 1) for arg in node.args])
    if name in _SAME_PATH and node.args:
        return static_path(node.args[0], resolver, depth + 1)
    if name in _ENV_DEFAULT:
        return static_path(argument(node, 1, "default"), resolver, depth + 1)
    if isinstance(node.func, ast.Attribute):
        method = node.func.attr
        if method == "joinpath":
            receiver = static_path(node.func.value, resolver, depth + 1)
            return _fold([receiver, *(static_path(arg, resolver, depth + 1) for arg in node.args)])
        if method in ("resolve", "absolute", "expanduser"):
            return static_path(node.func.value, resolver, depth + 1)
    return None


def static_suffix(node: ast.expr | None, resolver: Resolver, depth: int = 0) -> str:
    """The literal text a path expression ends with ('' when unknown): '.py' in ``root / "x.py"``."""
    if node is None or depth > 8:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return static_suffix(node.values[-1], resolver, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Div):
        return static_suffix(node.right, resolver, depth + 1)
    if isinstance(node, ast.Name):
        return static_suffix(resolver.assigned(node.id), resolver, depth + 1)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr == "with_suffix" and node.args:
            return static_suffix(node.args[0], resolver, depth + 1)
        if node.args and (resolver.qualname(node.func) in PATH_TYPES or _is_method(node, "joinpath")):
            return static_suffix(node.args[-1], resolver, depth + 1)
        if resolver.qualname(node.func) in _SAME_PATH and node.args:
            return static_suffix(node.args[0], resolver, depth + 1)
    return ""


def _is_method(node: ast.Call, name: str) -> bool:
    return isinstance(node.func, ast.Attribute) and node.func.attr == name


def _absolute(path: StaticPath) -> str | None:
    """The normalised absolute directory or file the path names, None when only '/' is known."""
    text = path.text
    if not path.exact:
        cut = text.rfind("/")
        text = "" if cut < 0 else text[: cut + 1]
        if text == "/":
            return None
    if text.startswith("~"):
        text = WORK_DIR + text[1:]  # HOME is the working directory in the sandbox
    if not text.startswith("/"):
        text = f"{WORK_DIR}/{text}"
    return posixpath.normpath(text).replace("//", "/")


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def kernel_problem(path: StaticPath) -> str | None:
    """A message when the path is a kernel interface (/proc, /sys, /dev) a script has no use for."""
    absolute = _absolute(path)
    if absolute is None or not _under(absolute, KERNEL_ROOTS):
        return None
    if absolute in KERNEL_READABLE or _under(absolute, KERNEL_READABLE_TREES):
        return None
    return f"{absolute} is a kernel interface"


def write_problem(path: StaticPath, suffix: str) -> str | None:
    """A message when a write to ``path`` visibly lands outside /output, /tmp and /work, or on the import path."""
    absolute = _absolute(path)
    if absolute is None:
        return None
    if absolute in WRITABLE_DEVICES:
        return None
    if not _under(absolute, WRITABLE):
        where = "/input is mounted read-only" if _under(absolute, ("/input",)) else "only /output, /tmp and /work"
        return f"writes to {absolute}, outside the writable folders ({where})"
    if suffix.endswith(IMPORTABLE_SUFFIXES) and _under(absolute, (WORK_DIR,)):
        return f"writes the importable file {absolute} into {WORK_DIR}, the first folder on the import path"
    return None


def _writes(mode: ast.expr | None, default: str) -> bool:
    """Whether an open() mode writes; a mode computed at run time is assumed to."""
    if mode is None:
        text: str | None = default
    elif isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        text = mode.value
    else:
        text = None
    return text is None or any(c in text for c in "wax+")


def _judge(expr: ast.expr | None, writes: bool, resolver: Resolver) -> tuple[str, str] | None:
    found = static_path(expr, resolver)
    if found is None:
        return None
    kernel = kernel_problem(found)
    if kernel is not None:
        return "HP111", kernel
    if writes:
        problem = write_problem(found, static_suffix(expr, resolver))
        if problem is not None:
            return "HP110", problem
    return None


def _is_work_dir(node: ast.expr, resolver: Resolver) -> bool:
    """The path is the working directory itself, where an unpacked ``winreg.py`` would be importable."""
    found = static_path(node, resolver)
    return found is not None and found.exact and _absolute(found) == WORK_DIR


def _archive_call(node: ast.Call, method: str, resolver: Resolver) -> bool:
    """``extractall`` is only an archive's; ``extract`` also names other things, so its receiver must be one."""
    if method == "extractall":
        return True
    receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
    if isinstance(receiver, ast.Name):
        receiver = resolver.assigned(receiver.id) or resolver.context(receiver.id)
    return isinstance(receiver, ast.Call) and (resolver.qualname(receiver.func) or "").startswith(_ARCHIVES)


def call_path_problems(node: ast.Call, name: str | None, resolver: Resolver) -> list[tuple[str, str]]:
    """(code, message) for each path a call visibly writes outside the sandbox's folders or reads from the kernel."""
    checks: list[tuple[ast.expr | None, bool]] = []
    sink = SINKS.get(name) if name else None
    if sink is not None:
        writes = sink.writes
        if sink.mode is not None:
            writes = _writes(argument(node, sink.mode[0], sink.mode[1]), sink.mode[2])
        elif name == "os.open" and len(node.args) > 1:
            flags = {getattr(n, "id", None) or getattr(n, "attr", None) for n in ast.walk(node.args[1])}
            writes = bool(flags & _OS_WRITE_FLAGS)
        checks += [(argument(node, position, keyword), writes) for position, keyword in sink.paths]
    elif name is not None and (name in PATH_TYPES or name.startswith(("os.", "glob.", "shutil."))):
        checks += [(arg, False) for arg in node.args]
    problems: list[tuple[str, str]] = []
    if name == "shutil.unpack_archive":
        target = argument(node, 1, "extract_dir")
        if target is None or _is_work_dir(target, resolver):
            problems.append(("HP110", f"unpack_archive() unpacks an archive into {WORK_DIR}, the import path"))
    if isinstance(node.func, ast.Attribute):
        method = node.func.attr
        if method in ("rename", "replace") and len(node.args) + len(node.keywords) != 1:
            # str.replace(old, new), bytes.replace, datetime.replace(year=...): Path.rename/replace
            # take exactly one target, so anything else is not a file operation.
            pass
        elif method in PATH_METHODS:
            writes = PATH_METHODS[method]
            if method == "open":
                writes = _writes(argument(node, 0, "mode"), "r")
            checks.append((node.func.value, writes))
            if method in ("rename", "replace", "symlink_to", "hardlink_to") and node.args:
                checks.append((node.args[0], True))
        elif method in ("extractall", "extract") and _archive_call(node, method, resolver):
            # No target path extracts into the working directory, /work: judged like a write there.
            target = argument(node, 0 if method == "extractall" else 1, "path")
            checks.append((target if target is not None else ast.Constant(WORK_DIR), True))
            if target is None or _is_work_dir(target, resolver):
                problems.append(("HP110", f"{method}() unpacks an archive into {WORK_DIR}, the import path"))
    for expr, writes in checks:
        problem = _judge(expr, writes, resolver)
        if problem is not None:
            problems.append(problem)
    return problems
