"""``harness mcp``: serve harness's tools to a coding agent over MCP on stdin/stdout.

stdout carries the protocol and nothing else: this command prints nothing there, and while the
server runs the SDK points file descriptor 1 at stderr for everything but the protocol, so a
stray print (ours, a library's, a child's) cannot corrupt a message.
"""

from __future__ import annotations

import signal

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``mcp`` command to ``app``."""

    @app.command("mcp")
    def mcp_command() -> None:
        """Serve the harness tools over MCP on stdio (for Claude Code, Claude Desktop and other agents).

        One long-lived process: the warm container pool (HARNESS_POOL_SIZE) and the stores stay
        open between tool calls; the pool's containers are removed when the client hangs up.
        """
        from harness.mcp.server import serve
        from harness.services import Services
        from harness.settings import Settings

        # Opened and closed here, outside the server's event loop, so the containers are removed
        # also when the loop ends on Ctrl-C or SIGTERM.
        opened = Services(Settings.from_env())
        try:
            serve(opened)
        finally:
            # A client hangs up by closing stdin, then sends SIGTERM a few seconds later (the MCP
            # stdio shutdown): removing the containers must not be cut short by it.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            opened.close()
