"""``harness runs list|show|prune``: the runs folder, and how much of it is kept."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.console import err_console, out_console
from harness.cli.context import services
from harness.errors import ConfigError

__all__ = ["parse_age", "register"]

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_age(value: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` (a bare number is days) to seconds; ConfigError otherwise."""
    match = _AGE.match(value)
    if not match:
        raise ConfigError(f"invalid age {value!r}", hint="use a number with s, m, h, d or w, e.g. 7d or 12h")
    number, unit = match.groups()
    return float(number) * _SECONDS[unit.lower()]


def register(app: typer.Typer) -> None:
    """Add the ``runs`` command group to ``app``."""
    runs = typer.Typer(help="List and prune the runs folder (one folder per run or plan).", no_args_is_help=True)
    app.add_typer(runs, name="runs")

    @runs.command("list")
    def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Every run and plan folder, oldest first: id, when it last changed, status and size."""
        from harness.runs import human_size

        settings = services().settings
        entries = services().runs.list()
        if as_json:
            out_console.print_json(json.dumps([e.model_dump(exclude={"mtime"}) for e in entries]))
            return
        table = Table(header_style="bold")
        for column in ("id", "when", "status", "size"):
            table.add_column(column, overflow="fold")
        for e in entries:
            table.add_row(e.id, e.when, e.status, human_size(e.size))
        out_console.print(table)
        total = sum(e.size for e in entries)
        err_console.print(f"{len(entries)} folder(s), {human_size(total)} in {settings.runs_dir}", highlight=False)

    @runs.command("show")
    def show_command(
        run_id: Annotated[str, typer.Argument(help="a run id (or plan-ID)")],
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Where one run's folder is, with its status and size (says so when retention removed it)."""
        from harness.runs import human_size

        store = services().runs
        entry = store.entry(run_id)
        path = store.load(run_id).path
        if as_json:
            out_console.print_json(json.dumps({**entry.model_dump(exclude={"mtime"}), "path": str(path)}))
            return
        out_console.print(f"{entry.id} {entry.status} · {entry.when} · {human_size(entry.size)}", markup=False)
        for name in sorted(p.name for p in path.iterdir() if not p.name.startswith(".")):
            out_console.print(f"  {path / name}", markup=False)

    @runs.command("prune")
    def prune_command(
        older_than: Annotated[
            str | None, typer.Option("--older-than", help="remove runs older than this (7d, 12h, 90m)")
        ] = None,
        max_size: Annotated[
            str | None, typer.Option("--max-size", help="then remove the oldest until the rest fit (500m, 2g)")
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would go, remove nothing")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Remove old runs, oldest first (default: the automatic policy); never one that is still pointed at."""
        from harness.execution.limits import parse_size
        from harness.runs import RetentionPolicy, human_size, protected_runs

        settings = services().settings
        store = services().runs
        if older_than is None and max_size is None:
            policy = RetentionPolicy.of(settings)
        else:
            policy = RetentionPolicy(
                max_age_days=parse_age(older_than) / 86400 if older_than is not None else None,
                max_bytes=parse_size(max_size) if max_size is not None else None,
            )
        with store.locked():  # waits for no one: a concurrent automatic prune only makes less to do
            outcome = policy.prune(store, protected_runs(settings, store), dry_run=dry_run)
        if as_json:
            out_console.print_json(outcome.model_dump_json())
            return
        verb = "would remove" if dry_run else "removed"
        for e in outcome.removed:
            out_console.print(
                f"{verb} {e.id} ({e.status}, {e.when}, {human_size(e.size)}): {outcome.reasons[e.id]}",
                markup=False,
            )
        out_console.print(
            f"{verb} {len(outcome.removed)} folder(s), {human_size(outcome.freed)} "
            f"{'would be ' if dry_run else ''}freed; {human_size(outcome.remaining)} kept",
            markup=False,
        )
        if outcome.protected:
            err_console.print(f"kept {len(outcome.protected)} folder(s) still pointed at:", highlight=False)
            for run_id, why in sorted(outcome.protected.items()):
                err_console.print(f"  {run_id}: {why}", highlight=False, markup=False)
        err_console.print(f"policy: {policy.describe()}", highlight=False)
