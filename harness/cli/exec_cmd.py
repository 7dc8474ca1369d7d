"""``harness exec``: run one script in the sandbox with a live display."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.console import err_console
from harness.cli.context import command_line, services
from harness.cli.display import RunDisplay
from harness.cli.interrupt import INTERRUPTED_EXIT, first_ctrl_c_stops, say_stopping
from harness.cli.options import (
    LocalOption,
    MergeOption,
    OutputOption,
    OverwriteOption,
    RuntimeOption,
    runtime_overrides,
)
from harness.cli.render import egress_lines, emit, emit_json, exec_summary, plain
from harness.errors import ConfigError, InputError
from harness.events import Event
from harness.records import RunResult, new_run_id

__all__ = ["register"]


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
    emit(exec_summary(result.model_dump(mode="json", exclude={"events"}), run_dir))


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
        runtime: RuntimeOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the run result as JSON on stdout")] = False,
        local: LocalOption = False,
    ) -> None:
        """Run SCRIPT (or a generated script, by id) once in a hardened, throwaway container."""
        from harness.app.scripts import LimitOverrides, ScriptRun, exec_script, interrupt
        from harness.execution.outputs import output_mode

        mode = output_mode(merge=merge, overwrite=overwrite)
        opened = services(**runtime_overrides(runtime))
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
            argv=command_line(),
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

            with first_ctrl_c_stops(lambda: interrupt(opened, run.run_id or ""), say_stopping):
                outcome = exec_script(opened, run, sink=on_event)
        result = outcome.result
        if as_json:
            emit_json(json.loads(result.model_dump_json(exclude={"events"})))
        else:
            print_summary(result, outcome.run_dir)
            if outcome.events_dropped:
                emit([plain(f"  {outcome.events_dropped} events past the log's caps were counted, not kept")])
            emit([plain(line) for line in egress_lines(outcome.egress)])
        raise typer.Exit(INTERRUPTED_EXIT if result.status == "interrupted" else 0 if result.ok else 1)
