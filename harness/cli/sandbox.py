"""``harness sandbox build|status|prune``: the image, the engine, and leftovers."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from harness.cli.console import err_console, out_console
from harness.cli.context import services

__all__ = ["register"]


def _progress(message: str) -> None:
    err_console.print(f"[dim]sandbox:[/] {message}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command group to ``app``."""
    group = typer.Typer(help="Build the sandbox image, show the engine in use, remove leftovers.", no_args_is_help=True)
    app.add_typer(group, name="sandbox")

    @group.command("build")
    def build(force: Annotated[bool, typer.Option(help="rebuild even when up to date")] = False) -> None:
        """Build the sandbox image (offline from the apt mirror when no registry is reachable)."""
        from harness.execution.docker import connect
        from harness.execution.image import ImageBuilder

        settings = services().settings
        builder = ImageBuilder(connect(settings), settings, _progress)
        tag = builder.build(force=force)
        out_console.print(tag)

    @group.command("status")
    def status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Say which engine, runtime and image are in use, and what harness containers exist."""
        from harness.execution.docker import LABEL, connect
        from harness.execution.image import ImageBuilder

        settings = services().settings
        client = connect(settings)
        info: dict[str, Any] = client.info()
        version: dict[str, Any] = client.version()
        containers = client.api.containers(all=True, filters={"label": LABEL})
        engine: dict[str, Any] = {
            "version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "os": info.get("OperatingSystem"),
            "cgroup_version": info.get("CgroupVersion"),
            "default_runtime": info.get("DefaultRuntime"),
            "runtimes": sorted((info.get("Runtimes") or {}).keys()),
        }
        limits: dict[str, Any] = settings.limits.receipt()
        report: dict[str, Any] = {
            "engine": engine,
            "runtime": settings.runtime or info.get("DefaultRuntime"),
            "image": ImageBuilder(client, settings).current(),
            "containers": [
                {"id": c["Id"][:12], "state": c.get("State"), "owner": (c.get("Labels") or {}).get("harness.owner")}
                for c in containers
            ],
            "limits": limits,
            "pool_size": settings.pool_size,
        }
        if as_json:
            out_console.print_json(json.dumps(report), ensure_ascii=True)
            return
        out_console.print(f"engine   Docker {engine['version']} (API {engine['api_version']}) on {engine['os']}")
        out_console.print(f"runtime  {report['runtime']} (available: {', '.join(engine['runtimes'])})")
        out_console.print(f"image    {report['image'] or 'not built yet: run `harness sandbox build`'}")
        out_console.print(f"leftover containers: {len(containers)}")
        shown = ", ".join(f"{k}={v}" for k, v in limits.items())
        out_console.print(f"default limits: {shown}", markup=False)

    @group.command("prune")
    def prune(
        everything: Annotated[bool, typer.Option("--all", help="also containers of running harness processes")] = False,
        images: Annotated[bool, typer.Option(help="also remove sandbox images other than the current one")] = False,
    ) -> None:
        """Remove containers left by crashed harness processes (and old images with --images)."""
        from harness.execution.docker import LABEL, connect, sweep
        from harness.execution.image import IMAGE_REPO, ImageBuilder

        settings = services().settings
        client = connect(settings)
        removed = sweep(client, everything=everything)
        out_console.print(f"removed {len(removed)} container(s)")
        if images:
            current = ImageBuilder(client, settings).current()
            gone = 0
            for image in client.api.images(filters={"label": LABEL}):
                tags = [t for t in image.get("RepoTags") or [] if t.startswith(IMAGE_REPO + ":")]
                if tags and current not in tags:
                    for tag in tags:
                        client.api.remove_image(tag)
                    gone += 1
            out_console.print(f"removed {gone} old image(s)")
