"""``harness run`` (the main job) and ``harness analyze``: a request in, a vetted run and a report out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

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
from harness.cli.render import (
    analysis_lines,
    analyze_lines,
    attempt_line,
    drafted_lines,
    dry_run_verdict,
    emit,
    emit_json,
    findings_table,
    gate_refused_line,
    plain,
    plan_lines,
    plan_summary,
    run_summary,
    script_listing,
)
from harness.errors import ConfigError, InputError
from harness.execution.outputs import output_mode
from harness.safe_text import visible

if TYPE_CHECKING:
    from harness.app.requests import RequestIn, Route
    from harness.pipeline import Prepared
    from harness.progress import RequestEvent
    from harness.services import Services

__all__ = ["register"]


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``key=value`` strings to a dict; ConfigError on a malformed pair."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"invalid --param {pair!r}", hint="use --param NAME=VALUE")
        params[key.strip()] = value
    return params


def _show_analysis(analysis: Any, decision: Any) -> None:
    emit(analysis_lines(json.loads(analysis.model_dump_json()), json.loads(decision.model_dump_json())), err=True)


def _show_findings(findings: Any, *, include_info: bool = False) -> None:
    findings_table([f.model_dump(mode="json") for f in findings], include_info=include_info, err=True)


class _TokenStream:
    """Shows a generation's attempt number and its tokens on stderr as they arrive."""

    def __init__(self) -> None:
        self.started = False

    def attempt(self, number: int) -> None:
        self.end()
        emit([attempt_line(number)], err=True)
        self.started = True

    def __call__(self, text: str) -> None:
        # The model's tokens are untrusted terminal bytes like any script output.
        sys.stderr.write(visible(text, lines=True))
        sys.stderr.flush()

    def end(self) -> None:
        if self.started:
            sys.stderr.write("\n")
            self.started = False


def _summary(report: Any, run_dir: Path) -> None:
    emit(run_summary(json.loads(report.model_dump_json()), run_dir))


def _ask_missing(opened: Services, prepared: Prepared, req: RequestIn) -> tuple[Prepared, RequestIn]:
    """In a terminal, ask for the parameters the request and the data leave open, then decide again.

    Only parameters are asked for (a missing scaffold or LLM is not something to type in), with
    the data's suggestions shown and the only candidate, if there is one, as the default. Off a
    terminal nothing is asked: the request is refused as before.
    """
    from harness.app import requests as app_requests

    for _ in range(3):  # an answer the scaffold rejects is asked again, with the reason
        missing = prepared.decision.missing
        if not missing or any(m.kind != "param" for m in missing):
            break
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            break
        answers: dict[str, str] = {}
        for item in missing:
            why = item.reason or item.description
            err_console.print(
                f"[bold]{escape(prepared.decision.template or 'the script')}[/] needs "
                f"[bold]{escape(item.name)}[/]{escape(visible(f': {why}' if why else ''))}",
                highlight=False,
            )
            options = f" (one of: {', '.join(item.suggestions)})" if item.suggestions else ""
            # A person confirms what is shown: the only close match may be the default here,
            # where --yes would not take it.
            default = item.sole or (item.suggestions[0] if len(item.suggestions) == 1 else None)
            answers[item.name] = typer.prompt(visible(f"  {item.name}{options}"), default=default, err=True)
        prepared.close()
        req = req.model_copy(update={"params": {**req.params, **answers}})
        prepared = app_requests.prepare(opened, req)
    return prepared, req


def _serve(opened: Services, prepared: Prepared, req: RequestIn, as_json: bool, yes: bool) -> None:
    """Show the decision, then dry-run, refuse, or run a prepared request and report it."""
    from harness.app import requests as app_requests
    from harness.app.scripts import interrupt

    _show_analysis(prepared.analysis, prepared.decision)
    drafted = app_requests.drafted(opened, prepared, req).model_dump(mode="json")
    emit(drafted_lines(prepared.decision.model_dump(mode="json"), drafted), err=True)
    app_requests.ensure_runnable(opened, prepared)
    assert prepared.checks is not None and prepared.script is not None
    if req.dry_run:
        script_listing(prepared.script)
        _show_findings(prepared.checks.findings, include_info=True)
        emit([dry_run_verdict(prepared.gate_passed, prepared.gate_policy)], err=True)
        raise typer.Exit(0 if prepared.gate_passed else 1)
    if not prepared.gate_passed:
        report = app_requests.run_prepared(opened, prepared, req)
        _show_findings(prepared.checks.findings)
        emit([gate_refused_line(str(prepared.run_dir))], err=True)
        if as_json:
            emit_json(json.loads(report.model_dump_json()))
        raise typer.Exit(1)
    if not yes and req.template is None and sys.stdin.isatty() and not typer.confirm("Run it?", default=True):
        raise typer.Exit(1)
    title = f"{prepared.decision.template or prepared.decision.strategy} · run {prepared.run_id}"
    with RunDisplay(err_console, title) as display:

        def sink(event: RequestEvent) -> None:
            if event.kind == "run":
                display.on_event(event.event)

        with first_ctrl_c_stops(lambda: interrupt(opened, prepared.run_id), say_stopping):
            report = app_requests.run_prepared(opened, prepared, req, sink=sink)
    if as_json:
        emit_json(json.loads(report.model_dump_json()))
    else:
        _summary(report, prepared.run_dir)
    status = report.execution_result.status
    raise typer.Exit(INTERRUPTED_EXIT if status == "interrupted" else 0 if status == "succeeded" else 1)


def _run_plan(opened: Services, routed: Route, req: RequestIn, as_json: bool) -> None:
    """Run a multi-phase plan, showing each phase as it starts and ends."""
    from harness.app import requests as app_requests
    from harness.cli.plan_display import PlanDisplay
    from harness.dispatch.plan import describe

    plan = routed.plan
    assert plan is not None
    emit(plan_lines(describe(plan)), err=True)
    opened.backend  # noqa: B018 - made before the display starts; the invocation's services close it
    with PlanDisplay(err_console, describe(plan)) as display:

        def sink(event: RequestEvent) -> None:
            if event.kind == "phase_changed":
                display.on_phase(event.phase, event.state, event.message if event.run_id else None)
            elif event.kind == "run" and event.phase is not None:
                display.on_event(event.phase, event.event)

        done = app_requests.run_plan(opened, plan, req, estimate=routed.estimate, sink=sink)
    report, target = done.report, done.output_dir
    if as_json:
        emit_json(json.loads(report.model_dump_json()))
    else:
        emit(plan_summary(json.loads(report.model_dump_json()), str(target)))
    raise typer.Exit(0 if report.status == "succeeded" else 1)


def register(app: typer.Typer) -> None:
    """Add the ``run`` and ``analyze`` commands to ``app``."""

    @app.command("run")
    def run_command(
        request: Annotated[str, typer.Argument(help="what you want done, in plain language")],
        template: Annotated[str | None, typer.Option("--template", "-t", help="use this scaffold")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="scaffold parameter NAME=VALUE")] = None,
        inputs: Annotated[
            list[Path] | None, typer.Option("--input", "-i", help="file or folder, at /input/NAME")
        ] = None,
        output: OutputOption = None,
        merge: MergeOption = False,
        overwrite: OverwriteOption = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="show the script and findings; run nothing")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
        yes: Annotated[
            bool,
            typer.Option(
                "--yes",
                "-y",
                help="do not ask: run without confirming, and take a missing parameter only when the data "
                "leaves exactly one value for it (else refuse)",
            ),
        ] = False,
        strategy: Annotated[
            str | None,
            typer.Option(help="force use_template, customise_template, hybrid or generate_custom"),
        ] = None,
        budget: Annotated[int | None, typer.Option(help="token budget for this request (all LLM calls)")] = None,
        timeout: Annotated[float | None, typer.Option(help="wall-clock seconds before the run is stopped")] = None,
        memory: Annotated[str | None, typer.Option(help="memory limit, e.g. 512m")] = None,
        cpus: Annotated[float | None, typer.Option(help="CPU quota in cores")] = None,
        pids: Annotated[int | None, typer.Option(help="process limit")] = None,
        runtime: RuntimeOption = None,
        local: LocalOption = False,
    ) -> None:
        """Serve REQUEST: match a scaffold (or generate a script), gate it, run it in the sandbox, and report."""
        from harness.app import requests as app_requests
        from harness.app.scripts import LimitOverrides

        limits = LimitOverrides(timeout_s=timeout, memory=memory, cpus=cpus, pids=pids)
        limits.apply(
            services(**runtime_overrides(runtime)).settings.limits
        )  # a bad value is a usage error before anything is analysed

        mode = output_mode(merge=merge, overwrite=overwrite)
        req = app_requests.RequestIn(
            request=request,
            template=template,
            params=parse_params(param or []),
            strategy=strategy,
            budget=budget,
            inputs=tuple(inputs or ()),
            output_dir=output,
            output_mode=mode,
            dry_run=dry_run,
            assume=yes,
            limits=limits,
            argv=command_line(),
        )
        app_requests.check(req)  # before any LLM call is paid for
        opened = services()
        if template is None and strategy is None and not dry_run:
            routed = app_requests.route(opened, request)
            if routed.plan is not None:
                _run_plan(opened, routed, req, as_json)
                return
        stream = _TokenStream()

        def sink(event: RequestEvent) -> None:
            if event.kind == "llm_call":
                stream.attempt(event.number)
            elif event.kind == "llm_text":
                stream(event.text)

        prepared = app_requests.prepare(opened, req, sink=None if as_json else sink)
        stream.end()
        if not yes:
            prepared, req = _ask_missing(opened, prepared, req)
        try:
            _serve(opened, prepared, req, as_json, yes)
        finally:
            prepared.close()

    @app.command("analyze")
    def analyze_command(
        request: Annotated[str, typer.Argument(help="what you want done, in plain language")],
        template: Annotated[str | None, typer.Option("--template", "-t", help="use this scaffold")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="scaffold parameter NAME=VALUE")] = None,
        inputs: Annotated[
            list[Path] | None, typer.Option("--input", "-i", help="file or folder the request would work on")
        ] = None,
        strategy: Annotated[
            str | None,
            typer.Option(help="force use_template, customise_template, hybrid or generate_custom"),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print analysis and decision as JSON")] = False,
        local: LocalOption = False,
    ) -> None:
        """Show how REQUEST would be served (analysis, decision), running nothing; exit 2 where run would refuse."""
        from harness.app import requests as app_requests

        for path in inputs or ():
            if not path.exists():
                raise InputError(f"input path {path} does not exist", hint="check the path given with --input")
        analyzed = app_requests.analyse(
            services(),
            request,
            inputs=tuple(inputs or ()),
            template=template,
            params=parse_params(param or []),
            strategy=strategy,
        )
        payload = json.loads(analyzed.model_dump_json())
        refused = bool(analyzed.decision.missing) and analyzed.plan is None
        if as_json:
            emit_json(payload)
        else:
            emit(analysis_lines(payload["analysis"], payload["decision"], payload["plan"]), err=True)
            emit([plain(line) for line in analyze_lines(payload["analysis"], payload["decision"], payload["plan"])])
        if refused:
            raise typer.Exit(2)
