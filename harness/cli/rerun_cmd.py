"""``harness rerun RUN_ID``: repeat a run from its report (no LLM call, the same scaffold, parameters and limits)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.console import err_console
from harness.cli.context import command_line, services
from harness.cli.display import RunDisplay
from harness.cli.exec_cmd import parse_env
from harness.cli.interrupt import INTERRUPTED_EXIT, first_ctrl_c_stops, say_stopping
from harness.cli.options import MergeOption, OutputOption, OverwriteOption
from harness.cli.render import emit, emit_json, exec_summary, plain
from harness.cli.run_cmd import parse_params
from harness.safe_text import visible

if TYPE_CHECKING:
    from harness.app.rerun import RerunOutcome
    from harness.events import Event
    from harness.progress import RequestEvent

__all__ = ["register"]


def _summary(outcome: RerunOutcome) -> None:
    if outcome.script is not None:
        emit(exec_summary(outcome.script.result.model_dump(mode="json", exclude={"events"}), outcome.run_dir))
        return
    report = outcome.report
    assert report is not None
    result = report.execution_result
    style = "green" if result.status == "succeeded" else "red"
    template = report.dispatch_decision.template or report.dispatch_decision.strategy
    emit([((result.status, f"bold {style}"), (f" · {template} · {report.performance_metrics.total_s:.2f}s", ""))])
    lines = []
    if result.status != "succeeded" and result.message:
        lines.append(f"  {result.message}")
    if result.outputs_partial:
        lines.append("  outputs partial: not everything was collected")
    lines += [f"  {d.path} ({d.size} bytes)" for d in result.deliverables]
    if result.output_dir:
        lines.append(f"  outputs: {result.output_dir}")
    lines.append(f"  report: {outcome.run_dir / 'report.json'}")
    emit([plain(visible(line)) for line in lines])


def register(app: typer.Typer) -> None:
    """Add the ``rerun`` command to ``app``."""

    @app.command("rerun")
    def rerun_command(
        run_id: Annotated[str, typer.Argument(help="the run to repeat (ids: harness history)")],
        output: OutputOption = None,
        merge: MergeOption = False,
        overwrite: OverwriteOption = False,
        env: Annotated[
            list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE again: environment values are never kept")
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE again for a secret parameter")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the rerun's outcome as JSON on stdout")] = False,
    ) -> None:
        """Repeat RUN_ID from its report: same request, scaffold or reviewed script, parameters and limits."""
        from harness.app.rerun import RerunIn, rerun
        from harness.app.scripts import interrupt
        from harness.execution.outputs import output_mode

        req = RerunIn(
            of=run_id,
            output_dir=output,
            output_mode=output_mode(merge=merge, overwrite=overwrite),
            env=parse_env(env or []),
            params=parse_params(param or []),
            argv=command_line(),
        )
        opened = services()
        with ExitStack() as stack:
            shown: list[RunDisplay] = []

            def on_event(event: Event) -> None:
                if not shown:
                    shown.append(stack.enter_context(RunDisplay(err_console, f"rerun of {run_id} · run {req.new_id}")))
                shown[0].on_event(event)

            def on_request_event(event: RequestEvent) -> None:
                if event.kind == "run":
                    on_event(event.event)

            def warn(line: str) -> None:
                # Before the run: a changed input is said before its result is seen.
                err_console.print(f"warning: {visible(line)}", highlight=False, markup=False)

            with first_ctrl_c_stops(lambda: interrupt(opened, req.new_id), say_stopping):
                outcome = rerun(opened, req, sink=on_event, request_sink=on_request_event, warn=warn)
        if as_json:
            emit_json(json.loads(outcome.model_dump_json(exclude={"script": {"result": {"events"}}})))
        else:
            emit([plain(f"rerun of {run_id}: run {outcome.run_id}")])
            _summary(outcome)
        code = INTERRUPTED_EXIT if outcome.status == "interrupted" else 0 if outcome.status == "succeeded" else 1
        raise typer.Exit(code)
