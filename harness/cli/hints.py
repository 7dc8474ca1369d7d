"""How the CLI words structured errors and missing inputs: flags and commands, never shown by the library."""

from __future__ import annotations

from harness.errors import Fix, HarnessError, MissingInputs
from harness.records import MissingInput

__all__ = ["error_line", "fix_text", "missing_text"]


def missing_text(item: MissingInput) -> str:
    """What a missing input is and the flag that supplies it."""
    if item.kind == "param":
        if item.reason:
            options = f"; one of: {', '.join(item.suggestions)}" if item.suggestions else ""
            return f"--param {item.name}=<{item.type or 'value'}>: {item.reason}{options}"
        example = f" (e.g. {item.example!r})" if item.example is not None else ""
        return f"--param {item.name}=<{item.type or 'value'}>{example}: {item.description}"
    if item.kind == "unsupported":
        return f"a scaffold that can do what was asked ({item.description}); none of the bundled ones does"
    if item.kind == "template":
        return f"a scaffold for --strategy {item.strategy}: pass --template NAME"
    if item.kind == "llm":
        return f"an LLM for --strategy {item.strategy}: export ANTHROPIC_API_KEY=sk-ant-..."
    return (
        "a scaffold: pass --template NAME (see `harness templates list`), or configure an LLM "
        "(ANTHROPIC_API_KEY) to generate a script"
    )


# How the CLI supplies each input a use case may ask for.
_GIVE = {
    "inputs": "check the path given with --input",
    "script": "give the path of a Python file, or --generated ID",
    "against": "pass --against SCAFFOLD",
    "hosts": "pass --allow-host HOST, or --replace alone to revoke the grant",
}


def fix_text(fix: Fix) -> str | None:
    """The flags or commands that carry out ``fix``; None when the hint's words are all there is to say."""
    if fix.action == "give_input":
        return _GIVE.get(fix.target)
    if fix.action == "review":
        return f"review it: harness review show {fix.target}, then harness review approve {fix.target}"
    if fix.action == "approve_egress" and fix.values:
        return f"approve it with the egress it needs: harness review approve {fix.target} --allow-host {fix.values[0]}"
    return None


def error_line(exc: HarnessError) -> str:
    """``exc`` as the one line the CLI prints after ``Error:``."""
    if isinstance(exc, MissingInputs) and exc.missing:
        return f"cannot run this request yet: missing {missing_text(exc.missing[0])}"
    hint = fix_text(exc.fix) if exc.fix is not None else None
    if hint is not None:
        return f"{exc.message}: {hint}"
    return exc.one_line()
