"""The ``harness`` command. The only package that writes to the terminal.

``main`` first asks whether a running ``harness serve`` can do the work (``exec``, ``run``,
``check`` and ``analyze`` without ``--local``): if one answers, the command goes through the
thin client (``harness.client``), which starts without typer, rich, pydantic or docker and prints
the same output with the same exit codes. Otherwise the whole typer CLI (``harness.cli.root``)
runs the command in-process, as it always has.
"""

from __future__ import annotations

import sys

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["EXIT_CODES", "app", "exit_code_for", "main"]

_ROOT_NAMES = frozenset({"EXIT_CODES", "app", "exit_code_for"})


def main(argv: list[str] | None = None) -> int:
    """Run the CLI (through a running server when one answers); return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    from harness.client.endpoint import remote_endpoint

    endpoint = remote_endpoint(args)
    if endpoint is not None:
        from harness.client.commands import run_remote

        code = run_remote(args, endpoint)
        if code is not None:
            return code
    from harness.cli.root import run

    return run(args)


def __getattr__(name: str) -> Any:
    """The typer app and the exit-code table, loaded with the full CLI on first access."""
    if name not in _ROOT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from harness.cli import root

    return getattr(root, name)
