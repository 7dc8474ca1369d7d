"""``harness templates list|show``: the scaffold library.

A promoted scaffold's description and examples came from a request and an LLM, so every text
field is shown through ``visible`` (and escaped wherever markup is on).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.console import err_console, out_console
from harness.cli.context import services
from harness.safe_text import visible

__all__ = ["register"]


def _egress_in_force(scaffold: Any) -> tuple[tuple[str, ...], str | None]:
    """What a scaffold's runs actually get: its egress only while a verified promotion seals it."""
    if not scaffold.egress:
        return (), None
    from harness.review.policy import scaffold_egress
    from harness.review.store import GeneratedStore
    from harness.settings import Settings

    return scaffold_egress(GeneratedStore.from_settings(Settings.from_env()).trust, scaffold)


def _describe(scaffold: Any) -> dict[str, Any]:
    in_force, why = _egress_in_force(scaffold)
    return {
        "name": scaffold.name,
        "title": scaffold.title,
        "workflow_type": scaffold.workflow_type,
        "description": scaffold.description,
        "keywords": list(scaffold.keywords),
        "parameters": {n: p.model_dump(exclude_none=True) for n, p in scaffold.parameters.items()},
        "inputs": [i.model_dump() for i in scaffold.inputs],
        "outputs": [o.model_dump() for o in scaffold.outputs],
        "expected_runtime_s": scaffold.expected_runtime_s,
        "assertions": [a.model_dump(exclude_defaults=True) for a in scaffold.assertions],
        "examples": [e.model_dump(exclude_none=True) for e in scaffold.examples],
        "egress": list(scaffold.egress),
        "egress_in_force": list(in_force),
        "egress_withheld": why,
        "version": scaffold.version,
        "provenance": scaffold.provenance,
    }


def register(app: typer.Typer) -> None:
    """Add the ``templates`` command group to ``app``."""
    group = typer.Typer(help="List and inspect the scaffold library.", no_args_is_help=True)
    app.add_typer(group, name="templates")

    @group.command("list")
    def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """List the scaffolds: name, workflow type, description."""
        library = services().library
        for error in library.errors:
            err_console.print(
                f"[yellow]warning:[/] scaffold not loaded: {escape(visible(str(error)))}", highlight=False
            )
        if as_json:
            out_console.print_json(json.dumps([_describe(s) for s in library.scaffolds]), ensure_ascii=True)
            return
        table = Table(header_style="bold")
        table.add_column("name", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("description")
        for scaffold in library.scaffolds:
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
        scaffold = services().library.get(name)
        if as_json:
            out_console.print_json(json.dumps(_describe(scaffold)), ensure_ascii=True)
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
        in_force, why = _egress_in_force(scaffold)
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
