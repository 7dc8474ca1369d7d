"""``harness worker`` (run jobs from the broker on this host's engine) and ``harness workers`` (list them)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

__all__ = ["register"]


def _broker(given: str | None) -> str:
    from harness.errors import ConfigError

    url = given or os.environ.get("HARNESS_BROKER_URL", "")
    if not url:
        raise ConfigError("no broker given", hint="pass --broker redis://HOST:PORT/0 or set HARNESS_BROKER_URL")
    return url


def register(app: typer.Typer) -> None:
    """Add the ``worker`` and ``workers`` commands to ``app``."""

    @app.command("worker")
    def worker_command(
        broker: Annotated[
            str | None, typer.Option("--broker", help="redis:// URL (default: HARNESS_BROKER_URL)")
        ] = None,
        concurrency: Annotated[int, typer.Option(min=0, help="runs at once (0: one per core)")] = 0,
        max_run_s: Annotated[
            float,
            typer.Option(
                "--max-run-s",
                min=1,
                envvar="HARNESS_WORKER_MAX_RUN_S",
                help="longest run accepted; a lost worker's job is redelivered within this + 10 s",
            ),
        ] = 3600.0,
        metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")] = None,
        metrics_host: Annotated[str, typer.Option(help="address for /metrics")] = "127.0.0.1",
        hostname: Annotated[str | None, typer.Option(help="this worker's name (default: harness@HOST-PID)")] = None,
    ) -> None:
        """Run jobs from the broker in sandbox containers on this host's engine, until SIGTERM (warm shutdown).

        Needs HARNESS_JOB_KEY (the submitters' key: jobs it cannot verify are refused). Agent calls in
        scripts are answered with this host's ANTHROPIC_API_KEY, if it has one.
        """
        from harness.distributed.jobs import job_key
        from harness.distributed.worker import WorkerConfig, start_worker

        job_key()  # no key, no worker: say so before connecting anywhere
        config = WorkerConfig(
            _broker(broker),
            concurrency=concurrency or None,
            max_run_s=max_run_s,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            hostname=hostname,
        )
        start_worker(config)

    @app.command("workers")
    def workers_command(
        broker: Annotated[
            str | None, typer.Option("--broker", help="redis:// URL (default: HARNESS_BROKER_URL)")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False,
        timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for workers to answer")] = 1.0,
    ) -> None:
        """List the live workers: hostname, engine, pool, running, done, failed."""
        from harness.cli.render import emit_json
        from harness.distributed.worker import list_workers

        rows = list_workers(_broker(broker), timeout=timeout)
        if as_json:
            emit_json(rows)
            return
        if not rows:
            typer.echo("no workers answered")
            return
        typer.echo(f"{'HOSTNAME':40} {'ENGINE':16} {'POOL':12} {'RUNNING':>7} {'DONE':>6} {'FAILED':>6}")
        for r in rows:
            typer.echo(
                f"{r['hostname'][:40]:40} {r['engine'][:16]:16} {r['pool'][:12]:12} "
                f"{r['running']:>7} {r['done']:>6} {r['failed']:>6}"
            )
