"""The whole ``harness`` command in-process: the typer app, its exit codes, and ``run`` (``main`` without a server).

Results go to stdout (``--json`` prints what the library returns); progress, logs and
diagnostics go to stderr. Errors print as one ``Error: ...`` line. Exit codes: 0 ok,
1 a run or check failed, 2 usage or set-up error, 130 interrupted (``EXIT_CODES`` maps errors).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import typer

from harness.cli import (
    check,
    exec_cmd,
    history_cmd,
    mcp_cmd,
    rerun_cmd,
    review_cmd,
    run_cmd,
    runs_cmd,
    sandbox,
    serve_cmd,
    templates,
)
from harness.cli.console import err_console
from harness.cli.context import close_services, set_command_line
from harness.cli.render import emit, error_line
from harness.errors import BudgetExhausted, HarnessError, Refused, RunError, Unavailable, UserError

__all__ = ["EXIT_CODES", "app", "exit_code_for", "run"]

# The first class an error is an instance of wins. harness/client/exit_codes.py holds the same
# table by class name for the thin client (a test keeps them equal). UserError comes first so that every error
# that was a UserError still exits 2 (EngineError and NotReviewed are also Unavailable/Refused).
EXIT_CODES: dict[type[HarnessError], int] = {
    UserError: 2,
    RunError: 1,
    Refused: 1,
    Unavailable: 1,
    BudgetExhausted: 1,
    HarnessError: 1,
}

app = typer.Typer(
    name="harness",
    help="Turn plain-language requests into vetted Python scripts and run them in hardened, throwaway containers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def _invocation(ctx: typer.Context) -> None:
    # Whatever a command opens (stores, the backend and its containers) is closed as it ends, also on error.
    ctx.call_on_close(close_services)


for _group in (
    run_cmd,
    rerun_cmd,
    exec_cmd,
    check,
    templates,
    review_cmd,
    history_cmd,
    runs_cmd,
    sandbox,
    serve_cmd,
    mcp_cmd,
):
    _group.register(app)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every `finally` that removes a container runs.
    raise KeyboardInterrupt


def exit_code_for(exc: HarnessError) -> int:
    """The exit code the CLI ends with when ``exc`` escapes a command."""
    return next(code for cls, code in EXIT_CODES.items() if isinstance(exc, cls))


def run(args: list[str]) -> int:
    """Run the CLI in-process; return its exit code instead of letting exceptions escape."""
    signal.signal(signal.SIGTERM, _terminate)
    set_command_line(args)
    debug = "--debug" in args
    try:
        result = app(args=[a for a in args if a != "--debug"], standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except HarnessError as exc:
        if debug:
            raise
        # The message may quote a script, a file name or an LLM reply: shown, never obeyed.
        from harness.cli.hints import error_line as words

        emit([error_line(words(exc))], err=True)
        code = exit_code_for(exc)
        if code == 2 and "--json" in args:
            # A calling program learns what is missing from stdout, not from the error line.
            from harness.cli.hints import refusal
            from harness.cli.render import emit_json

            emit_json(refusal(exc))
        return code
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except typer.Exit as exc:
        code = int(exc.exit_code)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        # Usage errors from typer's (vendored) click: shown the way click shows them.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show(file=sys.stderr)
            return exit_code
        raise
    if code == 130:
        # However Ctrl-C or SIGTERM surfaced (click reports it in several ways), every
        # `finally` that removes a container has run by now.
        err_console.print("Interrupted: containers of this run were removed.", highlight=False)
    return code
