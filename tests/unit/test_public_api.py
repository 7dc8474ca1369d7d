"""The public surface is what __all__ says, sorted, and importing it needs no engine or key."""

from __future__ import annotations

import subprocess
import sys

import harness


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in harness.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in harness.__all__:
        assert hasattr(harness, name), name


def test_import_is_lazy_about_docker_and_anthropic() -> None:
    code = "import sys, harness, harness.cli; print('docker' in sys.modules, 'anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
