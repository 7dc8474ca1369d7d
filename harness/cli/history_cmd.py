"""``harness history`` and ``harness stats``: what ran, and how each scaffold and workflow type does."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.console import out_console
from harness.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``history`` and ``stats`` commands to ``app``."""

    @app.command("history")
    def history_command(
        limit: Annotated[int, typer.Option(help="how many runs to show")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """List recent requests: when, what, how they were served and how they ended."""
        from harness.history.store import HistoryStore

        settings = Settings.from_env()
        rows = HistoryStore(settings.data_dir / "history.sqlite3").recent(limit)
        if as_json:
            out_console.print_json(json.dumps(rows))
            return
        table = Table(header_style="bold")
        for column in ("run", "started", "status", "strategy", "scaffold", "seconds", "tokens", "request"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r["run_id"],
                r["started_at"],
                r["status"],
                r["strategy"] or "",
                r["template"] or "",
                f"{r['duration_s']:.2f}" if r["duration_s"] is not None else "",
                str(r["tokens_used"] or 0),
                escape(r["request"][:60]),
            )
        out_console.print(table)

    @app.command("stats")
    def stats_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Per scaffold and workflow type: runs, success rate, median duration and tokens, estimate error."""
        from harness.history.store import HistoryStore

        settings = Settings.from_env()
        stats = HistoryStore(settings.data_dir / "history.sqlite3").stats()
        if as_json:
            out_console.print_json(json.dumps(stats))
            return
        for key, rows in stats.items():
            name = "template" if key == "by_template" else "workflow_type"
            table = Table(header_style="bold", title=key.replace("_", " "), title_justify="left")
            for column in (name, "runs", "success", "median s", "median tokens", "estimate error"):
                table.add_column(column)
            for r in rows:
                table.add_row(
                    r[name],
                    str(r["runs"]),
                    f"{r['success_rate']:.0%}",
                    "" if r["median_duration_s"] is None else f"{r['median_duration_s']:.2f}",
                    str(r["median_tokens"]),
                    "" if r["median_estimate_error"] is None else f"{r['median_estimate_error']:.0%}",
                )
            out_console.print(table)
