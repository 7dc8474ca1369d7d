"""The thin client: ``harness`` commands served by a running ``harness serve``, standard library only.

``connect()`` finds the server (``HARNESS_URL``, else the default socket) and raises ``NoServer``
when nothing answers, so the CLI can fall back to working in-process. The names load on first
access: ``harness.client.endpoint`` (the CLI's first step) must not pull in ``http.client``.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: the thin client's start-up would pay for importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from harness.client.endpoint import ClientError, Endpoint, NoServer, resolve
    from harness.client.transport import Client, ProblemError, ServerLost, SseEvent, connect

_HOMES = {
    "Client": "harness.client.transport",
    "ClientError": "harness.client.endpoint",
    "Endpoint": "harness.client.endpoint",
    "NoServer": "harness.client.endpoint",
    "ProblemError": "harness.client.transport",
    "ServerLost": "harness.client.transport",
    "SseEvent": "harness.client.transport",
    "connect": "harness.client.transport",
    "resolve": "harness.client.endpoint",
}

__all__ = [
    "Client",
    "ClientError",
    "Endpoint",
    "NoServer",
    "ProblemError",
    "ServerLost",
    "SseEvent",
    "connect",
    "resolve",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first access."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(home), name)
