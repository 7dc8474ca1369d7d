"""How the CLI words structured errors and missing inputs: flags and commands, never shown by the library.

The words themselves are in ``harness.cli.render``, on plain data, so the thin client words a
server's problem JSON (its ``data.fix`` and ``data.missing``) the same way.
"""

from __future__ import annotations

from harness.cli import render
from harness.errors import Fix, HarnessError, MissingInputs
from harness.records import MissingInput

__all__ = ["error_line", "fix_text", "missing_text"]


def missing_text(item: MissingInput) -> str:
    """What a missing input is and the flag that supplies it."""
    return render.missing_text(item.model_dump(mode="json"))


def fix_text(fix: Fix) -> str | None:
    """The commands that carry out ``fix``; None when the hint's words are all there is to say."""
    return render.fix_text({"action": fix.action, "target": fix.target, "values": list(fix.values)})


def error_line(exc: HarnessError) -> str:
    """``exc`` as the one line the CLI prints after ``Error:``."""
    if isinstance(exc, MissingInputs) and exc.missing:
        return f"cannot run this request yet: missing {missing_text(exc.missing[0])}"
    hint = fix_text(exc.fix) if exc.fix is not None else None
    if hint is not None:
        return f"{exc.message}: {hint}"
    return exc.one_line()
