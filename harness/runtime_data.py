"""The sandbox's data reader (``harness_runtime.data``), loaded on the host too.

Dispatch inspects inputs and the host verifies outputs with the very code that scripts use
inside the container, so a delimiter, an encoding or a condition is read the same way on
both sides of the boundary. The module is standard library only and is loaded by path under
a private name: the host never puts the sandbox folder on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

__all__ = ["data_module", "sandbox_dir"]

_NAME = "harness._sandbox_data"


def sandbox_dir() -> Path:
    """The ``sandbox/`` folder shipped with harness (package data first, then the source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / "sandbox", here.parent / "sandbox"):
        if (candidate / "harness_runtime" / "data.py").is_file():
            return candidate
    raise FileNotFoundError("harness_runtime/data.py is missing from this installation; reinstall harness")


@cache
def data_module() -> ModuleType:
    """``harness_runtime.data`` as a module of its own (loaded once)."""
    path = sandbox_dir() / "harness_runtime" / "data.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclass-like helpers look their module up while loading
    spec.loader.exec_module(module)
    return module
