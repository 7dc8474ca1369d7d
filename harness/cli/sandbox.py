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
        from harness.errors import RuntimeMissing
        from harness.execution.docker import LABEL, connect
        from harness.execution.engines import engine_name, selectable_runtimes
        from harness.execution.image import ImageBuilder
        from harness.execution.runtimes import describe, resolve

        settings = services().settings
        client = connect(settings)
        info: dict[str, Any] = client.info()
        version: dict[str, Any] = client.version()
        kind = engine_name(version)
        available = selectable_runtimes(kind, info)
        try:
            runtime: str | None = resolve(
                settings.runtime, available, engine_default=str(info.get("DefaultRuntime") or "runc")
            )
            problem = ""
        except RuntimeMissing as exc:
            # Status reports the problem instead of failing on it: this is where one looks.
            runtime, problem = None, exc.one_line()
        containers = client.api.containers(all=True, filters={"label": LABEL})
        engine: dict[str, Any] = {
            "name": kind,
            "version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "os": info.get("OperatingSystem"),
            "cgroup_version": info.get("CgroupVersion"),
            "default_runtime": info.get("DefaultRuntime"),
            "runtimes": list(available),
        }
        limits: dict[str, Any] = settings.limits.receipt()
        report: dict[str, Any] = {
            "engine": engine,
            "runtime": runtime,
            "runtime_setting": settings.runtime,
            **({"runtime_problem": problem} if problem else {}),
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
        out_console.print(
            f"engine   {kind.capitalize()} {engine['version']} (API {engine['api_version']}) on {engine['os']}"
        )
        asked = "" if settings.runtime == runtime else f" ({settings.runtime})"
        shown_runtime = describe(runtime) + asked if runtime else f"none usable: {problem}"
        out_console.print(f"runtime  {shown_runtime}", markup=False, highlight=False)
        out_console.print(f"         available: {', '.join(available)}", markup=False, highlight=False)
        out_console.print(f"image    {report['image'] or 'not built yet: run `harness sandbox build`'}")
        out_console.print(f"leftover containers: {len(containers)}")
        shown = ", ".join(f"{k}={v}" for k, v in limits.items())
        out_console.print(f"default limits: {shown}", markup=False)

    @group.command("setup-runtime")
    def setup_runtime_command(
        name: Annotated[str, typer.Argument(help="the runtime to register: runsc (gVisor)")] = "runsc",
        install: Annotated[bool, typer.Option(help="apt-get install the runtime when it is missing")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="print what was done as JSON")] = False,
    ) -> None:
        """Install gVisor's runsc, register it in the engine's daemon.json, reload the engine, and probe it (root)."""
        import os

        from harness.errors import InvalidInput
        from harness.execution.docker import connect
        from harness.execution.engine_setup import hardened_probe, setup_runtime

        if os.geteuid() != 0:
            raise InvalidInput(
                "setting up a runtime changes the engine's configuration: it needs root",
                hint=f"run it as root: sudo harness sandbox setup-runtime {name}",
            )
        settings = services().settings
        client = connect(settings)
        outcome = setup_runtime(
            name,
            client,
            lambda runtime: hardened_probe(settings, client, runtime),
            install=install,
            progress=_progress,
        )
        if as_json:
            data = {
                "runtime": outcome.runtime,
                "installed": outcome.installed,
                "config_path": str(outcome.config_path),
                "config_changed": outcome.config_changed,
                "backup": None if outcome.backup is None else str(outcome.backup),
                "reloaded": outcome.reloaded,
                "probe": outcome.probe,
                "notes": outcome.notes,
            }
            out_console.print_json(json.dumps(data), ensure_ascii=True)
            return
        for note in outcome.notes:
            out_console.print(note, markup=False, highlight=False)
        probe = outcome.probe
        out_console.print(
            f"{name} is ready: a hardened probe ran under {probe['runtime']} in {probe['duration_s']:.2f} s"
            f" (uid {probe.get('uid')}, kernel {probe.get('kernel')}, no network, read-only root)",
            markup=False,
            highlight=False,
        )

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
