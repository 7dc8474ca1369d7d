"""Command-line options that several commands share, declared once so their help and rules agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["LocalOption", "MergeOption", "OutputOption", "OverwriteOption"]

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="folder that receives /output")]
MergeOption = Annotated[
    bool, typer.Option("--merge", help="into an existing folder: add new files only, never overwrite")
]
# Read by harness.cli.main before typer runs; declared here so the commands show and accept it.
LocalOption = Annotated[
    bool, typer.Option("--local", help="work in this process even when a harness server is running")
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="replace a folder that harness made earlier (nothing else)")
]
