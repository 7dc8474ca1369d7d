"""``harness check``: run the static-check gate on a script and print its findings.

    harness check SCRIPT.py [--policy strict|standard] [--json] [--info]

Findings go to stdout as a table (or, with ``--json``, the CheckReport plus the gate's
decision); the exit code is 0 when the gate passes, 1 when it fails and 2 on usage errors.
The checks are a gate in front of the container, which remains the security boundary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.console import out_console
from harness.errors import ConfigError, InputError
from harness.safe_text import visible

__all__ = ["register"]

_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}


def register(app: typer.Typer) -> None:
    """Add the ``check`` command to ``app``."""

    @app.command("check")
    def check_command(
        script: Annotated[Path, typer.Argument(help="the Python script to check", show_default=False)],
        policy: Annotated[
            str, typer.Option("--policy", help="gate policy: strict (LLM output) or standard (reviewed scaffolds)")
        ] = "strict",
        as_json: Annotated[bool, typer.Option("--json", help="print the report and verdict as JSON")] = False,
        show_info: Annotated[bool, typer.Option("--info", help="also list info-level findings")] = False,
    ) -> None:
        """Check SCRIPT with the static-check gate; exit 1 when the gate fails."""
        from harness.checks import POLICIES, gate, run_checks

        if policy not in POLICIES:
            raise ConfigError(f"unknown gate policy {policy!r}", hint=f"use one of: {', '.join(POLICIES)}")
        if not script.is_file():
            raise InputError(f"script {script} does not exist", hint="give the path of a Python file")
        try:
            source = script.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {script}: {exc.strerror or exc}", hint="check its permissions") from None
        report = run_checks(source, policy)
        decision = gate(report, policy)
        if as_json:
            payload = {"report": report.model_dump(mode="json"), "gate": decision.model_dump(mode="json")}
            typer.echo(json.dumps(payload, indent=2, ensure_ascii=True))
            raise typer.Exit(0 if decision.passed else 1)
        shown = [f for f in report.findings if show_info or f.severity != "info"]
        if shown:
            table = Table(header_style="bold", expand=False)
            for column in ("code", "severity", "line:col", "message", "hint"):
                table.add_column(column, overflow="fold")
            for f in shown:
                severity = Text(f.severity, style=_STYLE[f.severity])
                # Messages quote the script (names, strings): control characters are shown, not obeyed.
                table.add_row(f.code, severity, f"{f.line}:{f.col}", Text(visible(f.message)), Text(visible(f.hint)))
            out_console.print(table)
        verdict = Text("passed", style="green") if decision.passed else Text("failed", style="red")
        counts = ", ".join(f"{n} {severity}" for severity, n in report.counts.items())
        total = report.durations_ms.get("total", 0.0)
        out_console.print(
            Text.assemble(
                f"{visible(script.name)}: gate ", verdict, f" under the {policy} policy ({counts}; {total:.0f} ms)"
            )
        )
        raise typer.Exit(0 if decision.passed else 1)
