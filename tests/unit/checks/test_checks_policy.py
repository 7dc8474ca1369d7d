"""The AST policy: every rule trips on its case and stays quiet on its near miss."""

from __future__ import annotations

import pytest

from harness.checks import ALLOWED_MODULES, POLICIES, gate, module_allowed, run_checks
from harness.checks.names import module_attribute
from harness.checks.policy import PolicyOptions, check_policy
from harness.checks.rules import DENIED_MODULES


def errors(source: str, policy: str = "strict") -> set[str]:
    return {f.code for f in run_checks(source, policy).findings if f.severity == "error"}


def policy_codes(source: str, severity: str = "error") -> set[str]:
    return {f.code for f in run_checks(source).findings if f.checker == "policy" and f.severity == severity}


# (code, trips, near miss): the near miss must raise no error at all.
RULES = [
    ("HP101", "import subprocess", "import json"),
    ("HP101", "import xml.sax", "import xml.etree.ElementTree as ET"),
    ("HP101", "import urllib.request", "from urllib.parse import quote"),
    ("HP101", "from . import sibling", "from pathlib import Path"),
    ("HP101", "import logging.config", "import logging.handlers"),
    ("HP102", "eval('1')", "import ast\nast.literal_eval('1')"),
    ("HP102", "exec('x = 1')", "x = 1"),
    ("HP102", "c = compile('1', 'f', 'eval')", "import re\nc = re.compile('x')"),
    ("HP102", "print(globals())", "print(dir())"),
    ("HP103", "import os\nos.system('x')", "import os\nos.path.join('a', 'b')"),
    ("HP103", "import os\nos.popen('x')", "import os\nprint(os.environ.get('HOME', '/work'))"),
    ("HP103", "from os import execv", "from os import walk, listdir, makedirs"),
    ("HP103", "import sys\nsys._getframe()", "import sys\nprint(sys.argv[1:], file=sys.stderr)"),
    ("HP103", "import sys\nprint(sys.modules)", "import sys\nsys.exit(0)"),
    ("HP103", "import shutil\nshutil.chown('/tmp/x', 'root')", "import shutil\nshutil.move('/tmp/a', '/output/a')"),
    ("HP103", "import doctest\ndoctest.testfile('/tmp/t.txt')", "import doctest\ndoctest.testmod()"),
    ("HP104", "x = print.__self__", "class A:\n    def __init__(self):\n        super().__init__()"),
    (
        "HP104",
        "import json\nd = json.__dict__",
        "class A:\n    def __repr__(self):\n        return self.__class__.__name__",
    ),
    ("HP104", "x = ().__class__.__base__.__subclasses__()", "x = type(()).__name__"),
    ("HP104", "def f(): pass\nf.__doc__ = 'x'", "def f(): pass\nprint(f.__doc__, f.__name__)"),
    ("HP104", "getattr(object, '__subclasses__')", "getattr(object, '__name__', '')"),
    (
        "HP104",
        "class P:\n    def f(self, n):\n        object.__setattr__(self, n, 1)",
        "class P:\n    def __post_init__(self):\n        object.__setattr__(self, 'tags', ())",
    ),
    ("HP105", "x = __builtins__", "if __name__ == '__main__':\n    print(__file__)"),
    ("HP105", "def __getglobals__(): pass", "class A:\n    def __repr__(self):\n        return 'A'"),
    ("HP105", "class A:\n    __doc__ = 'x'", "class A:\n    __slots__ = ('a',)\n    __hash__ = None"),
    ("HP106", "n = '__cla' + input()\ngetattr(object(), n)", "n = input()\ngetattr(object(), n, None)"),
    ("HP106", "class A:\n    pass\nn = input()\nsetattr(A, n, 1)", "n = input()\nsetattr(object(), n, 1)"),
    ("HP106", "import os\ndef run(k):\n    return getattr(os, k)()", "def run(o, k):\n    return getattr(o, k)()"),
    (
        "HP106",
        "import os\ngetattr(os, 'sys' + 'tem')",
        "class A:\n    def go(self, k):\n        return getattr(self, 'on' + k)",
    ),
    ("HP106", "fetch = getattr", "value = getattr(1, 'real')"),
    ("HP107", "'{0.__class__}'.format(1)", "'{0.real} {name}'.format(1, name='x')"),
    ("HP107", "'{0.gi_frame}'.format(1)", "'{0[key]} {0[1]}'.format({'key': 1, 1: 2})"),
    ("HP107", "'{0.__init__.__globals__}'.format(int)", "'{0.__name__}: {0.__doc__}'.format(int)"),
    ("HP107", "x = '{f.__globals__[os]}'", "x = '{value:>{width}}'.format(value=1, width=4)"),
    ("HP108", "def g():\n    yield\ng().gi_frame", "def g():\n    yield\nnext(g(), None)"),
    ("HP108", "import sys\nsys.exc_info()[2].tb_frame", "import traceback\ntraceback.format_exc()"),
    ("HP109", "import tempfile\ntempfile._os", "import tempfile\ntempfile.mkdtemp()"),
    ("HP109", "import logging\nlogging.os.getcwd()", "import logging\nlogging.getLogger('x').info('y')"),
    ("HP109", "import os\nmods = [os]", "import os\nalias = os\nalias.getcwd()"),
    ("HP109", "import json\njson.loads = print", "import sys\nsys.stdout = sys.stderr"),
    ("HP110", "open('/etc/x', 'w')", "open('/output/x', 'w')\nopen('/etc/hosts')"),
    ("HP110", "open('/input/a.csv', 'a')", "open('/input/a.csv')\nopen('/tmp/a', 'w')\nopen('rel.txt', 'w')"),
    (
        "HP110",
        "from pathlib import Path\nPath('/etc/a').write_text('x')",
        "from pathlib import Path\nPath('/etc/a').read_text()",
    ),
    (
        "HP110",
        "import shutil\nshutil.copy('/input/a', '/usr/a')",
        "import shutil\nshutil.copy('/input/a', '/output/a')",
    ),
    ("HP110", "open('/tmp/../etc/x', 'w')", "open('/tmp/sub/../x', 'w')"),
    ("HP110", "open('helper.py', 'w')", "open('/output/helper.py', 'w')"),
    ("HP111", "open('/proc/1/environ')", "open('/input/proc.txt')\nopen('/proc/cpuinfo')"),
    ("HP111", "from pathlib import Path\nPath('/sys/kernel/x').read_text()", "open('/dev/null', 'w')"),
    ("HP112", "from os import *", "from os import path"),
    ("HP113", "T = type('T', (), {})", "t = type(1)"),
    ("HP114", "import codecs\ncodecs.decode('k', 'rot_13')", "import codecs\ncodecs.decode(b'6869', 'hex')"),
    ("HP115", "def f(x: print('x')) -> None: pass", "def f(x: 'int | None' = None, *a: int) -> list[str]: pass"),
    ("HP115", "x: int + 1 = 1", "from typing import Literal\nx: Literal[-1, 'a'] = -1"),
]


@pytest.mark.parametrize(("code", "trips", "near_miss"), RULES, ids=[f"{r[0]}-{i}" for i, r in enumerate(RULES)])
def test_each_rule_trips_and_its_near_miss_does_not(code: str, trips: str, near_miss: str) -> None:
    assert code in errors(trips), [f.one_line() for f in run_checks(trips).findings]
    assert not errors(near_miss), [f.one_line() for f in run_checks(near_miss).findings if f.severity == "error"]
    assert not policy_codes(near_miss, "warning")


def test_findings_are_located_and_actionable() -> None:
    report = run_checks("import os\n\nos.system('rm -rf /')\n")
    finding = next(f for f in report.findings if f.code == "HP103")
    assert (finding.line, finding.col, finding.checker) == (3, 0, "policy")
    assert "os.system" in finding.message and "Python" in finding.hint
    assert finding.one_line().startswith("HP103 line 3:0 error: os.system is not allowed.")


def test_full_width_identifiers_are_checked_as_python_reads_them() -> None:
    assert "HP102" in errors("\uff45\uff56\uff41\uff4c('1')")  # ｅｖａｌ
    assert "HP104" in errors("x = ().__\uff53\uff49\uff5a\uff45\uff4f\uff46__")  # __ｓｉｚｅｏｆ__
    assert "HP101" in errors("import \uff53\uff4f\uff43\uff4b\uff45\uff54")  # ｓｏｃｋｅｔ
    # ...and the spelling itself is reported, so a reviewer is not fooled either.
    assert "HS011" in errors("\uff50\uff52\uff49\uff4e\uff54(1)")
    assert not errors("caf\u00e9 = 1\nprint(caf\u00e9)")  # ordinary non-ASCII names are fine


def test_getattr_with_an_identifier_prefix_cannot_reach_internals() -> None:
    assert "HP106" in errors("def f(o, n):\n    return getattr(o, f'_{n}')")
    assert "HP106" in errors("def f(o, n):\n    return getattr(o, f'{n}_handler')")
    assert not errors("def f(o, n):\n    return getattr(o, f'handle_{n}', None)")


def test_attribute_names_from_literal_loops_and_constants_are_checked_as_literals() -> None:
    assert not errors("class A:\n    a = 1\nfor f in ('a', 'b'):\n    print(getattr(A, f, None))")
    assert not errors("print([getattr(1, f) for f in ['real', 'imag']])")
    assert not errors("FIELD = 'real'\nprint(getattr(1, FIELD))")
    assert "HP104" in errors("for f in ('real', '__class__'):\n    print(getattr(1, f))")
    assert "HP106" in errors("FIELD = 'real'\nFIELD = input()\nprint(getattr(1, FIELD))")
    assert "HP104" in errors("import operator\nfor m in ('upper', '__reduce__'):\n    operator.methodcaller(m)('x')")
    assert "HP106" in errors("args = ((), '__class__')\ngetattr(*args)")
    assert "HP106" in errors("import operator\nnames = ['a']\noperator.attrgetter(*names)")


def test_type_names_used_in_annotations_are_fine() -> None:
    source = (
        "import signal\nimport types\n"
        "def on_term(signum: int, frame: types.FrameType | None) -> None:\n    pass\n"
        "class Guard:\n"
        "    def __exit__(self, kind: type, exc: BaseException, tb: types.TracebackType | None) -> None:\n"
        "        return None\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
    )
    assert not errors(source)
    assert "HP103" in errors("import types\ncode = types.CodeType")


def test_hasattr_with_a_computed_name_passes_on_the_scripts_objects_only() -> None:
    # hasattr answers True or False: harmless on the script's own values...
    assert run_checks("def f(o, n):\n    return hasattr(o, n)", "strict").passed
    # ...but on a module the name could be anything the module holds (the module is also used as a value).
    source = "import os\n\n\ndef f(n):\n    return hasattr(os, n)"
    assert policy_codes(source, "warning") == {"HP106"}
    assert not run_checks(source, "strict").passed and not run_checks(source, "standard").passed


def test_modules_reached_through_allowed_modules() -> None:
    assert module_attribute("logging", "os") == "os"
    assert module_attribute("os", "path") == "os.path"
    assert module_attribute("xml.etree", "ElementTree") == "xml.etree.ElementTree"
    assert module_attribute("json", "dumps") is None
    for source in (
        "import shutil\nshutil.os.system('x')",
        "import glob\nglob.os.getcwd()",
        "from logging import sys",
        "import os.path\nos.path.os.getcwd()",
        "import harness_runtime as hr\nhr.json.dumps(1)",
        "import tempfile as t\nt._os.getcwd()",
    ):
        assert "HP109" in errors(source), source
    assert "HP101" in errors("import urllib.parse\nurllib.request.urlopen('x')")


def test_module_aliases_are_followed() -> None:
    assert "HP103" in errors("import os\na = os\nb = a\nb.fork()")
    assert "HP103" in errors("import os as o\no.kill(1, 9)")
    assert "HP103" in errors("from os import path as p\nimport os\nq = os\nq.execv('x', [])")
    assert not errors("import os.path as p\nprint(p.join('a', 'b'))")


def test_dunder_definitions_in_classes_are_fine_but_odd_ones_are_not() -> None:
    source = (
        "class Box:\n"
        "    __slots__ = ('items',)\n"
        "    def __init__(self):\n        self.items = []\n"
        "    def __len__(self):\n        return len(self.items)\n"
        "    def __enter__(self):\n        return self\n"
        "    def __exit__(self, *exc):\n        return False\n"
        "    __radd__ = __len__\n"
    )
    assert not errors(source)
    assert "HP105" in errors("class Box:\n    def __test__(self):\n        pass")


def test_doctest_examples_are_checked_as_code() -> None:
    body = 'def f():\n    """Doc.\n\n    >>> import os\n    >>> os.system("id")\n    0\n    """\n'
    source = "import doctest\n" + body + "doctest.testmod()\n"
    finding = next(f for f in run_checks(source).findings if f.code == "HP103")
    assert finding.line == 6 and finding.message.startswith("in a doctest example:")
    assert not errors('def f():\n    """Doc.\n\n    >>> f()\n    1\n    """\n    return 1\n')
    # Only doctest runs examples: without it they are documentation, whatever they import.
    assert not errors(body)
    usage = '"""Summaries.\n\n>>> import numpy as np\n>>> np.mean([1, 2])\n1.5\n"""\nimport statistics\n'
    assert run_checks(usage).passed
    assert "HP101" in errors("import doctest\n" + usage)


def test_string_annotations_are_checked_as_code() -> None:
    assert "HP102" in errors("def f(x: \"eval('1')\"): pass")
    assert "HP104" in errors("x: 'int.__mro__' = 1")
    assert not errors("from __future__ import annotations\ndef f(x: 'list[int] | None') -> 'dict[str, int]': pass")


def test_unittest_loading_by_name_is_refused_under_strict_only() -> None:
    loaders = [
        "import unittest\nunittest.defaultTestLoader.discover('/tmp')",
        "import unittest\nunittest.TestLoader().loadTestsFromNames(['os.getcwd'])",
        "import unittest\nunittest.main(defaultTest='os.getcwd')",
        "import unittest\nunittest.main(argv=['x', 'tempfile._os.getcwd'])",
        "import unittest\nname = input()\nunittest.main(argv=['x', name])",
        "import sys\nsys.path.append('/tmp')",
    ]
    for source in loaders:
        assert "HP103" in errors(source, "strict"), source
        assert not errors(source, "standard"), source
        assert any(f.code == "HP103" and f.severity == "info" for f in run_checks(source, "standard").findings)
    fine = (
        "import sys, unittest\n"
        "class T(unittest.TestCase):\n    def test_a(self):\n        self.assertTrue(True)\n"
        "unittest.main(argv=[sys.argv[0], '-v'], exit=False)\n"
        "unittest.main(defaultTest='T', exit=False)\n"
        "unittest.main(argv=sys.argv[:1], exit=False)\n"
        "suite = unittest.defaultTestLoader.loadTestsFromTestCase(T)\n"
    )
    assert not errors(fine, "strict")


def test_format_templates_computed_at_run_time_are_noted_not_refused() -> None:
    report = run_checks("def show(template, row):\n    return template.format(**row)\n")
    notes = [f for f in report.findings if f.code == "HP107"]
    assert notes and all(f.severity == "info" for f in notes) and report.passed
    assert not [f for f in run_checks("T = '{a}'\nprint(T.format(a=1))").findings if f.code == "HP107"]


def test_allow_list_lives_in_one_place_and_can_be_extended() -> None:
    assert {"json", "csv", "pathlib", "os", "sys", "zipfile", "harness_runtime", "sqlite3"} <= ALLOWED_MODULES
    assert not {"subprocess", "socket", "pickle", "ctypes", "importlib"} & ALLOWED_MODULES
    assert module_allowed("xml.etree.ElementTree") and not module_allowed("xml.sax")
    assert module_allowed("urllib.parse") and not module_allowed("urllib.request") and not module_allowed("urllib")
    assert not module_allowed("unittest.mock") and module_allowed("unittest")
    assert module_allowed("socket", frozenset({"socket"}))  # an explicit grant wins over the deny-list
    assert "socket" in DENIED_MODULES
    extended = POLICIES["standard"].extend("socket")
    source = "import socket\nprint(socket.gethostname())\n"
    assert "HP101" in errors(source, "standard")
    report = run_checks(source, extended)
    assert report.passed and gate(report, extended).passed and not report.errors()
    assert "socket" in extended.extra_modules and "socket" not in POLICIES["standard"].extra_modules


def test_check_policy_can_be_called_on_its_own() -> None:
    import ast

    findings = check_policy(ast.parse("import subprocess"), PolicyOptions())
    assert [f.code for f in findings] == ["HP101"]
    assert check_policy(ast.parse("import subprocess"), PolicyOptions(extra_modules=frozenset({"subprocess"}))) == []
