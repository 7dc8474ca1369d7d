"""Benchmark: the gate's accuracy in both directions, before (main) and after (this tree).

    .venv/bin/python bench/gate_accuracy.py [--ref main] [--json] [--list]

Three corpora:

* bypasses: tests/fixtures/checks/bad, each a known way around the gate; recall is the share
  refused under strict (it must be 100%);
* benign: tests/fixtures/checks/benign, ordinary scripts of the kinds users ask for, written
  for this purpose; the pass rate under each policy (goal: at least 98%);
* examples: the scripts Debian's ``python3.11-examples`` installs under
  /usr/share/doc/python3.11/examples (code nobody on the team wrote), when present. Only
  standard-library automation and algorithm code counts; each excluded file is listed with the
  reason (``classify``), decided from the source alone, never from the gate's verdict.

"Before" runs the same measurement on the harness package of ``--ref`` (extracted with
``git archive`` into a temporary folder and run in a subprocess), so both numbers come from
the same corpora on the same machine.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "checks"
EXAMPLES = Path("/usr/share/doc/python3.11/examples")
POLICIES = ("strict", "standard")

# Why a file is not "ordinary automation or algorithm code" for the sandbox, by what it imports or calls.
_EXCLUDED_IMPORTS: dict[str, str] = {
    **dict.fromkeys(["tkinter", "turtle", "idlelib", "curses"], "a GUI or full-screen terminal program"),
    **dict.fromkeys(
        ["socket", "ssl", "http", "urllib.request", "ftplib", "smtplib", "webbrowser", "xmlrpc", "socketserver"],
        "network code (the sandbox has no network)",
    ),
    **dict.fromkeys(["subprocess", "multiprocessing", "pty", "concurrent.futures.process"], "starts other programs"),
    **dict.fromkeys(
        [
            "ctypes",
            "dis",
            "marshal",
            "pickle",
            "importlib",
            "sysconfig",
            "distutils",
            "gc",
            "gdb",
            "opcode",
            "runpy",
            "compileall",
            "py_compile",
            "lib2to3",
            "trace",
            "pdb",
            "profile",
            "cProfile",
            "test",
            "_testcapi",
            "setuptools",
            "site",
            "builtins",
            "dbm",
            "shelve",
            "bsddb",
            "ensurepip",
            "venv",
            "zipimport",
        ],
        "a tool for the interpreter itself (bytecode, imports, pickles, builds)",
    ),
    **dict.fromkeys(["winreg", "msvcrt", "_winapi", "msilib", "win32api", "win32con", "nt"], "Windows-only"),
}
_PROCESS_CALLS = frozenset(
    "system popen execv execve execvp execl execlp spawnv spawnl fork forkpty startfile posix_spawn".split()
)
_INTERNALS = frozenset({"_getframe", "modules", "setcheckinterval", "getdxp", "path"})


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def classify(path: Path, source: bytes) -> str | None:
    """Why ``path`` is not counted as ordinary standard-library code (None: it is counted)."""
    try:
        text = source.decode("utf-8")
        tree = ast.parse(text)
    except (UnicodeDecodeError, SyntaxError, ValueError):
        return "not Python 3.11 source in UTF-8"
    if (path.parent / "__init__.py").exists():
        return "a module of a multi-file package, not a script"
    tool = path.parent
    if EXAMPLES in path.parents:
        while tool.parent != EXAMPLES:
            tool = tool.parent  # the example's own folder (c-analyzer, peg_generator ...)
    siblings = {p.stem for p in tool.rglob("*.py")} | {p.name for p in tool.rglob("*") if p.is_dir()}
    stdlib = set(sys.stdlib_module_names)
    for module, level in _imports(tree):
        top = module.split(".")[0]
        if level or (top in siblings and top not in stdlib):
            return "part of a multi-file tool (imports its own modules)"
        for prefix in (module, top):
            if prefix in _EXCLUDED_IMPORTS:
                return _EXCLUDED_IMPORTS[prefix]
        if top and top not in stdlib and top != "__future__":
            return "needs a module outside the standard library"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("eval", "exec", "compile", "__import__"):
                return "runs code built from strings (eval/exec/compile)"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr in _PROCESS_CALLS:
                return "starts other programs"
            if node.value.id == "sys" and node.attr in _INTERNALS:
                return "a tool for the interpreter itself (bytecode, imports, pickles, builds)"
    return None


def corpus(name: str) -> list[Path]:
    """The files of one corpus: bypasses, benign or examples."""
    if name == "bypasses":
        return sorted((FIXTURES / "bad").glob("*.py"))
    if name == "benign":
        return sorted((FIXTURES / "benign").glob("*.py"))
    return sorted(EXAMPLES.rglob("*.py")) if EXAMPLES.is_dir() else []


def examples_split() -> tuple[list[Path], dict[str, str]]:
    """The examples that count, and the excluded ones with the reason for each."""
    counted, excluded = [], {}
    for path in corpus("examples"):
        reason = classify(path, path.read_bytes())
        if reason is None:
            counted.append(path)
        else:
            excluded[str(path.relative_to(EXAMPLES))] = reason
    return counted, excluded


def measure() -> dict[str, object]:
    """Verdicts of the harness.checks importable here, per corpus and policy."""
    from harness.checks import gate, run_checks

    counted, _ = examples_split()
    results: dict[str, object] = {}
    bad = corpus("bypasses")
    caught = [p.name for p in bad if not run_checks(p.read_bytes(), "strict").passed]
    results["bypasses"] = {
        "total": len(bad),
        "caught": len(caught),
        "missed": sorted({p.name for p in bad} - set(caught)),
    }
    for name, files in (("benign", corpus("benign")), ("examples", counted)):
        per_policy = {}
        for policy in POLICIES:
            failed = []
            for path in files:
                report = run_checks(path.read_bytes(), policy)
                if not report.passed:
                    codes = sorted({f.code for f in gate(report, policy).blocking})
                    failed.append(f"{path.relative_to(path.parents[1])}: {' '.join(codes)}")
            per_policy[policy] = {"total": len(files), "passed": len(files) - len(failed), "failed": failed}
        results[name] = per_policy
    return results


def measure_ref(ref: str) -> dict[str, object]:
    """``measure()`` on the harness package of a git ref, in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="gate-ref-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "harness"], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.isfile() or m.isdir()])
        env = {**os.environ, "PYTHONPATH": tmp}
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import harness.checks as c; "
            "assert c.__file__.startswith(sys.argv[1]), c.__file__; "
            "sys.path.insert(0, sys.argv[2]); import gate_accuracy as g; print(json.dumps(g.measure()))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, tmp, str(ROOT / "bench")], check=True, capture_output=True, text=True, env=env
        ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def _rate(part: dict[str, object]) -> str:
    total = int(part["total"])  # type: ignore[call-overload]
    passed = int(part["passed"])  # type: ignore[call-overload]
    return f"{passed}/{total} pass ({passed / total:.1%}; refused {1 - passed / total:.1%})" if total else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main", help="git ref measured as 'before' (default: main)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--list", action="store_true", help="list excluded examples and every failure")
    args = parser.parse_args()
    after = measure()
    before = measure_ref(args.ref)
    counted, excluded = examples_split()
    if args.json:
        print(json.dumps({"before": before, "after": after, "excluded": excluded}, indent=2))
        return
    print(f"examples: {len(counted)} counted, {len(excluded)} excluded ({EXAMPLES})")
    for reason, count in Counter(excluded.values()).most_common():
        print(f"  excluded {count:3}: {reason}")
    for label, result in ((f"before ({args.ref})", before), ("after (this tree)", after)):
        bypasses = result["bypasses"]
        assert isinstance(bypasses, dict)
        print(f"{label}")
        print(f"  bypass recall (strict): {bypasses['caught']}/{bypasses['total']}  missed: {bypasses['missed']}")
        for name in ("benign", "examples"):
            part = result[name]
            assert isinstance(part, dict)
            for policy in POLICIES:
                print(f"  {name:8} {policy:8}: {_rate(part[policy])}")
                if args.list:
                    for failure in part[policy]["failed"]:
                        print(f"      {failure}")
    if args.list:
        for name, reason in sorted(excluded.items()):
            print(f"excluded: {name}: {reason}")


if __name__ == "__main__":
    main()
