"""What a request reports while it is served: one stream of ``RequestEvent``s into one ``EventSink``.

The CLI's live display, a server's Server-Sent Events, MCP progress notifications and (later) a
worker's state updates all read this one stream, so a use case never takes more than one
callback. Events are frozen models discriminated by ``kind``, like the run events they wrap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.events import Event
from harness.records import Analysis, Decision

__all__ = [
    "Analysed",
    "Decided",
    "EventSink",
    "Finished",
    "LlmCall",
    "LlmText",
    "PhaseChanged",
    "RequestEvent",
    "RunEvent",
    "Vetted",
]


class _Progress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Analysed(_Progress):
    """The request was analysed (workflow type, complexity, candidates, estimate)."""

    kind: Literal["analysed"] = "analysed"
    analysis: Analysis


class Decided(_Progress):
    """How the request will be served."""

    kind: Literal["decided"] = "decided"
    decision: Decision


class LlmCall(_Progress):
    """An LLM call starts (its number within the request): generation, a repair, a second opinion."""

    kind: Literal["llm_call"] = "llm_call"
    number: int


class LlmText(_Progress):
    """Text the model streamed: untrusted, like any script output."""

    kind: Literal["llm_text"] = "llm_text"
    text: str


class Vetted(_Progress):
    """The script was checked: the gate's verdict under its policy, and the findings by code."""

    kind: Literal["vetted"] = "vetted"
    policy: str
    passed: bool
    findings: tuple[str, ...] = Field((), description="finding codes, in the order found")


class RunEvent(_Progress):
    """An event from the sandbox run (of a plan's ``phase``, when in a plan)."""

    kind: Literal["run"] = "run"
    event: Event
    phase: str | None = None


class PhaseChanged(_Progress):
    """A plan's phase changed state (waiting, running, succeeded, failed, skipped...)."""

    kind: Literal["phase_changed"] = "phase_changed"
    phase: str
    state: str
    run_id: str | None = None
    message: str = Field("", description="why a finished phase ended as it did")


class Finished(_Progress):
    """The request (or plan) ended with this status; its report is in the run (or plan) folder."""

    kind: Literal["finished"] = "finished"
    run_id: str
    status: str


RequestEvent = Annotated[
    Analysed | Decided | LlmCall | LlmText | Vetted | RunEvent | PhaseChanged | Finished, Field(discriminator="kind")
]
EventSink = Callable[[RequestEvent], None]
