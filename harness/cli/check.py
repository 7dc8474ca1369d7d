"""``harness check``: run the static-check gate on a script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.console import out_console
from harness.errors import InputError

__all__ = ["register"]

_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}


def register(app: typer.Typer) -> None:
    """Add the ``check`` command to ``app``."""

    @app.command("check")
    def check_command(
        script: Annotated[Path, typer.Argument(help="Python script to check")],
        policy: Annotated[str, typer.Option(help="gate policy: strict (LLM output) or standard (reviewed)")] = "strict",
        as_json: Annotated[bool, typer.Option("--json", help="print the report and verdict as JSON")] = False,
        show_info: Annotated[bool, typer.Option("--info", help="also list info-level findings")] = False,
    ) -> None:
        """Check SCRIPT with the static-check gate; exit 1 when the gate fails."""
        from harness.checks import gate, run_checks
        from harness.checks.gate import get_policy

        chosen = get_policy(policy)
        if not script.is_file():
            raise InputError(f"script {script} does not exist", hint="give the path of a Python file")
        report = run_checks(script.read_bytes(), chosen)
        decision = gate(report, chosen)
        if as_json:
            payload = {"report": json.loads(report.model_dump_json()), "gate": json.loads(decision.model_dump_json())}
            out_console.print_json(json.dumps(payload))
        else:
            shown = [f for f in report.findings if show_info or f.severity != "info"]
            if shown:
                table = Table(show_lines=False, header_style="bold")
                for column in ("code", "severity", "where", "message", "hint"):
                    table.add_column(column, overflow="fold")
                for f in shown:
                    table.add_row(
                        f.code, f"[{_STYLE[f.severity]}]{f.severity}[/]", f"{f.line}:{f.col}", f.message, f.hint
                    )
                out_console.print(table)
            verdict = "[green]passed[/]" if decision.passed else "[red]failed[/]"
            counts = ", ".join(f"{n} {s}" for s, n in report.counts.items())
            total = sum(report.durations_ms.values())
            out_console.print(f"gate {verdict} under the {chosen.name} policy ({counts}; {total:.0f} ms)")
        raise typer.Exit(0 if decision.passed else 1)
