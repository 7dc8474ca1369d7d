"""The harness exception tree, drawn by cause. Every error the library raises on purpose is a HarnessError.

    HarnessError
    ├── UserError                   misuse or set-up: fixing the call or set-up fixes it
    │   ├── NotFound                an id or name (record, scaffold, run) names nothing
    │   │   └── RunPrunedError      the run asked for was removed by retention
    │   ├── Conflict                the request clashes with the current state (transition, name, folder)
    │   │   └── OutputExists        (also InputError) the output path holds what the mode may not replace
    │   ├── InvalidInput            a parameter, limit, setting or path value is unusable
    │   │   ├── MissingInputs       the request lacks a parameter, a scaffold or an LLM (``missing``)
    │   │   ├── ConfigError         a setting, per-run limit or parameter value is invalid
    │   │   └── InputError          an input path is missing or an output directory is unusable
    │   │       └── OutputExists    (also Conflict, above)
    │   ├── EngineError             (also Unavailable) the container engine cannot be used
    │   │   ├── EngineUnavailable   no engine answered
    │   │   ├── EngineRefused       an engine answered but refused us (permissions, API error)
    │   │   ├── RuntimeMissing      the OCI runtime asked for by name is not registered in the engine
    │   │   └── ImageError          the sandbox image is missing and cannot be built
    │   └── NotReviewed             (also Refused) no verified approval covers what was asked
    ├── Unavailable                 a service harness needs (engine, LLM) cannot be used now
    │   ├── EngineError             (also UserError, above)
    │   ├── LLMError                an LLM call failed (rate limit, server error, time-out, unreachable)
    │   ├── Busy                    a server's run slots and queue are full: retry after ``retry_after`` s
    │   └── Draining                a server is shutting down and takes no new jobs
    ├── Refused                     a check refused what was asked
    │   ├── GateRefused             the static gate has blocking findings
    │   ├── NotReviewed             (also UserError, above)
    │   └── Tampered                the review key, audit log or reviewed bytes were altered or are unsafe
    ├── BudgetExhausted             the next LLM call would go over the request's token budget
    ├── RemoteError                 a server refused or failed a job; ``kind`` names its error class
    └── RunError                    a run was attempted and did not complete
        └── Cancelled               a cancel or a drain stopped a request before it finished

Placement keeps the old meaning of ``isinstance(exc, UserError)``: every class that was a UserError
still is one (so the CLI still exits 2 for it), and no class that was not has become one. The cause
bases ``Unavailable`` and ``Refused`` therefore sit beside UserError, and the engine errors and
NotReviewed inherit from both sides. Each front-end maps classes to its own codes in one table:
``harness.cli.EXIT_CODES`` for the CLI and :func:`http_status` (``HTTP_STATUS``) for HTTP.

A way out of an error is data too: ``fix`` (a :class:`Fix`) names the action and its target, and
each front-end words it (a CLI flag, a form field, a tool argument); ``hint`` stays plain words.

A script that runs and exits non-zero is not an error: it is a RunResult with a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:
    from harness.checks.models import Finding
    from harness.records import MissingInput

__all__ = [
    "HTTP_STATUS",
    "BudgetExhausted",
    "Busy",
    "Cancelled",
    "ConfigError",
    "Conflict",
    "Draining",
    "EngineError",
    "EngineRefused",
    "EngineUnavailable",
    "Fix",
    "GateRefused",
    "HarnessError",
    "ImageError",
    "InputError",
    "InvalidInput",
    "LLMError",
    "MissingInputs",
    "NotFound",
    "NotReviewed",
    "OutputExists",
    "Refused",
    "RemoteError",
    "RunError",
    "RunPrunedError",
    "RuntimeMissing",
    "Tampered",
    "Unavailable",
    "UserError",
    "http_status",
]


@dataclass(frozen=True)
class Fix:
    """What would resolve an error, as data: ``action`` on ``target`` (with ``values``), worded by each front-end.

    ``give_input``: supply the input ``target`` (a parameter name, ``template``, ``llm``, ``inputs``,
    ``script``, ``against``, ``hosts``);
    ``review``: review and approve the generated script ``target``; ``approve_egress``: approve
    ``target`` with egress to ``values``; ``setup_runtime``: register the OCI runtime ``target`` in
    the engine (``harness sandbox setup-runtime``).
    """

    action: Literal["give_input", "review", "approve_egress", "setup_runtime"]
    target: str = ""
    values: tuple[str, ...] = ()


class HarnessError(Exception):
    """Root of every error harness raises on purpose; ``hint`` says what to do about it, ``fix`` as data."""

    fix: Fix | None = None

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def fixed_by(self, fix: Fix) -> Self:
        """This error, carrying ``fix`` (so it can be raised in one expression)."""
        self.fix = fix
        return self

    def one_line(self) -> str:
        """The message and the hint as a single line for a terminal."""
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UserError(HarnessError):
    """Raised when harness is misused or mis-configured; fixing the call or set-up fixes it."""


class NotFound(UserError):
    """Raised when an id or a name (generated script, scaffold, run) names nothing that exists."""

    def __init__(self, message: str, *, hint: str = "", id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.id = id


class Conflict(UserError):
    """Raised when a request clashes with the current state: an illegal transition, a taken name, a used folder."""

    def __init__(self, message: str, *, hint: str = "", id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.id = id


class InvalidInput(UserError):
    """Raised when a parameter, limit, setting or path value cannot be used; ``name`` says which, when known."""

    def __init__(self, message: str, *, hint: str = "", name: str = "") -> None:
        super().__init__(message, hint=hint)
        self.name = name


class MissingInputs(InvalidInput):
    """Raised when a request cannot run yet: ``missing`` says what it lacks (parameters first), as data."""

    def __init__(self, message: str, *, missing: Sequence[MissingInput] = (), hint: str = "") -> None:
        first = missing[0] if missing else None
        super().__init__(message, hint=hint, name=first.name if first is not None else "")
        self.missing: tuple[MissingInput, ...] = tuple(missing)
        if first is not None:
            self.fix = Fix("give_input", first.name)


class ConfigError(InvalidInput):
    """Raised when a setting, a per-run limit or a parameter value is invalid."""


class InputError(InvalidInput):
    """Raised when an input path does not exist or the output directory cannot be written."""


class OutputExists(InputError, Conflict):
    """Raised when the output path already holds something the chosen output mode may not replace."""

    def __init__(self, message: str, *, hint: str = "", path: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path


class Unavailable(HarnessError):
    """Raised when a service harness needs (the container engine, the LLM API) cannot be used now."""


class EngineError(UserError, Unavailable):
    """Raised when the container engine cannot be used for runs."""


class EngineUnavailable(EngineError):
    """Raised when no container engine answers at the configured address."""


class EngineRefused(EngineError):
    """Raised when the engine answers but refuses a request (permissions, API errors)."""


class RuntimeMissing(EngineError):
    """Raised when a run asks by name for an OCI runtime the engine has not registered (``auto`` never does)."""

    def __init__(self, message: str, *, hint: str = "", runtime: str = "", available: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.runtime = runtime
        self.available = tuple(available)


class ImageError(EngineError):
    """Raised when the sandbox image is missing and cannot be built."""


class LLMError(Unavailable):
    """Raised when an LLM call fails (rate limits, server errors, time-outs, unreachable API)."""

    def __init__(self, message: str, *, hint: str = "", kind: str = "api") -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


class Busy(Unavailable):
    """Raised when a server's run slots and queue are all taken; ``retry_after`` says when to try again."""

    def __init__(self, message: str, *, hint: str = "", retry_after: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class Draining(Unavailable):
    """Raised when a server is shutting down and takes no new jobs."""


class Refused(HarnessError):
    """Raised when a check refuses what was asked (the gate, the review policy, an integrity check)."""


class GateRefused(Refused):
    """Raised when a script must pass the static gate and has blocking findings."""

    def __init__(self, message: str, *, hint: str = "", id: str = "", findings: Sequence[Finding] = ()) -> None:
        super().__init__(message, hint=hint)
        self.id = id
        self.findings: tuple[Finding, ...] = tuple(findings)


class NotReviewed(UserError, Refused):
    """Raised when no valid approval covers the script's bytes, status, egress or limits."""

    def __init__(self, message: str, *, hint: str = "", record_id: str = "", fix: Fix | None = None) -> None:
        super().__init__(message, hint=hint)
        self.record_id = record_id
        self.fix = fix


class Tampered(Refused):
    """Raised when the review key, the audit log or a reviewed file was altered or is not a plain file."""

    def __init__(self, message: str, *, hint: str = "", path: str = "", id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.id = id


class BudgetExhausted(HarnessError):
    """Raised when the next LLM call would take a request over its token budget."""


class RemoteError(HarnessError):
    """Raised when a server refused a job or failed it; ``kind`` is the error class it named."""

    def __init__(self, message: str, *, hint: str = "", kind: str = "HarnessError") -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


class RunError(HarnessError):
    """Raised when a run was started but could not be completed by the harness itself."""

    def __init__(self, message: str, *, hint: str = "", run_id: str = "", stderr_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.stderr_tail = stderr_tail


class Cancelled(RunError):
    """Raised when a use case stops because its cancel token was set (a cancel, a drain) before it finished."""


class RunPrunedError(NotFound):
    """Raised when a run asked for by id was removed by retention."""

    def __init__(self, run_id: str, reason: str, at: str) -> None:
        super().__init__(
            f"run {run_id} was pruned (retention: {reason})",
            hint=f"removed at {at}; keep runs longer with HARNESS_RUNS_MAX_AGE_DAYS and HARNESS_RUNS_MAX_BYTES",
            id=run_id,
        )
        self.run_id = run_id
        self.reason = reason
        self.at = at


# The first class an error is an instance of wins, so a class that inherits from two
# causes (OutputExists, NotReviewed, EngineError) gets the status of the one listed first.
# 429, not 402: the request's own token budget ran out (a quota), and 402 is unstandardised.
# UserError left unclassified is still the caller's mistake: 400, not 500.
HTTP_STATUS: dict[type[HarnessError], int] = {
    Busy: 429,
    BudgetExhausted: 429,
    NotFound: 404,
    Conflict: 409,
    Refused: 403,
    Unavailable: 503,
    InvalidInput: 422,
    UserError: 400,
    HarnessError: 500,
}


def http_status(exc: HarnessError) -> int:
    """The HTTP status an API front-end answers ``exc`` with."""
    return next(status for cls, status in HTTP_STATUS.items() if isinstance(exc, cls))
