"""``harness exec``: run one script in the sandbox with a live display."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from harness.cli.console import err_console, out_console
from harness.cli.context import services
from harness.cli.display import RunDisplay, egress_lines
from harness.cli.options import MergeOption, OutputOption, OverwriteOption
from harness.errors import ConfigError, InputError
from harness.events import Event
from harness.records import RunResult, new_run_id
from harness.safe_text import visible

__all__ = ["register"]

_STATUS_STYLE = {"succeeded": "green", "failed": "red"}


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings to a dict; ConfigError on a malformed pair."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"invalid --env {pair!r}", hint="use --env NAME=VALUE")
        env[key] = value
    return env


def print_summary(result: RunResult, run_dir: Path) -> None:
    """A short human summary of a run on stdout; what the script named or wrote is shown through ``visible``."""
    style = _STATUS_STYLE.get(result.status, "yellow")
    out_console.print(
        f"[bold {style}]{result.status}[/] (exit code {result.exit_code}) in {result.duration_s:.2f}s"
        f" · {result.events_count} events · {'pooled' if result.pooled else 'cold'} container",
        highlight=False,
    )
    if result.status != "succeeded":
        out_console.print(f"  {visible(result.message)}", highlight=False, markup=False)
    for artifact in result.artifacts:
        note = f" - {artifact.description}" if artifact.description else ""
        out_console.print(visible(f"  {artifact.path} ({artifact.size} bytes){note}"), highlight=False, markup=False)
    if result.outputs_partial:
        skipped = f", {len(result.output_conflicts)} already there" if result.output_conflicts else ""
        out_console.print(f"  [yellow]outputs partial[/]: not everything was collected{skipped}", highlight=False)
    for warning in result.output_warnings:
        out_console.print(Text.assemble("  ", ("warning:", "yellow"), " ", visible(warning)), highlight=False)
    if result.output_dir:
        out_console.print(visible(f"  outputs: {result.output_dir}"), highlight=False, markup=False)
    out_console.print(visible(f"  run folder: {run_dir}"), highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``exec`` command to ``app``."""

    @app.command("exec")
    def exec_command(
        script: Annotated[Path | None, typer.Argument(help="Python script to run in the sandbox")] = None,
        generated: Annotated[
            str | None, typer.Option("--generated", help="run a generated script again by its id (strict gate)")
        ] = None,
        inputs: Annotated[
            list[Path] | None, typer.Option("--input", "-i", help="file or folder, read-only at /input/NAME")
        ] = None,
        output: OutputOption = None,
        merge: MergeOption = False,
        overwrite: OverwriteOption = False,
        timeout: Annotated[float | None, typer.Option(help="wall-clock seconds before the run is killed")] = None,
        memory: Annotated[str | None, typer.Option(help="memory limit, e.g. 512m")] = None,
        cpus: Annotated[float | None, typer.Option(help="CPU quota in cores")] = None,
        pids: Annotated[int | None, typer.Option(help="process limit")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE visible to the script")] = None,
        allow_host: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-host",
                help="let the script fetch from this host through the host (hr.fetch); generated scripts: "
                "only what review granted",
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the run result as JSON on stdout")] = False,
    ) -> None:
        """Run SCRIPT (or a generated script, by id) once in a hardened, throwaway container."""
        from harness.app.scripts import LimitOverrides, ScriptRun, exec_script
        from harness.execution.outputs import output_mode

        mode = output_mode(merge=merge, overwrite=overwrite)
        source, name = None, "main.py"
        if generated is None:
            if script is None or not script.is_file():
                raise InputError(
                    f"script {script} does not exist" if script else "no script given",
                    hint="give the path of a Python file, or --generated ID",
                )
            source, name = script.read_text(encoding="utf-8", errors="replace"), script.name
        run = ScriptRun(
            source=source,
            name=name,
            generated_id=generated,
            env=parse_env(env or []),
            inputs=tuple(inputs or ()),
            output_dir=output,
            output_mode=mode,
            limits=LimitOverrides(timeout_s=timeout, memory=memory, cpus=cpus, pids=pids),
            allow_hosts=tuple(allow_host or ()),
            run_id=new_run_id(),
        )
        with ExitStack() as stack:
            shown: list[RunDisplay] = []

            def on_event(event: Event) -> None:
                # The display starts with the run's first event, after the checks and the engine set-up
                # have said what they had to.
                if not shown:
                    title = f"{generated or run.name} · run {run.run_id}"
                    shown.append(stack.enter_context(RunDisplay(err_console, title)))
                shown[0].on_event(event)

            outcome = exec_script(services(), run, sink=on_event)
        result = outcome.result
        if as_json:
            out_console.print_json(result.model_dump_json(exclude={"events"}), ensure_ascii=True)
        else:
            print_summary(result, outcome.run_dir)
            if outcome.events_dropped:
                out_console.print(
                    f"  {outcome.events_dropped} events past the log's caps were counted, not kept", markup=False
                )
            for line in egress_lines(outcome.egress):
                out_console.print(line, markup=False)
        raise typer.Exit(0 if result.ok else 1)
