"""The tables the AST policy applies: modules, builtins, attributes and dunders.

The container, not these tables, is the security boundary. They describe what an automation
script inside a no-network, no-privilege, throwaway container needs, so that anything else
(process control, introspection, dynamic imports) is turned away before it gets there.

Every list lives here and nowhere else. ``ALLOWED_MODULES`` is the one allow-list; a gate
policy can extend it (``GatePolicy.extend``), and an explicit grant wins over ``DENIED_MODULES``.

Decisions worth knowing:

* ``os`` and ``sys`` are allow-listed attribute by attribute, so a function added to ``os``
  by a later Python (``os.unshare`` in 3.12) is refused until someone looks at it.
* ``multiprocessing`` and ``ProcessPoolExecutor`` are refused: process pools pickle callables
  and data (unpickling runs code), ``set_executable`` starts any program, and each worker uses
  the run's pid and memory budget. Threads (``ThreadPoolExecutor``) cover I/O-bound scripts.
* ``shutil`` is allowed whole except ``chown``: organising files needs ``move``, ``rmtree`` and
  ``copytree``; literal destinations outside /output, /tmp and /work are refused separately,
  and /input is mounted read-only anyway.
* ``unittest`` and ``doctest`` are allowed for self-testing scripts, minus the calls that import
  or run code named by a string (test loading by name, discovery, ``run_docstring_examples``,
  ``unittest.mock.patch``). Reviewed scaffolds may load code (``GatePolicy.allow_code_loading``).
* ``logging.config`` is refused: ``fileConfig`` evaluates strings and ``dictConfig`` imports
  any callable named in the configuration. ``typing.get_type_hints`` and ``ForwardRef`` are
  refused because they evaluate annotation strings.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable

__all__ = [
    "ALLOWED_MODULES",
    "BANNED_BUILTINS",
    "BANNED_METHODS",
    "CODE_LOADING",
    "DATA_MODEL_DUNDERS",
    "DENIED_MODULES",
    "DUNDER_NAMES_READ",
    "DUNDER_NAMES_STORE",
    "DYNAMIC_ATTRIBUTE_BUILTINS",
    "INSTANCE_DUNDER_READS",
    "INTROSPECTION_ATTRS",
    "MODULE_ATTRS_ALLOWED",
    "MODULE_ATTRS_DENIED",
    "SAFE_DUNDER_READS",
    "STAR_IMPORTABLE",
    "STDLIB_MODULES",
    "STORABLE_MODULE_ATTRS",
    "attribute_allowed",
    "call_arguments_allowed",
]

# Standard-library modules that are useful and harmless inside a no-network, no-privilege
# container. A dotted entry allows that package and everything under it, and nothing above it.
ALLOWED_MODULES: frozenset[str] = frozenset(
    """
    __future__ abc argparse array ast asyncio atexit base64 binascii bisect bz2 calendar cmath codecs collections
    colorsys concurrent.futures configparser contextlib contextvars copy csv dataclasses datetime decimal difflib
    doctest email enum errno filecmp fnmatch fractions functools getopt gettext glob graphlib gzip hashlib heapq
    hmac html inspect io ipaddress itertools json keyword locale logging lzma math mimetypes numbers operator
    optparse os os.path pathlib platform posixpath pprint queue random re reprlib sched secrets shlex shutil signal
    sqlite3 stat statistics string struct sys tarfile tempfile textwrap threading time timeit token tokenize
    tomllib traceback types typing unicodedata unittest urllib.parse uuid warnings weakref xml.dom.minidom
    xml.etree zipfile zlib zoneinfo
    harness_runtime
    """.split()
)

# Refused even though a parent package is allowed, or refused with a specific reason.
DENIED_MODULES: dict[str, str] = {
    "subprocess": "scripts cannot start other programs; do the work in Python",
    "socket": "the sandbox has no network; use hr.fetch(url) (granted hosts only)",
    "ssl": "the sandbox has no network",
    "http": "the sandbox has no network; use hr.fetch(url) (granted hosts only)",
    "urllib": "the sandbox has no network; only urllib.parse is allowed; use hr.fetch(url) (granted hosts only)",
    "ftplib": "the sandbox has no network",
    "smtplib": "the sandbox has no network",
    "xmlrpc": "the sandbox has no network",
    "asyncio.subprocess": "scripts cannot start other programs",
    "ctypes": "native calls are not allowed",
    "mmap": "raw memory mappings are not allowed",
    "importlib": "modules are imported with a plain `import` statement",
    "pkgutil": "modules are imported with a plain `import` statement (pkgutil.resolve_name imports by string)",
    "runpy": "scripts cannot run other code",
    "zipimport": "modules are imported with a plain `import` statement",
    "imp": "modules are imported with a plain `import` statement",
    "pickle": "unpickling runs arbitrary code; use json",
    "_pickle": "unpickling runs arbitrary code; use json",
    "copyreg": "use json",
    "marshal": "use json",
    "shelve": "it is built on pickle; use json or sqlite3",
    "dbm": "use json or sqlite3",
    "multiprocessing": "use threading or concurrent.futures.ThreadPoolExecutor",
    "concurrent.futures.process": "use concurrent.futures.ThreadPoolExecutor",
    "gc": "walking the garbage collector's objects is not allowed",
    "dis": "code objects are not needed",
    "builtins": "use built-in functions directly",
    "code": "interactive interpreters are not allowed",
    "codeop": "compiling code at run time is not allowed",
    "pdb": "debuggers are not allowed",
    "bdb": "debuggers are not allowed",
    "trace": "tracing is not allowed",
    "cProfile": "profilers execute strings of code; use time.perf_counter()",
    "profile": "profilers execute strings of code; use time.perf_counter()",
    "pydoc": "pydoc imports modules by name",
    "site": "leave the interpreter's set-up alone",
    "sysconfig": "leave the interpreter's set-up alone",
    "pty": "scripts cannot start other programs",
    "tty": "there is no terminal",
    "termios": "there is no terminal",
    "fcntl": "low-level file control is not needed",
    "posix": "use os",
    "_thread": "use threading",
    "resource": "the container sets the limits",
    "webbrowser": "there is no browser",
    "logging.config": "fileConfig evaluates strings and dictConfig imports callables by name; use logging.basicConfig",
    "unittest.mock": "mock.patch imports objects by dotted name; write a small fake class instead",
    "requests": "the sandbox has no network and only the standard library; use hr.fetch(url) (granted hosts only)",
    "urllib3": "the sandbox has no network and only the standard library; use hr.fetch(url) (granted hosts only)",
}

STDLIB_MODULES: frozenset[str] = frozenset(sys.stdlib_module_names)

# Modules whose attributes are allowed one by one (anything else is refused).
MODULE_ATTRS_ALLOWED: dict[str, frozenset[str]] = {
    # platform, function by function: these read os.uname(), sys and files. processor(),
    # architecture(), platform() and iterating uname() start `uname -p` or `file` through the
    # PATH, which a script can point at a program it wrote; they stay refused.
    "platform": frozenset(
        """
        python_version python_version_tuple python_implementation python_compiler python_build python_branch
        python_revision system node release version machine libc_ver freedesktop_os_release
        """.split()
    ),
    # inspect, function by function: signatures and type tests. Everything that reaches frames,
    # closures, globals or all of an object's attributes (currentframe, stack, getmembers,
    # getclosurevars, getattr_static ...) stays refused; eval_str= is refused at the call.
    "inspect": frozenset(
        """
        signature Signature Parameter BoundArguments isclass isfunction ismethod isroutine isbuiltin
        iscoroutinefunction isgeneratorfunction isasyncgenfunction iscoroutine isgenerator isawaitable isabstract
        ismodule isdatadescriptor getdoc cleandoc
        """.split()
    ),
    # timeit with a callable: the statement arguments are checked at the call (call_arguments_allowed).
    # timeit.main() compiles statements from the command line: refused.
    "timeit": frozenset("timeit repeat Timer default_timer".split()),
    "os": frozenset(
        """
        path sep altsep extsep pathsep linesep defpath devnull curdir pardir name environ environb getenv getenvb
        putenv unsetenv listdir scandir walk fwalk makedirs mkdir remove unlink rmdir removedirs rename renames
        replace stat lstat fstat stat_result statvfs statvfs_result fspath fsencode fsdecode PathLike DirEntry
        getcwd getcwdb chdir cpu_count process_cpu_count sched_getaffinity getpid getppid getuid geteuid getgid
        getegid getgroups getlogin get_terminal_size terminal_size urandom getrandom utime access chmod link
        symlink readlink truncate ftruncate open close read write fdopen fsync fdatasync isatty lseek times
        times_result uname uname_result umask strerror error sync getloadavg device_encoding get_exec_path
        get_blocking get_inheritable supports_follow_symlinks supports_fd supports_dir_fd supports_effective_ids
        supports_bytes_environ
        """.split()
    ),
    "sys": frozenset(
        """
        argv orig_argv exit stdin stdout stderr version version_info hexversion api_version platform maxsize
        maxunicode byteorder float_info int_info hash_info float_repr_style getsizeof getrecursionlimit
        setrecursionlimit getdefaultencoding getfilesystemencoding getfilesystemencodeerrors exc_info exception
        implementation executable flags copyright stdlib_module_names builtin_module_names platlibdir prefix
        base_prefix exec_prefix base_exec_prefix warnoptions dont_write_bytecode thread_info getrefcount
        is_finalizing intern getswitchinterval setswitchinterval get_int_max_str_digits set_int_max_str_digits
        getallocatedblocks excepthook audit abiflags tracebacklimit
        """.split()
    ),
}
_PER_FUNCTION_REASONS = {
    "platform": "only platform's python_*, system(), machine(), release(), version() and node() are allowed: "
    "the others start programs; use sys.platform or os.uname()",
    "inspect": "only inspect.signature and the is*() type tests are allowed: the rest reaches frames and internals",
    "timeit": "use timeit.timeit(callable, number=n) or time.perf_counter()",
}
# Constants such as os.O_RDONLY, os.EX_OK, os.SEEK_END, os.R_OK.
_OS_CONSTANT = re.compile(r"^(?:O|EX|SEEK|F|R|W|X|ST)_[A-Z0-9_]+$")

_PROCESS = "scripts cannot start, signal or wait for processes, or change identity; do the work in Python"
_FRAMES = "leave the interpreter's frames and import machinery alone"
_PROCESS_NAMES = re.compile(
    r"^(?:system|popen|fork|forkpty|kill|killpg|exec|spawn|posix_spawn|wait|set|pidfd|chroot|"
    r"abort|_exit|plock|nice|sched_set|register_at_fork|login_tty|openpty|pipe|dup)"
)
# Attributes refused on otherwise allowed modules, with the reason.
MODULE_ATTRS_DENIED: dict[str, dict[str, str]] = {
    "concurrent.futures": {
        "ProcessPoolExecutor": "use ThreadPoolExecutor",
        "InterpreterPoolExecutor": "use ThreadPoolExecutor",
        "process": "use ThreadPoolExecutor",
    },
    "asyncio": {
        "create_subprocess_exec": _PROCESS,
        "create_subprocess_shell": _PROCESS,
        "subprocess": _PROCESS,
        "open_connection": "the sandbox has no network",
        "start_server": "the sandbox has no network",
        "open_unix_connection": "the sandbox has no network",
        "start_unix_server": "the sandbox has no network",
    },
    "doctest": {
        name: "only doctest.testmod() is allowed: the other entry points run code from strings or files"
        for name in (
            "run_docstring_examples testfile DocTestParser DocTestRunner DocTestFinder DocTest Example "
            "DebugRunner DocFileSuite DocFileTest script_from_examples testsource debug debug_src debug_script "
            "set_unittest_reportflags master"
        ).split()
    },
    "logging": {"currentframe": _FRAMES, "config": "use logging.basicConfig"},
    "logging.handlers": dict.fromkeys(
        "SocketHandler DatagramHandler SysLogHandler HTTPHandler SMTPHandler NTEventLogHandler".split(),
        "the sandbox has no network; log to stderr or a file under /output",
    ),
    "shutil": {"chown": "ownership cannot change in the sandbox"},
    "string": {"Formatter": "use str.format or f-strings with plain values"},
    "threading": {
        "settrace": _FRAMES,
        "setprofile": _FRAMES,
        "settrace_all_threads": _FRAMES,
        "setprofile_all_threads": _FRAMES,
    },
    "traceback": {"walk_stack": _FRAMES, "walk_tb": _FRAMES},
    # CodeType builds code from raw bytecode, and FunctionType runs it: together, exec without exec.
    # (FrameType and TracebackType stay allowed: they appear in annotations of __exit__ and signal handlers.)
    "types": {
        "FunctionType": "write a def statement",
        "LambdaType": "write a def statement",
        "CodeType": "code objects are not needed",
        "CellType": "closures are built by def statements",
        "new_class": "write a class statement",
    },
    "typing": {
        "get_type_hints": "it evaluates annotation strings as code; use the classes directly",
        "ForwardRef": "forward references are evaluated as code; use the class directly",
        "evaluate_forward_ref": "forward references are evaluated as code",
    },
    "unittest": {"mock": "write a small fake class instead of mock.patch"},
}

# Reached through sys.path, unittest discovery or loading by name: code written at run time is
# imported. Refused under strict; reviewed scaffolds may use them (GatePolicy.allow_code_loading).
CODE_LOADING: dict[str, str] = {
    "sys.path": "scripts are single files; do not change the import path",
    "unittest.TestProgram": "run a TestSuite with unittest.TextTestRunner().run(...)",
    "loadTestsFromName": "load tests with loadTestsFromTestCase(YourTestCase)",
    "loadTestsFromNames": "load tests with loadTestsFromTestCase(YourTestCase)",
    "discover": "load tests with loadTestsFromTestCase(YourTestCase); discovery imports files written at run time",
}

# Method names refused on any receiver: they are distinctive and only ever do one thing.
BANNED_METHODS: dict[str, str] = {
    "enable_load_extension": "SQLite extensions are native code; use SQL and Python",
    "load_extension": "SQLite extensions are native code; use SQL and Python",
    "subprocess_exec": "scripts cannot start other programs",
    "subprocess_shell": "scripts cannot start other programs",
    "set_executable": "scripts cannot start other programs",
    **dict.fromkeys(
        "create_connection create_server create_datagram_endpoint create_unix_connection create_unix_server "
        "sock_connect sock_accept".split(),
        "the sandbox has no network",
    ),
}

# Module attributes a script may assign; any other assignment monkey-patches a module.
STORABLE_MODULE_ATTRS = frozenset(
    {"sys.stdout", "sys.stderr", "sys.stdin", "sys.excepthook", "sys.dont_write_bytecode", "sys.tracebacklimit"}
)

BANNED_BUILTINS: dict[str, str] = {
    "eval": "parse data with json.loads or ast.literal_eval",
    "exec": "write the code directly instead of executing strings",
    "compile": "write the code directly instead of compiling strings (re.compile is fine)",
    "__import__": "use a plain `import` statement",
    "breakpoint": "remove debugging hooks",
    "globals": "pass values explicitly",
    "locals": "pass values explicitly",
    "vars": "use the object's attributes, dataclasses.asdict(obj) or a dict",
    "help": "help() imports modules by name; remove it",
}
DYNAMIC_ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})

# Attributes that expose frames, code or globals, whatever object they are read from.
INTROSPECTION_ATTRS = frozenset(
    """tb_frame gi_frame gi_code cr_frame cr_code ag_frame ag_code f_back f_globals f_locals f_builtins f_code
    f_trace f_generator co_code co_consts co_names func_globals func_code func_closure""".split()
)

# Dunder attributes that may be read: names, documentation, and the protocol methods that
# `super().__init__()`-style code calls. Everything else (__class__, __dict__, __globals__,
# __subclasses__, __mro__, __bases__, __code__, __self__, __getattribute__ ...) walks internals.
SAFE_DUNDER_READS = frozenset(
    """__name__ __qualname__ __module__ __doc__ __file__ __version__ __all__ __slots__ __annotations__ __init__
    __new__ __post_init__ __enter__ __exit__ __aenter__ __aexit__ __iter__ __next__ __aiter__ __anext__ __len__
    __contains__ __getitem__ __setitem__ __delitem__ __missing__ __str__ __repr__ __format__ __bool__ __hash__
    __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __add__ __sub__ __mul__ __truediv__ __floordiv__ __mod__ __neg__
    __abs__ __int__ __float__ __index__ __round__ __fspath__ __cause__ __context__ __notes__
    __suppress_context__ __members__""".split()
)

_NUMERIC = """add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or""".split()
# Special method names a class may define (Python's data model).
DATA_MODEL_DUNDERS = frozenset(
    """__init__ __new__ __del__ __repr__ __str__ __bytes__ __format__ __lt__ __le__ __eq__ __ne__ __gt__ __ge__
    __hash__ __bool__ __getattr__ __getattribute__ __setattr__ __delattr__ __dir__ __get__ __set__ __delete__
    __set_name__ __init_subclass__ __class_getitem__ __call__ __len__ __length_hint__ __getitem__ __setitem__
    __delitem__ __missing__ __iter__ __reversed__ __contains__ __neg__ __pos__ __abs__ __invert__ __complex__
    __int__ __float__ __index__ __round__ __trunc__ __floor__ __ceil__ __enter__ __exit__ __aenter__ __aexit__
    __await__ __aiter__ __anext__ __post_init__ __fspath__ __copy__ __deepcopy__ __getstate__ __setstate__
    __reduce__ __reduce_ex__ __getnewargs__ __getnewargs_ex__ __instancecheck__ __subclasscheck__
    __subclasshook__ __prepare__ __mro_entries__ __sizeof__ __buffer__ __release_buffer__ __next__
    __match_args__ __slots__""".split()
    + [f"__{op}__" for op in _NUMERIC]
    + [f"__r{op}__" for op in _NUMERIC]
    + [f"__i{op}__" for op in _NUMERIC]
)
# Module metadata: plain strings a script's author sets and reads (``__author__``, ``__license__``).
# Python gives none of them a meaning, so reading or assigning them reaches nothing.
_METADATA_NAMES = frozenset(
    """__version__ __author__ __date__ __license__ __copyright__ __credits__ __email__ __maintainer__ __status__
    __contact__ __title__ __description__ __url__ __docformat__ __version_info__ __created__ __updated__""".split()
)
# Dunder names a script may read, and assign (at module level or in a class body).
DUNDER_NAMES_READ = frozenset({"__name__", "__file__", "__doc__", "__debug__", "__all__"}) | _METADATA_NAMES
# `__file__ = os.path.abspath(__file__)` only changes a string the script itself reads.
DUNDER_NAMES_STORE = frozenset({"__all__", "__slots__", "__match_args__", "__hash__", "__file__"}) | _METADATA_NAMES
# Dunder attributes that may be read from a value that is not a module (policy._instance_read
# gives the reasons): __class__ is type(obj), and an object's __dict__ holds its attributes.
INSTANCE_DUNDER_READS = frozenset({"__class__", "__dict__"})
# `from m import *` is allowed for these: they hold only numeric functions and constants, each
# of which the policy allows by name (a test checks this), and the names are bound as imports.
STAR_IMPORTABLE = frozenset({"math", "cmath", "stat"})


def attribute_allowed(module: str, attr: str) -> tuple[bool, str]:
    """Whether ``module.attr`` may be used, and why not."""
    allowed = MODULE_ATTRS_ALLOWED.get(module)
    if allowed is not None and attr not in allowed and not (module == "os" and _OS_CONSTANT.match(attr)):
        if module == "sys":
            return False, _FRAMES
        if module in _PER_FUNCTION_REASONS:
            return False, _PER_FUNCTION_REASONS[module]
        if _PROCESS_NAMES.match(attr):
            return False, _PROCESS
        return False, "use os for paths, files and the environment (or pathlib); nothing else is needed"
    denied = MODULE_ATTRS_DENIED.get(module, {}).get(attr)
    if denied is not None:
        return False, denied
    return True, ""


def _keyword(node: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if 0 <= position < len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
        return node.args[position]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


# timeit.timeit/repeat/Timer compile a string statement (and setup) with exec: only callables.
_TIMEIT_CALLS = frozenset({"timeit.timeit", "timeit.repeat", "timeit.Timer"})


def call_arguments_allowed(
    name: str, node: ast.Call, is_callable: Callable[[ast.expr | None], bool]
) -> tuple[str, str] | None:
    """(message, hint) when an allowed function is called with arguments that make it run strings as code."""
    if name in _TIMEIT_CALLS:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return f"{name}() with unpacked arguments", "pass the function to time directly"
        for position, keyword in ((0, "stmt"), (1, "setup")):
            if not is_callable(_keyword(node, position, keyword)):
                return (
                    f"{name}() with a {keyword} that is not a function: timeit runs strings as code",
                    f"pass a function or a lambda: {name}(lambda: work(), number=100)",
                )
    elif name.startswith("inspect."):
        if any(k.arg in ("eval_str", "globals", "locals") or k.arg is None for k in node.keywords):
            return f"{name}() with eval_str/globals/locals evaluates annotation strings", "leave annotations alone"
    return None
