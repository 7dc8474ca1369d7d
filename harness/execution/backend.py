"""The execution backend interface: run one script once, then close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from harness.events import AgentRequestEvent, Event, FetchRequestEvent
from harness.records import RunResult, RunSpec

__all__ = ["AgentDeclined", "AgentHandler", "Backend", "EventCallback", "FetchHandler"]

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

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
