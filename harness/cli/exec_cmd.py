"""``harness exec``: run one script in the sandbox with a live display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.console import err_console
from harness.cli.context import services
from harness.cli.display import RunDisplay
from harness.cli.options import LocalOption, MergeOption, OutputOption, OverwriteOption
from harness.cli.render import egress_lines, emit, emit_json, exec_summary, plain
from harness.errors import ConfigError, InputError
from harness.events import Event
from harness.records import RunResult, RunSpec, new_run_id

if TYPE_CHECKING:
    from harness.review.policy import Grant
    from harness.services import Services

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


def _generated_source(opened: Services, record_id: str, allow_hosts: tuple[str, ...] = ()) -> Grant:
    """A generated script's bytes (read once) with the hosts and limits the verified review allows."""
    from harness.review.policy import authorize_rerun

    return authorize_rerun(opened.generated, record_id, opened.settings.limits, allow_hosts)


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
        local: LocalOption = False,
    ) -> None:
        """Run SCRIPT (or a generated script, by id) once in a hardened, throwaway container."""
        from harness.execution.docker import DockerBackend
        from harness.execution.outputs import check_destination, output_mode

        mode = output_mode(merge=merge, overwrite=overwrite)
        if output is not None:
            check_destination(output, mode)
        for path in inputs or ():
            if not path.exists():
                raise InputError(f"input path {path} does not exist", hint="check the path given with --input")
        limits = {"timeout_s": timeout, "memory": memory, "cpus": cpus, "pids": pids}
        opened = services(pool_size=0, limits={k: v for k, v in limits.items() if v is not None})
        settings = opened.settings
        from harness.execution.egress import EgressPolicy, FetchBroker, parse_allow

        hosts = parse_allow(allow_host or [])
        grant = None
        if generated is not None:
            # The reviewed grant travels with the reviewed bytes (hashed as read); --allow-host narrows it.
            grant = _generated_source(opened, generated, hosts)
            source, hosts = grant.script, grant.hosts
            name = "main.py"
        elif script is not None and script.is_file():
            source = script.read_text(encoding="utf-8", errors="replace")
            name = script.name if script.name.endswith(".py") else "main.py"
        else:
            raise InputError(
                f"script {script} does not exist" if script else "no script given",
                hint="give the path of a Python file, or --generated ID",
            )
        from harness.runs import apply_retention

        run_id = new_run_id()
        folder = opened.runs.create(run_id)
        run_dir = folder.path
        spec = RunSpec(
            script=source,
            name=name,
            env=parse_env(env or []),
            inputs=tuple(inputs or ()),
            output_dir=output or folder.output,
            output_mode=mode,
            egress=hosts,
            run_id=run_id,
        )
        broker = FetchBroker(EgressPolicy(allow=hosts)) if hosts else None

        def progress(message: str) -> None:
            err_console.print(f"[dim]sandbox:[/] {message}", highlight=False)

        with (
            DockerBackend(settings, progress=progress) as backend,
            folder.events() as log,
            RunDisplay(err_console, f"{generated or name} · run {run_id}") as display,
        ):

            def on_event(event: Event) -> None:
                # Events are written as they come, so an interrupted run keeps its log; past the
                # log's caps they are counted, and not shown either.
                if log.write(event):
                    display.on_event(event)

            result = backend.run(spec, on_event=on_event, on_fetch=broker)
        folder.write_text("result.json", result.model_dump_json(indent=2, exclude={"events"}))
        if grant is not None:
            # Appended, never a rewrite of a record loaded before the run: a decision made meanwhile stands.
            opened.generated.record_run(grant.record_id, run_id, result.status)
        apply_retention(settings, keep=(run_id,))
        if as_json:
            emit_json(json.loads(result.model_dump_json(exclude={"events"})))
        else:
            print_summary(result, run_dir)
            if log.dropped:
                emit([plain(f"  {log.dropped} events past the log's caps were counted, not kept")])
            emit([plain(line) for line in egress_lines(broker.summary() if broker else [])])
        raise typer.Exit(0 if result.ok else 1)
