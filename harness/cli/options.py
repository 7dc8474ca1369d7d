"""Command-line options that several commands share, declared once so their help and rules agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["LocalOption", "MergeOption", "OutputOption", "OverwriteOption", "RuntimeOption", "runtime_overrides"]

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="folder that receives /output")]
MergeOption = Annotated[
    bool, typer.Option("--merge", help="into an existing folder: add new files only, never overwrite")
]
# Read by harness.cli.main before typer runs; declared here so the commands show and accept it.
LocalOption = Annotated[
    bool, typer.Option("--local", help="work in this process even when a harness server is running")
]
# Not sent to a server: the thin client does not know the option, so the command runs in-process.
RuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        help="OCI runtime: auto (gVisor's runsc when the engine has it, else runc) or a registered name "
        "[env: HARNESS_RUNTIME]",
    ),
]


def runtime_overrides(runtime: str | None) -> dict[str, str]:
    """The settings override ``--runtime`` makes (none when it was not given)."""
    return {} if runtime is None else {"runtime": runtime}


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="replace a folder that harness made earlier (nothing else)")
]
