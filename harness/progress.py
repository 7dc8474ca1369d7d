"""What a request reports while it is served: one stream of ``RequestEvent``s into one ``EventSink``.

The CLI's live display, a server's Server-Sent Events, MCP progress notifications and (later) a
worker's state updates all read this one stream, so a use case never takes more than one
callback. Events are frozen models discriminated by ``kind``, like the run events they wrap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from harness.events import Event
from harness.records import Analysis, Decision

__all__ = [
    "Analysed",
    "Decided",
    "Drafted",
    "EventSink",
    "Finished",
    "LlmCall",
    "LlmText",
    "PhaseChanged",
    "Planned",
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


class AttemptLine(_Progress):
    """One generation attempt as a front-end lists it: its number, stage, and what went wrong, if anything."""

    number: int
    stage: str
    problem: str = ""
    findings: tuple[str, ...] = ()


class GenerationLine(_Progress):
    """A generated script as a front-end announces it: its id, where it is kept for review, attempts, tokens."""

    id: str
    folder: str
    tokens: int
    attempts: tuple[AttemptLine, ...] = ()


class Drafted(_Progress):
    """The request is prepared (after ``vetted``): what a front-end shows before anything runs.

    Plain JSON-safe data, so a remote front-end renders it as the in-process one does: the run
    id and folder, the generated script's summary, every finding in full, and the script itself
    when the request is a dry run (which shows it and stops).
    """

    kind: Literal["drafted"] = "drafted"
    run_id: str
    run_dir: str
    generation: GenerationLine | None = None
    findings: tuple[dict[str, JsonValue], ...] = Field((), description="the gate's findings, as Finding JSON")
    script: str | None = Field(None, description="the script, for a dry run only")


class Planned(_Progress):
    """The request became a plan: its phases by stage (as ``analyze`` lists them), before any runs."""

    kind: Literal["planned"] = "planned"
    phases: tuple[dict[str, JsonValue], ...]
    output_dir: str


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
    Analysed | Decided | LlmCall | LlmText | Vetted | Drafted | Planned | RunEvent | PhaseChanged | Finished,
    Field(discriminator="kind"),
]
EventSink = Callable[[RequestEvent], None]
