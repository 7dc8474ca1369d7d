"""``harness history`` and ``harness stats``: what ran, and how each scaffold and workflow type does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.console import out_console
from harness.cli.context import services
from harness.safe_text import visible

if TYPE_CHECKING:
    from harness.app.history import PlanRow

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``history`` and ``stats`` commands to ``app``."""

    @app.command("history")
    def history_command(
        limit: Annotated[int, typer.Option(help="how many runs to show")] = 20,
        plans: Annotated[bool, typer.Option("--plans", help="list plans, each with its phases' runs")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """List recent requests: when, what, how they were served and how they ended."""
        from harness.app.history import list_plans, list_runs

        if plans:
            _show_plans(list_plans(services(), limit), as_json)
            return
        rows = list_runs(services(), limit)
        if as_json:
            out_console.print_json(json.dumps([r.model_dump(mode="json") for r in rows]), ensure_ascii=True)
            return
        table = Table(header_style="bold")
        for column in ("run", "started", "status", "strategy", "scaffold", "seconds", "tokens", "plan", "request"):
            table.add_column(column, overflow="fold")
        for r in rows:
            in_plan = f"{r.plan_id}/{r.phase}#{r.attempt}" if r.plan_id else ""
            cells = (
                r.run_id,
                r.started_at,
                r.status,
                r.strategy or "",
                r.template or "",
                f"{r.duration_s:.2f}" if r.duration_s is not None else "",
                str(r.tokens_used or 0),
                in_plan,
                r.request[:60],
            )
            # Requests and template names may come from anyone (a promoted scaffold's name included).
            table.add_row(*(escape(visible(str(cell))) for cell in cells))
        out_console.print(table)

    @app.command("stats")
    def stats_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Per scaffold and workflow type: runs, success rate, median duration and tokens, estimate error."""
        from harness.app.history import stats

        found = stats(services())
        if as_json:
            out_console.print_json(found.model_dump_json(), ensure_ascii=True)
            return
        for key, rows in found.model_dump().items():
            if key == "plans":
                for r in rows:
                    error = (
                        ""
                        if r["median_estimate_error"] is None
                        else f", estimate error {r['median_estimate_error']:.0%}"
                    )
                    out_console.print(
                        f"plans: {r['plans']}, {r['success_rate']:.0%} succeeded, {r['partial']} partial, "
                        f"median {r['median_wall_s']}s wall, {r['median_tokens']} tokens{error}",
                        markup=False,
                    )
                continue
            name = "template" if key == "by_template" else "workflow_type"
            table = Table(header_style="bold", title=key.replace("_", " "), title_justify="left")
            for column in (name, "runs", "success", "median s", "median tokens", "estimate error"):
                table.add_column(column)
            for r in rows:
                table.add_row(
                    escape(visible(str(r[name]))),
                    str(r["runs"]),
                    f"{r['success_rate']:.0%}",
                    "" if r["median_duration_s"] is None else f"{r['median_duration_s']:.2f}",
                    str(r["median_tokens"]),
                    "" if r["median_estimate_error"] is None else f"{r['median_estimate_error']:.0%}",
                )
            out_console.print(table)


def _show_plans(found: tuple[PlanRow, ...], as_json: bool) -> None:
    if as_json:
        out_console.print_json(json.dumps([p.model_dump(mode="json") for p in found]), ensure_ascii=True)
        return
    for plan in (p.model_dump() for p in found):
        wall = f"{plan['wall_s']:.2f}s" if plan["wall_s"] is not None else "-"
        estimated = f" (estimated {plan['estimated_s']:g}s)" if plan["estimated_s"] else ""
        partial = ", partial" if plan["partial"] else ""
        out_console.print(
            f"[bold]{escape(visible(plan['plan_id']))}[/] {plan['started_at']} {plan['status']}{partial} · "
            f"{plan['phases']} phases in {plan['stages']} stages · {wall}{estimated} · "
            f"{escape(visible(plan['request'][:70]))}",
            highlight=False,
        )
        for run in plan["runs"]:
            seconds = f"{run['duration_s']:.2f}s" if run["duration_s"] is not None else "-"
            line = (
                f"  {run['phase']} #{run['attempt']}: {run['status']} ({run['template'] or 'generated'}, {seconds}) "
                f"run {run['run_id']}"
            )
            out_console.print(visible(line), markup=False)
