"""Ordinary code the gate used to refuse (issue 9, "the gate refuses too much"), and the near misses that stay refused.

Each test pairs what now passes with the attack shape right next to it, so a rule that is
loosened too far fails here.
"""

from __future__ import annotations

import importlib

import pytest

from harness.checks import run_checks
from harness.checks.names import module_attribute, star_names
from harness.checks.rules import STAR_IMPORTABLE, attribute_allowed


def passes(source: str) -> bool:
    return run_checks(source, "strict").passed and run_checks(source, "standard").passed


def codes(source: str, policy: str = "strict") -> set[str]:
    report = run_checks(source, policy)
    return {f.code for f in report.findings if f.severity == "error" or (f.severity == "warning" and not report.passed)}


# -- setattr/getattr/hasattr with a computed name on the script's own objects ------------------
def test_config_loader_sets_attributes_from_data() -> None:
    source = (
        "import json\n\nclass Config:\n    def __init__(self, path):\n"
        "        for key, value in json.load(open(path)).items():\n            setattr(self, key, value)\n"
        "    def get(self, key):\n        return getattr(self, key, None)\n"
        "    def has(self, key):\n        return hasattr(self, key)\n"
    )
    assert passes(source)


def test_computed_names_stay_refused_on_modules_classes_and_spelled_internals() -> None:
    assert "HP106" in codes("import os\nname = input()\ngetattr(os, name)('id')")
    assert "HP106" in codes("class A:\n    pass\nkey = input()\nsetattr(A, key, 1)")  # a class: behaviour
    assert "HP106" in codes("n = '__cla' + 'ss__'\nprint(getattr(1, n))")  # built from text
    assert "HP106" in codes("n = ''.join(['__cl', 'ass__'])\nprint(getattr(1, n))")
    assert "HP106" in codes("def f(o, n):\n    return getattr(o, n)\nf(f, '__globals__')")  # spelled elsewhere
    assert "HP106" in codes("x = object()\nfor n in dir(x):\n    getattr(x, n)")  # dir() hands out dunders


# -- module metadata ----------------------------------------------------------------------------
def test_module_metadata_can_be_set_and_read() -> None:
    source = (
        '__author__ = "A. Writer"\n__date__ = "2024-01-01"\n__license__ = "MIT"\n'
        '__copyright__ = "(c) 2024"\n__version__ = "1.0"\nprint(__author__, __version__, __license__)\n'
    )
    assert passes(source)
    assert "HP105" in codes("b = __builtins__")
    assert "HP105" in codes("spec = __loader__")


# -- a module name used as a value where it is harmless ----------------------------------------
def test_optional_import_fallback() -> None:
    source = (
        "try:\n    import tomllib\nexcept ImportError:\n    tomllib = None\n\n"
        "def load(path):\n    if tomllib is None:\n        return {}\n"
        "    with open(path, 'rb') as f:\n        return tomllib.load(f)\n"
        "print('toml' if tomllib else 'no toml', not tomllib)\n"
    )
    assert passes(source)


def test_module_identity_is_harmless_but_equality_and_passing_are_not() -> None:
    assert "HP109" in codes("import os\nclass Spy:\n    def __eq__(self, other):\n        return other\nSpy() == os")
    assert "HP109" in codes("import os\ndef run(m):\n    return m.system('id')\nrun(os)")
    assert "HP109" in codes("import os\nm = os or None")


def test_local_names_shadowing_modules_are_not_the_module() -> None:
    source = (
        "import json\nimport time\n\ndef summary(entries):\n    result = {}\n"
        "    for name, time in entries:\n        result[name] = time * 1000\n    return result\n\n"
        "def encode(data):\n    json = dict(data)\n    return json\n\nprint(encode(summary([('a', time.time())])))\n"
    )
    assert passes(source)
    # A local alias of a module is still the module.
    assert "HP103" in codes("import os\ndef f():\n    o = os\n    return o.system('id')")
    assert "HP109" in codes("import os\ndef f():\n    o = os\n    return [o]")


def test_module_feature_checks() -> None:
    assert passes("import tarfile\nimport os\nprint(hasattr(tarfile, 'data_filter'), hasattr(os, 'fsdecode'))")
    assert passes("import functools\ncache = getattr(functools, 'cache', None)")
    assert "HP103" in codes("import os\nprint(hasattr(os, 'system'))")  # judged like os.system
    assert "HP103" in codes("import os\ngetattr(os, 'system')('id')")


def test_a_module_in_an_annotation_only_where_it_is_never_evaluated() -> None:
    assert passes("from __future__ import annotations\nimport datetime\ndef f(d: datetime) -> str:\n    return str(d)")
    assert passes("import datetime\ndef f():\n    d: datetime = None\n    return d")
    # Evaluated annotations keep the module in __annotations__ (and dataclasses.fields): refused.
    assert "HP109" in codes("import os\ndef f(x: os):\n    pass\nf.__annotations__['x'].system('id')")


# -- per function rather than per module ---------------------------------------------------------
def test_platform_per_function() -> None:
    assert passes("import platform\nprint(platform.python_version(), platform.system(), platform.machine())")
    # processor() and platform() start `uname -p` through the PATH, which a script can redirect.
    assert "HP103" in codes("import platform\nprint(platform.processor())")
    assert "HP103" in codes("import platform\nprint(platform.platform())")
    assert "HP103" in codes("from platform import architecture")


def test_concurrent_futures_both_spellings() -> None:
    assert passes("from concurrent import futures\nwith futures.ThreadPoolExecutor() as pool:\n    pass")
    assert passes("import concurrent.futures\nconcurrent.futures.ThreadPoolExecutor")
    assert "HP103" in codes("from concurrent import futures\nfutures.ProcessPoolExecutor()")
    assert "HP101" in codes("from concurrent import *")


def test_inspect_signature_only() -> None:
    assert passes("import inspect\ndef f(a, b=1):\n    pass\nprint(inspect.signature(f), inspect.isfunction(f))")
    assert "HP103" in codes("import inspect\nprint(inspect.currentframe())")
    assert "HP103" in codes("import inspect\nprint(inspect.getmembers(1))")
    assert "HP103" in codes("import inspect\ndef f(x: 'eval(1)'):\n    pass\ninspect.signature(f, eval_str=True)")


def test_timeit_with_a_callable_only() -> None:
    assert passes("from timeit import timeit\ndef work():\n    sum(range(10))\nprint(timeit(work, number=5))")
    assert passes("import timeit\nprint(timeit.timeit(lambda: sorted([3, 1]), number=5))")
    assert "HP103" in codes("from timeit import timeit\ntimeit('import os; os.system(\"id\")')")
    assert "HP103" in codes("import timeit\nstmt = 'x = 1'\ntimeit.Timer(stmt).timeit()")
    assert "HP103" in codes("import timeit\ndef f():\n    pass\ntimeit.timeit(f, setup='import os')")
    assert "HP103" in codes("import timeit\ntimeit.main()")
    # globals() is still refused, even for timeit: with a callable statement it is not needed.
    assert "HP102" in codes("import timeit\ndef f():\n    pass\ntimeit.timeit(f, globals=globals())")


def test_star_import_of_numeric_modules() -> None:
    assert passes("from math import *\nprint(sqrt(2), pi, floor(2.5))")
    assert "HP112" in codes("from os import *")
    assert "HP112" in codes("from string import *")


@pytest.mark.parametrize("module", sorted(STAR_IMPORTABLE))
def test_star_importable_modules_export_only_allowed_plain_names(module: str) -> None:
    importlib.import_module(module)
    for name in star_names(module):
        assert attribute_allowed(module, name)[0], (module, name)
        assert module_attribute(module, name) is None, (module, name)  # no module reached through it
        assert not name.startswith("_")


# -- obj.__dict__, vars(obj), __class__ ----------------------------------------------------------
def test_instance_dict_vars_and_class_name() -> None:
    source = (
        "import argparse\n\nclass Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
        "    def __repr__(self):\n        return f'{self.__class__.__name__}({vars(self)})'\n"
        "    def as_dict(self):\n        return dict(self.__dict__)\n\n"
        "args = argparse.ArgumentParser().parse_args([])\nprint(vars(args), Point(1, 2))\n"
    )
    assert passes(source)
    assert "HP102" in codes("print(vars()['__builtins__'])")
    assert "HP102" in codes("import os\nprint(vars(os)['system'])")
    assert "HP104" in codes("import os\nprint(os.__dict__['system'])")
    assert "HP104" in codes("classes = ().__class__.__bases__[0].__subclasses__()")
    assert "HP104" in codes("def f():\n    pass\nprint(f.__globals__)")
    assert "HP104" in codes("class A:\n    pass\nA().__class__ = int")


# -- the script's own help, a parameter named vars, globals() for timeit -------------------------
def test_own_help_function_and_vars_parameter() -> None:
    assert passes("def help():\n    print('usage: tool [options]')\n\nhelp()\n")
    assert passes("def render(text, vars):\n    return text.format(**vars)\n\nprint(render('{a}', {'a': 1}))\n")
    assert "HP102" in codes("help('subprocess')")
    # An alias of the built-in is still the built-in, and defaults are read outside the function.
    assert "HP102" in codes("vars = vars\nprint(vars()['__builtins__'])")
    assert "HP102" in codes("def f(vars=vars):\n    return vars()\nf()")
    assert "HP102" in codes("print([vars for vars in vars()])")
    assert "HP102" in codes("def f():\n    global help\n    help = help\nf()\nhelp('os')")


# -- .replace() is not a file write --------------------------------------------------------------
def test_str_replace_with_a_slash_is_not_a_write() -> None:
    assert passes("import datetime\ndate = datetime.date.today().strftime('%Y/%m/%d')\nprint(date.replace('/', '-'))")
    assert passes("import datetime\nd = datetime.date(2024, 1, 1)\nprint(d.replace(year=2025))")
    assert "HP110" in codes("from pathlib import Path\nPath('/output/a.txt').replace('/etc/passwd')")
    assert "HP110" in codes("from pathlib import Path\nPath('/tmp/a').rename('/usr/lib/x')")


# -- doctest examples are code only where doctest runs them -------------------------------------
def test_docstring_examples_without_doctest_are_documentation() -> None:
    assert passes('"""Stats.\n\n>>> import numpy as np\n>>> np.mean([1, 2])\n1.5\n"""\nimport statistics\n')
    assert "HP102" in codes('"""Doc.\n\n>>> __import__("os").getcwd()\n"""\nimport doctest\ndoctest.testmod()\n')


# -- archives: unfiltered tar extraction, and extraction into the working directory --------------
def test_unfiltered_tar_extraction_blocks_under_strict_only() -> None:
    source = "import tarfile\n\nwith tarfile.open('/input/a.tar') as tar:\n    tar.extractall('/tmp/out')\n"
    strict, standard = run_checks(source, "strict"), run_checks(source, "standard")
    finding = next(f for f in strict.findings if f.code == "HP116")
    assert not strict.passed and standard.passed
    # The sandbox's Python 3.11.2 has no filter="data": the hint picks members instead.
    assert "members=" in finding.hint and "filter" not in finding.hint and "isfile" in finding.hint
    safe = (
        "import tarfile\n\nwith tarfile.open('/input/a.tar') as tar:\n"
        "    ok = [m for m in tar.getmembers() if m.isfile() and not m.name.startswith('/')]\n"
        "    tar.extractall('/tmp/out', members=ok)\n"
    )
    assert passes(safe)
    # A zip's extractall is not a tar's.
    assert passes("import zipfile\n\nwith zipfile.ZipFile('/input/a.zip') as z:\n    z.extractall('/tmp/out')\n")


@pytest.mark.parametrize(
    "source",
    [
        # Issue 9, item 10: an archive carrying winreg.py unpacked into /work, then mimetypes imports it.
        "import zipfile\nimport mimetypes\nzipfile.ZipFile('/input/payload.zip').extractall()\nmimetypes.init()",
        "import zipfile\nwith zipfile.ZipFile('/input/payload.zip') as z:\n    z.extract('winreg.py')",
        "import zipfile\nwith zipfile.ZipFile('/input/p.zip') as z:\n    z.extractall('.')",
        "import zipfile\nwith zipfile.ZipFile('/input/p.zip') as z:\n    z.extractall(path='/work')",
        "import tarfile\nwith tarfile.open('/input/p.tar') as t:\n    t.extract('org/python/core.py')",
        "import shutil\nshutil.unpack_archive('/input/payload.zip')",
    ],
)
def test_extracting_into_the_working_directory_is_a_write_there(source: str) -> None:
    for policy in ("strict", "standard"):
        assert "HP110" in codes(source, policy), policy


def test_extracting_elsewhere_is_judged_by_the_path_rules() -> None:
    assert passes("import zipfile\nwith zipfile.ZipFile('/input/a.zip') as z:\n    z.extractall('/output/a')")
    assert passes("import re\nm = re.compile('x')\nprint(m.extract('a') if hasattr(m, 'extract') else 0)")
    assert "HP110" in codes("import zipfile\nwith zipfile.ZipFile('/input/a.zip') as z:\n    z.extractall('/etc')")


def test_a_module_level_name_shadows_a_builtin_only_once_it_is_surely_bound() -> None:
    # Module names fall back to built-ins while unbound: a deleted, conditional or later binding is no shadow.
    assert "HP102" in codes("help = None\ndel help\nhelp('subprocess')")
    assert "HP102" in codes("try:\n    help = int('x')\nexcept ValueError:\n    pass\nhelp('subprocess')")
    assert "HP102" in codes("def g():\n    help('os')\n\ng()\n\ndef help():\n    pass")
    assert "HP102" in codes("class A:\n    vars = 1\n    x = vars()")
    assert passes("def help():\n    print('usage')\n\n\ndef main():\n    help()\n\n\nmain()")


def test_class_namespaces_stay_closed() -> None:
    # An instance's __dict__ is its attributes; a class's holds dunder methods (__subclasses__ on type).
    assert "HP104" in codes("x = type.__dict__['__subclasses__'](object)")
    assert "HP102" in codes("x = vars(type)")
    assert "HP104" in codes("print(type(1).__dict__)")
    assert "HP104" in codes("class A:\n    pass\nprint(A.__dict__)")
    assert "HP104" in codes("ns = {}\nns.get('__builtins__')")
    assert passes("m = {}\nprint(m.get('__main__'), m.get('name'))")
