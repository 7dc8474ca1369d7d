"""``harness serve``: the HTTP API on a Unix socket (default) or on TCP with a bearer token."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.console import err_console

__all__ = ["register"]


def _default_socket_help() -> str:
    # Said in --help, as it applies to this user now (XDG_RUNTIME_DIR set or not).
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return f"default: $XDG_RUNTIME_DIR/harness/harness.sock, here {runtime}/harness/harness.sock"
    from platformdirs import user_data_path

    data_dir = os.environ.get("HARNESS_DATA_DIR") or str(user_data_path("harness", appauthor=False))
    return f"default, as XDG_RUNTIME_DIR is unset: <data dir>/run/harness.sock, here {data_dir}/run/harness.sock"


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve")
    def serve_command(
        listen: Annotated[
            str | None,
            typer.Option("--listen", help="serve on TCP HOST:PORT instead; always needs the bearer token"),
        ] = None,
        socket_path: Annotated[
            Path | None, typer.Option("--socket", help=f"Unix socket path ({_default_socket_help()})")
        ] = None,
        concurrency: Annotated[int, typer.Option(min=0, help="runs at once (0: one per core)")] = 0,
        queue: Annotated[int, typer.Option(min=0, help="jobs waiting beyond those (0: 4 per run slot); then 429")] = 0,
        grace: Annotated[float, typer.Option(min=0, help="on SIGTERM, seconds running jobs get to finish")] = 30.0,
        broker: Annotated[
            str | None,
            typer.Option(
                "--broker", help="send runs to harness workers through this redis:// broker (HARNESS_BROKER_URL)"
            ),
        ] = None,
        print_openapi: Annotated[
            bool, typer.Option("--print-openapi", help="print the OpenAPI document and exit")
        ] = False,
    ) -> None:
        """Serve the HTTP API (runs, requests, review, history, /healthz, /metrics) and the review page at /review.

        The Unix socket is 0600 in a 0700 folder: its permissions are the authentication.

        With --listen, every request needs the bearer token, made on first use in <data dir>/server-token (0600);
        a browser opens the review page once through the one-time login link printed at start.

        SIGTERM drains: new jobs get 503, running ones get --grace seconds, then are cancelled.
        """
        from harness.server.app import ServeOptions
        from harness.settings import Settings

        settings = Settings.from_env(broker_url=broker)
        options = ServeOptions(concurrency=concurrency, queue=queue)
        if print_openapi:
            from harness.server.app import create_app

            typer.echo(json.dumps(create_app(settings, options=options).openapi(), indent=2, sort_keys=True))
            return
        from harness.server.serve import serve

        def announce(line: str) -> None:
            err_console.print(line, markup=False, highlight=False)

        code = serve(settings, options, listen=listen, socket_path=socket_path, grace=grace, announce=announce)
        raise typer.Exit(code)
