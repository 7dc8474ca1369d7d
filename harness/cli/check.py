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

from harness.cli.options import LocalOption
from harness.cli.render import check_verdict, emit, findings_table
from harness.errors import ConfigError, InputError

__all__ = ["register"]


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
        local: LocalOption = False,
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
        findings_table(report.model_dump(mode="json")["findings"], include_info=show_info)
        emit([check_verdict(script.name, decision.passed, policy, report.counts, report.durations_ms)])
        raise typer.Exit(0 if decision.passed else 1)
