"""The event protocol: what a sandboxed script reports, as the host reads it.

A script writes one JSON object per line on stdout, ``{"v": 1, "kind": ..., ...}``
(``sandbox/harness_runtime`` does this for it). The host turns every line into a
typed, immutable event with a sequence number and a timestamp:

* a JSON object with ``"v"`` is a protocol event; a known kind with a valid shape
  becomes its model, anything else becomes :class:`UnknownEvent` (kept, never fatal);
* every other line (plain text, other JSON, binary garbage) becomes :class:`OutputEvent`;
* lines over :data:`MAX_LINE` bytes are cut and flagged ``truncated``;
* every string in a protocol line (keys included) is made valid Unicode: a lone surrogate,
  which a JSON escape such as ``"\\ud800"`` produces from perfectly valid bytes, becomes
  U+FFFD, so what a script sends can always be written to disk and shown; NaN and the
  infinities are refused by the models, and nesting deeper than :data:`MAX_DEPTH` levels
  makes the line an :class:`UnknownEvent` (the records that embed an event nest it further);
* the host adds its own :class:`RunStarted` / :class:`RunFinished`, :class:`AgentReply`,
  :class:`FetchReply` and :class:`EventsDropped`; a script that writes those kinds gets an
  ``unknown`` event.

Nothing a script reports decides the run's status.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE",
    "SCHEMA_VERSION",
    "AgentReply",
    "AgentRequestEvent",
    "ArtifactEvent",
    "Event",
    "EventsDropped",
    "FetchReply",
    "FetchRequestEvent",
    "LineSplitter",
    "LogEvent",
    "MetricEvent",
    "OutputEvent",
    "PhaseEvent",
    "ProgressEvent",
    "ResultEvent",
    "RunFinished",
    "RunStarted",
    "UnknownEvent",
    "parse_line",
]

SCHEMA_VERSION = 1
MAX_LINE = 64 * 1024
MAX_DEPTH = 64
"""Deepest nesting of lists and objects kept from a script's event.

pydantic refuses values nested past about 250 levels; a result nested just under that would be
accepted here and then crash the report that wraps it a few levels deeper.
"""
_TEXT = 16 * 1024  # longest text field kept from a script's event


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seq: int = 0
    t: float = Field(0.0, description="seconds since the run started, host monotonic clock")


class PhaseEvent(_Event):
    """A named phase started or ended."""

    kind: Literal["phase"] = "phase"
    name: Annotated[str, Field(max_length=200)]
    status: Literal["start", "end"]
    ok: bool | None = None


class ProgressEvent(_Event):
    """Progress inside a phase: ``done`` of ``total`` units."""

    kind: Literal["progress"] = "progress"
    done: float
    total: float | None = None
    message: Annotated[str, Field(max_length=_TEXT)] = ""
    phase: str | None = None


class LogEvent(_Event):
    """A log line from the script."""

    kind: Literal["log"] = "log"
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: Annotated[str, Field(max_length=_TEXT)]


class MetricEvent(_Event):
    """A named measurement."""

    kind: Literal["metric"] = "metric"
    name: Annotated[str, Field(max_length=200)]
    value: float
    unit: Annotated[str, Field(max_length=50)] = ""


class ArtifactEvent(_Event):
    """A file under /output that the script declares as a deliverable."""

    kind: Literal["artifact"] = "artifact"
    path: Annotated[str, Field(max_length=4096)]
    description: Annotated[str, Field(max_length=_TEXT)] = ""


class ResultEvent(_Event):
    """The script's structured result (informational only)."""

    kind: Literal["result"] = "result"
    data: JsonValue = None


class AgentRequestEvent(_Event):
    """The script asks the host for an LLM agent call."""

    kind: Literal["agent_request"] = "agent_request"
    id: Annotated[str, Field(max_length=100)]
    role: Annotated[str, Field(max_length=100)]
    prompt: Annotated[str, Field(max_length=MAX_LINE)]


class FetchRequestEvent(_Event):
    """The script asks the host to make an HTTP request for it (egress, when a reviewed policy grants it)."""

    kind: Literal["fetch_request"] = "fetch_request"
    id: Annotated[str, Field(max_length=100)]
    method: Annotated[str, Field(pattern=r"^[A-Z]{3,7}$")] = "GET"
    url: Annotated[str, Field(max_length=8192)]
    headers: dict[str, Annotated[str, Field(max_length=8192)]] = Field(default_factory=dict, max_length=50)
    body_b64: Annotated[str, Field(max_length=MAX_LINE)] = ""


class OutputEvent(_Event):
    """A line of plain output (anything that is not a protocol event)."""

    kind: Literal["output"] = "output"
    stream: Literal["stdout", "stderr"] = "stdout"
    text: str
    truncated: bool = False


class UnknownEvent(_Event):
    """A protocol line the host did not accept, kept with the reason."""

    kind: Literal["unknown"] = "unknown"
    raw: str
    reason: str


class RunStarted(_Event):
    """Host event: the script was handed to a container."""

    kind: Literal["run_started"] = "run_started"
    run_id: str
    image: str
    pooled: bool
    runtime: str = Field("", description="the OCI runtime the engine runs the container under (runc, runsc, ...)")


class RunFinished(_Event):
    """Host event: the run ended and its status was decided by the host."""

    kind: Literal["run_finished"] = "run_finished"
    run_id: str
    status: str
    exit_code: int | None
    duration_s: float


class AgentReply(_Event):
    """Host event: how an agent request was answered (or why it was declined)."""

    kind: Literal["agent_reply"] = "agent_reply"
    id: str
    ok: bool
    error: str = ""


class FetchReply(_Event):
    """Host event: how a fetch request was answered or refused (never its body)."""

    kind: Literal["fetch_reply"] = "fetch_reply"
    id: str
    ok: bool
    method: str = "GET"
    host: str = ""
    status: int | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    error: str = ""


class EventsDropped(_Event):
    """Host event: past the run's event caps, this many events (and their bytes) were counted, not kept."""

    kind: Literal["events_dropped"] = "events_dropped"
    count: int = Field(0, ge=0, description="events neither shown nor written")
    bytes: int = Field(0, ge=0, description="their size (on disk, or the raw lines' estimate)")
    blank_lines: int = Field(0, ge=0, description="consecutive blank output lines folded into one")


Event = Annotated[
    PhaseEvent
    | ProgressEvent
    | LogEvent
    | MetricEvent
    | ArtifactEvent
    | ResultEvent
    | AgentRequestEvent
    | FetchRequestEvent
    | OutputEvent
    | UnknownEvent
    | RunStarted
    | RunFinished
    | AgentReply
    | FetchReply
    | EventsDropped,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

# Kinds a script may send. Host kinds written by a script are reported as unknown.
_SCRIPT_KINDS: dict[str, type[_Event]] = {
    "phase": PhaseEvent,
    "progress": ProgressEvent,
    "log": LogEvent,
    "metric": MetricEvent,
    "artifact": ArtifactEvent,
    "result": ResultEvent,
    "agent_request": AgentRequestEvent,
    "fetch_request": FetchRequestEvent,
}
_LEVELS = {"warn": "warning", "critical": "error", "fatal": "error", "exception": "error"}


def _short(text: str, limit: int = 2048) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooDeep(ValueError):
    pass


def _text(value: str) -> str:
    """``value`` as valid Unicode: lone surrogates (from JSON escapes) become U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def _clean(value: Any, depth: int = 0) -> Any:
    """A parsed JSON value with every string made valid, keys included; _TooDeep past MAX_DEPTH."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise _TooDeep
        return [_clean(item, depth + 1) for item in value]
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _TooDeep
        # Two keys that differ only in their lone surrogates become one: the later value wins.
        return {_text(key): _clean(item, depth + 1) for key, item in value.items()}
    return value


def parse_line(
    line: bytes,
    *,
    stream: Literal["stdout", "stderr"] = "stdout",
    truncated: bool = False,
    seq: int = 0,
    t: float = 0.0,
) -> Event:
    """Turn one line of a script's output into an event; never raises."""
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    if stream == "stderr" or truncated or not text.startswith("{"):
        return OutputEvent(seq=seq, t=t, stream=stream, text=text, truncated=truncated)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return OutputEvent(seq=seq, t=t, stream=stream, text=text)
    if not isinstance(obj, dict) or "v" not in obj:
        return OutputEvent(seq=seq, t=t, stream=stream, text=text)
    try:
        obj = _clean(obj)
    except _TooDeep:
        return UnknownEvent(seq=seq, t=t, raw=_short(text), reason=f"nested deeper than {MAX_DEPTH} levels")
    kind = obj.pop("kind", None)
    version = obj.pop("v")
    if version != SCHEMA_VERSION:
        reason = f"unsupported protocol version {_short(repr(version), 100)}"
        return UnknownEvent(seq=seq, t=t, raw=_short(text), reason=reason)
    model = _SCRIPT_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return UnknownEvent(seq=seq, t=t, raw=_short(text), reason=f"unknown kind {_short(repr(kind), 100)}")
    if model is LogEvent and isinstance(obj.get("level"), str):
        level = obj["level"].lower()
        obj["level"] = _LEVELS.get(level, level)
    obj.pop("seq", None)
    obj.pop("t", None)
    try:
        return model.model_validate({**obj, "seq": seq, "t": t})  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _short(".".join(str(p) for p in first.get("loc", ())) or kind, 200)
        return UnknownEvent(seq=seq, t=t, raw=_short(text), reason=f"invalid {kind} event: {where}: {first['msg']}")
    except (RecursionError, ValueError, TypeError) as exc:
        return UnknownEvent(seq=seq, t=t, raw=_short(text), reason=_short(f"invalid {kind} event: {exc}", 500))


class LineSplitter:
    """Splits a byte stream into lines of at most ``max_line`` bytes, in bounded memory.

    A longer line is cut at ``max_line`` bytes, flagged, and the rest of it dropped.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.rest: bytes | None = None

    def feed(self, data: bytes, stop: bytes | None = None) -> list[tuple[bytes, bool]]:
        """Add bytes; return the complete lines they finish as ``(line, truncated)``.

        With ``stop``, splitting ends after the first complete line containing it (that line
        is the last returned) and the bytes after it are left, unsplit, in :attr:`rest`.
        """
        out: list[tuple[bytes, bool]] = []
        start = 0
        self.rest = None
        while (nl := data.find(b"\n", start)) >= 0:
            if self._discarding:
                self._discarding = False
            else:
                piece = data[start:nl]
                if self._buf:
                    self._buf += piece
                    piece = bytes(self._buf)
                    self._buf.clear()
                if len(piece) > self.max_line:
                    out.append((piece[: self.max_line], True))
                else:
                    out.append((piece, False))
                    if stop is not None and stop in piece:
                        self.rest = data[nl + 1 :]
                        return out
            start = nl + 1
        if not self._discarding and start < len(data):
            self._buf += data[start:]
            if len(self._buf) > self.max_line:
                out.append((bytes(self._buf[: self.max_line]), True))
                self._buf.clear()
                self._discarding = True
        return out

    def pending_size(self) -> int:
        """Bytes held for a line that has not ended yet."""
        return len(self._buf)

    def flush(self) -> list[tuple[bytes, bool]]:
        """Return the unfinished last line, if any, at the end of the stream."""
        if self._buf and not self._discarding:
            line = bytes(self._buf)
            self._buf.clear()
            return [(line, False)]
        self._buf.clear()
        self._discarding = False
        return []
