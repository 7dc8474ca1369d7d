"""The two consoles: results on stdout, everything else on stderr."""

from __future__ import annotations

from rich.console import Console

__all__ = ["err_console", "out_console"]

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
