"""``harness templates list|show``: the scaffold library.

A promoted scaffold's description and examples came from a request and an LLM, so every text
field is shown through ``visible`` (and escaped wherever markup is on).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.console import err_console, out_console
from harness.cli.context import services
from harness.safe_text import visible

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``templates`` command group to ``app``."""
    group = typer.Typer(help="List and inspect the scaffold library.", no_args_is_help=True)
    app.add_typer(group, name="templates")

    @group.command("list")
    def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """List the scaffolds: name, workflow type, description."""
        from harness.app.catalog import list_scaffolds

        catalog = list_scaffolds(services())
        for error in catalog.errors:
            err_console.print(f"[yellow]warning:[/] scaffold not loaded: {escape(visible(error))}", highlight=False)
        if as_json:
            out_console.print_json(
                json.dumps([s.model_dump(mode="json") for s in catalog.scaffolds]), ensure_ascii=True
            )
            return
        table = Table(header_style="bold")
        table.add_column("name", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("description")
        for scaffold in catalog.scaffolds:
            egress = f" [yellow](egress: {escape(visible(', '.join(scaffold.egress)))})[/]" if scaffold.egress else ""
            name, kind, title = (
                escape(visible(text)) for text in (scaffold.name, scaffold.workflow_type, scaffold.title)
            )
            table.add_row(name, kind, title + egress)
        out_console.print(table)

    @group.command("show")
    def show_command(
        name: Annotated[str, typer.Argument(help="scaffold name")],
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Show a scaffold: description, parameters, inputs, outputs and an example invocation."""
        from harness.app.catalog import show_scaffold

        scaffold = show_scaffold(services(), name)
        if as_json:
            out_console.print_json(scaffold.model_dump_json(), ensure_ascii=True)
            return
        head = f"{scaffold.name} · {scaffold.workflow_type} · ~{scaffold.expected_runtime_s:g}s"
        out_console.print(visible(head), style="bold", markup=False)
        out_console.print(visible(scaffold.title), style="bold", markup=False)
        out_console.print(visible(scaffold.description, lines=True), markup=False)
        table = Table(header_style="bold", title="parameters", title_justify="left")
        for column in ("name", "type", "default", "example", "description"):
            table.add_column(column, overflow="fold")
        for pname, p in scaffold.parameters.items():
            kind = f"choice: {', '.join(p.choices)}" if p.type == "choice" else p.type
            default = "(required)" if p.required else json.dumps(p.default)
            cells = (pname, kind, default, json.dumps(p.example), p.description)
            table.add_row(*(escape(visible(cell)) for cell in cells))
        out_console.print(table)
        for label, specs in (("reads", scaffold.inputs), ("writes", scaffold.outputs)):
            for spec in specs:
                out_console.print(visible(f"{label} {spec.path}: {spec.description}"), markup=False)
        in_force, why = scaffold.egress_in_force, scaffold.egress_withheld
        if in_force:
            out_console.print(visible(f"egress (sealed by review): {', '.join(in_force)}"), markup=False)
        elif why:
            out_console.print(visible(f"egress declared but not granted: {why}"), markup=False)
        for assertion in scaffold.assertions:
            when = ", ".join(f"{k}={v}" for k, v in assertion.when.items())
            line = f"asserts {assertion.file}: {assertion.description}" + (f" (when {when})" if when else "")
            out_console.print(visible(line), markup=False)
        example = scaffold.examples[0]
        params = " ".join(
            f"--param {k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in example.params.items()
        )
        line = f'example: harness run "{example.request}" --template {scaffold.name} {params}'.rstrip()
        out_console.print("\n" + visible(line), markup=False)
