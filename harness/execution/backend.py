"""The execution backend interface: run one script once, then close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.events import AgentReply, AgentRequestEvent, Event, FetchReply, FetchRequestEvent
from harness.records import RunResult, RunSpec

__all__ = ["AgentDeclined", "AgentHandler", "Backend", "EventCallback", "FetchHandler", "answer_request"]

EventCallback = Callable[[Event], None]
AgentHandler = Callable[[AgentRequestEvent], str]
"""Answers an agent request with text, or raises AgentDeclined with the reason."""


class FetchHandler(Protocol):
    """Makes a fetch for the script (status, headers, body bytes, host, byte counts) or raises with the reason."""

    def __call__(self, request: FetchRequestEvent, *, deadline: float | None = None) -> dict[str, Any]:
        """Answer ``request``, finishing by ``deadline`` (``time.monotonic()`` seconds: the run's own end)."""
        ...


class AgentDeclined(Exception):
    """Raised by an agent handler to refuse a request; the script receives the reason."""


def answer_request(
    request: AgentRequestEvent | FetchRequestEvent,
    on_agent: AgentHandler | None,
    on_fetch: FetchHandler | None,
    deadline: float,
) -> tuple[dict[str, Any], AgentReply | FetchReply]:
    """The reply to one request a script made of the host, and the event that records it; never raises.

    Every backend answers through this, so what a script receives (and what the run's log
    says about it) does not depend on where it ran. ``on_fetch`` None means no grant.
    """
    from harness.execution.egress import NO_GRANT

    reply: dict[str, Any]
    if isinstance(request, FetchRequestEvent):
        host = (urlsplit(request.url).hostname or "")[:253]
        if on_fetch is None:
            reply = {"ok": False, "error": NO_GRANT}
        else:
            try:
                # The run's deadline bounds the request too: no fetch outlives the run.
                reply = {"ok": True, **on_fetch(request, deadline=deadline)}
            except Exception as exc:  # noqa: BLE001 - any failure is the script's answer, not the host's crash
                reply = {"ok": False, "error": str(exc) or type(exc).__name__}
        event = FetchReply(
            id=request.id,
            ok=reply["ok"],
            method=request.method,
            host=host,
            status=reply.get("status"),
            bytes_out=reply.get("bytes_out", 0),
            bytes_in=reply.get("bytes_in", 0),
            error=reply.get("error", ""),
        )
        return reply, event
    if on_agent is None:
        reply = {"ok": False, "text": "", "error": "no agent provider is configured for this run"}
    else:
        try:
            reply = {"ok": True, "text": on_agent(request), "error": ""}
        except AgentDeclined as exc:
            reply = {"ok": False, "text": "", "error": str(exc) or "declined"}
    return reply, AgentReply(id=request.id, ok=reply["ok"], error=reply["error"])


class Backend(ABC):
    """Runs scripts in isolation. Each run is independent; close() releases everything."""

    @abstractmethod
    def run(
        self,
        spec: RunSpec,
        *,
        on_event: EventCallback | None = None,
        on_agent: AgentHandler | None = None,
        on_fetch: FetchHandler | None = None,
    ) -> RunResult:
        """Run ``spec`` once and return its result; events reach ``on_event`` as they arrive.

        ``on_fetch`` makes the HTTP requests the script asks for; without it (or with an empty
        ``spec.egress``) every fetch is refused.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop background work and remove every container this backend made."""

    def cancel(self, run_id: str) -> bool:
        """Stop the run ``run_id`` if it is running here, so it ends ``cancelled``; False when it is not (or cannot be).

        A backend that cannot stop a run keeps this default; callers then let the run finish.
        """
        return False

    def interrupt(self, run_id: str) -> bool:
        """Stop the run ``run_id`` but keep what it wrote to /output, so it ends ``interrupted``; False when it cannot.

        A backend that cannot keep a stopped run's outputs keeps this default; callers then fall back to ``cancel``.
        """
        return False

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
