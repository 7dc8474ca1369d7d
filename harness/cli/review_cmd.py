"""``harness review list|show|diff|approve|reject`` and ``harness promote``: people decide what is trusted.

What a reviewer reads must be what runs: the script, its request and every LLM note pass
through ``visible``, so an escape sequence in a comment is shown rather than obeyed.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from harness.cli.console import err_console, out_console
from harness.cli.context import services
from harness.errors import InvalidInput
from harness.safe_text import visible

if TYPE_CHECKING:
    from harness.review.params import Proposal

__all__ = ["register"]


def _reviewer(name: str | None) -> str:
    try:
        return name or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def register(app: typer.Typer) -> None:
    """Add the ``review`` group and the ``promote`` command to ``app``."""
    group = typer.Typer(help="Review generated scripts before they are trusted.", no_args_is_help=True)
    app.add_typer(group, name="review")

    @group.command("list")
    def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """List generated scripts: pending, approved, rejected, promoted."""
        from harness.app.review import list_records

        records = list_records(services())
        if as_json:
            out_console.print_json(json.dumps([json.loads(r.model_dump_json()) for r in records]), ensure_ascii=True)
            return
        table = Table(header_style="bold")
        for column in ("id", "status", "strategy", "gate", "created", "request"):
            table.add_column(column, overflow="fold")
        for r in records:
            table.add_row(
                r.id,
                r.status,
                r.strategy,
                "passed" if r.gate_passed else "failed",
                r.created_at,
                escape(visible(r.request[:70])),
            )
        out_console.print(table)

    @group.command("show")
    def show_command(record_id: Annotated[str, typer.Argument(help="generated-script id")]) -> None:
        """Show a generated script with its findings, attempts and runs."""
        from harness.app.review import show

        detail = show(services(), record_id)
        record, script, digest = detail.record, detail.script, detail.sha256
        head = f"{record.id} · {record.status} · {record.strategy} · {record.model}"
        out_console.print(visible(head), style="bold", markup=False)
        out_console.print(visible(f"request: {record.request}"), markup=False)
        if record.explanation:
            out_console.print(visible(f"explanation: {record.explanation}"), markup=False)
        if record.granted_hosts:
            out_console.print(visible(f"egress granted: {', '.join(record.granted_hosts)}"), markup=False)
        if detail.changed_after_review:
            reviewed = (record.reviewed_sha256 or "")[:16]
            out_console.print(f"[bold red]the script changed after review[/] (reviewed {reviewed}…)")
        out_console.print(f"sha256: {digest} (approve these bytes with --sha256 {digest[:16]})", markup=False)
        out_console.print(Syntax(visible(script, lines=True), "python", line_numbers=True))
        for attempt in record.attempts:
            outcome = "gate passed" if attempt.gate_passed else (attempt.problem or "gate failed")
            findings = f" [{', '.join(attempt.findings[:8])}]" if attempt.findings else ""
            run = f", run {attempt.run_status}" if attempt.run_status else ""
            line = f"attempt {attempt.number} ({attempt.stage}): {outcome}{findings}{run}"
            out_console.print(visible(line), markup=False)
        out_console.print(f"runs: {', '.join(record.runs) or 'none'}; tokens: {record.tokens}", markup=False)

    @group.command("diff")
    def diff_command(
        record_id: Annotated[str, typer.Argument(help="generated-script id")],
        against: Annotated[str | None, typer.Option(help="scaffold to compare with (default: its base)")] = None,
    ) -> None:
        """Show how a generated script differs from a scaffold (its base by default)."""
        from harness.app.review import diff

        compared = diff(services(), record_id, against)
        out_console.print(Syntax("\n".join(compared.lines) or "(no difference)", "diff"))

    @group.command("approve")
    def approve_command(
        record_id: Annotated[str, typer.Argument(help="generated-script id")],
        note: Annotated[str, typer.Option(help="why it is fine")] = "",
        reviewer: Annotated[str | None, typer.Option(help="who reviewed it (default: your user name)")] = None,
        allow_host: Annotated[
            list[str] | None,
            typer.Option(
                "--allow-host", help="grant these bytes egress to a host (host, host:port, *.domain); repeatable"
            ),
        ] = None,
        sha256: Annotated[
            str | None,
            typer.Option(
                "--sha256", help="approve only if the script still has this hash (or prefix), as review show prints it"
            ),
        ] = None,
    ) -> None:
        """Approve the script's exact bytes as reviewed (and any egress they need)."""
        from harness.app.review import approve

        record = approve(
            services(), record_id, reviewer=_reviewer(reviewer), note=note, hosts=allow_host or (), sha256=sha256
        )
        digest = (record.reviewed_sha256 or "")[:16]
        hosts = record.granted_hosts
        granted = f"; egress to {', '.join(hosts)}" if hosts else ""
        out_console.print(f"{record.id} approved (sha256 {digest}…){granted}", markup=False)

    @group.command("grant")
    def grant_command(
        record_id: Annotated[str, typer.Argument(help="an approved generated-script id")],
        allow_host: Annotated[
            list[str] | None, typer.Option("--allow-host", help="host, host:port or *.domain to add; repeatable")
        ] = None,
        replace: Annotated[
            bool, typer.Option("--replace", help="the hosts given replace the grant (none: revoke)")
        ] = False,
        reviewer: Annotated[str | None, typer.Option(help="who grants it (default: your user name)")] = None,
    ) -> None:
        """Grant an approved script's reviewed bytes egress to more hosts, or replace (revoke) its grant."""
        from harness.app.review import grant

        record = grant(services(), record_id, allow_host or (), reviewer=_reviewer(reviewer), replace=replace)
        out_console.print(f"{record.id} egress: {', '.join(record.granted_hosts) or 'none'}", markup=False)

    @group.command("reject")
    def reject_command(
        record_id: Annotated[str, typer.Argument(help="generated-script id")],
        reason: Annotated[str, typer.Option(help="why it is rejected (required)")],
        reviewer: Annotated[str | None, typer.Option(help="who reviewed it (default: your user name)")] = None,
    ) -> None:
        """Reject the script, with the reason."""
        from harness.app.review import reject

        record = reject(services(), record_id, reviewer=_reviewer(reviewer), reason=reason)
        out_console.print(f"{record.id} rejected", markup=False)

    @app.command("promote")
    def promote_command(
        record_id: Annotated[str, typer.Argument(help="an approved generated-script id")],
        name: Annotated[str, typer.Option("--name", help="the new scaffold's name")],
        reviewer: Annotated[str | None, typer.Option(help="who promotes it (default: your user name)")] = None,
        param: Annotated[
            list[str] | None,
            typer.Option("--param", help="make only this proposed parameter (constant or name) one; repeatable"),
        ] = None,
        no_params: Annotated[bool, typer.Option("--no-params", help="keep every value fixed")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="accept the proposed parameters")] = False,
    ) -> None:
        """Turn an approved generated script into a scaffold, reused next time with no LLM."""
        from harness.app.review import promote, propose_params

        opened = services()
        opened.generated.load_record(record_id)  # an unknown id says so before any LLM call
        proposals: list[Proposal] = []
        if not no_params:
            proposed = propose_params(opened, record_id)
            for note in proposed.notes:
                err_console.print(visible(f"note: {note}"), markup=False, style="dim")
            proposals = list(proposed.proposals)
        chosen = _confirm(proposals, param or [], yes)
        done = promote(opened, record_id, name, reviewer=_reviewer(reviewer), parameters=chosen)
        out_console.print(f"promoted {record_id} to {done.folder}", markup=False)
        if chosen:
            names = ", ".join(p.name for p in chosen)
            err_console.print(f"parameters: {names} (defaults are the reviewed values)", style="dim")
        else:
            err_console.print("no parameters: every value is fixed as reviewed", style="dim")


def _confirm(proposals: list[Proposal], wanted: list[str], yes: bool) -> list[Proposal]:
    """The proposals a person accepted: named with --param, confirmed with --yes or at the prompt."""
    if wanted:
        from harness.app.review import choose

        return list(choose(proposals, wanted))
    if not proposals:
        return []
    table = Table(header_style="bold", title="proposed parameters")
    for column in ("constant", "parameter", "type", "default", "description", "from"):
        table.add_column(column, overflow="fold")
    for p in proposals:
        kind = f"choice: {', '.join(p.choices)}" if p.choices else p.type
        source = "LLM" if p.source == "llm" else "rule"
        cells = (p.constant, p.name, kind, json.dumps(p.default), p.description)
        table.add_row(*(escape(visible(cell)) for cell in cells), source)
    err_console.print(table)
    if yes:
        return proposals
    if not sys.stdin.isatty():
        raise InvalidInput(
            f"{len(proposals)} parameter(s) proposed and not confirmed",
            hint="pass --yes to accept them, --param NAME to choose some, or --no-params to fix every value",
        )
    return proposals if typer.confirm("make these parameters?", default=True, err=True) else []
