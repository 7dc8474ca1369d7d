"""The harness exception tree. Every error the library raises on purpose is a HarnessError.

    HarnessError
    ├── UserError                 misuse or set-up; the CLI exits 2
    │   ├── ConfigError           a setting or limit value is invalid
    │   ├── InputError            an input path is missing or an output directory is unusable
    │   ├── EngineError           the container engine cannot be used
    │   │   ├── EngineUnavailable no engine answered
    │   │   ├── EngineRefused     an engine answered but refused us (permissions, API error)
    │   │   └── ImageError        the sandbox image is missing and cannot be built
    │   ├── NotReviewed           no verified approval covers what was asked (status, hosts, limits)
    │   └── RunPrunedError        a run asked for by id was removed by retention
    ├── RunError                  a run was attempted and did not complete; the CLI exits 1
    └── Tampered                  the review key, audit log or reviewed bytes were altered or are unsafe;
                                  whatever they vouched for is treated as not approved; the CLI exits 1

A script that runs and exits non-zero is not an error: it is a RunResult with a status.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngineError",
    "EngineRefused",
    "EngineUnavailable",
    "HarnessError",
    "ImageError",
    "InputError",
    "NotReviewed",
    "RunError",
    "RunPrunedError",
    "Tampered",
    "UserError",
]


class HarnessError(Exception):
    """Root of every error harness raises on purpose; ``hint`` says what to do about it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and the hint as a single line for a terminal."""
        return f"{self.message}: {self.hint}" if self.hint else self.message


class UserError(HarnessError):
    """Raised when harness is misused or mis-configured; fixing the call or set-up fixes it."""


class ConfigError(UserError):
    """Raised when a setting or a per-run limit has an invalid value."""


class InputError(UserError):
    """Raised when an input path does not exist or the output directory cannot be written."""


class EngineError(UserError):
    """Raised when the container engine cannot be used for runs."""


class EngineUnavailable(EngineError):
    """Raised when no container engine answers at the configured address."""


class EngineRefused(EngineError):
    """Raised when the engine answers but refuses a request (permissions, API errors)."""


class ImageError(EngineError):
    """Raised when the sandbox image is missing and cannot be built."""


class RunError(HarnessError):
    """Raised when a run was started but could not be completed by the harness itself."""

    def __init__(self, message: str, *, hint: str = "", run_id: str = "", stderr_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id
        self.stderr_tail = stderr_tail


class NotReviewed(UserError):
    """Raised when no valid approval covers the script's bytes, status, egress or limits."""

    def __init__(self, message: str, *, hint: str = "", record_id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.record_id = record_id


class RunPrunedError(UserError):
    """Raised when a run asked for by id was removed by retention."""

    def __init__(self, run_id: str, reason: str, at: str) -> None:
        super().__init__(
            f"run {run_id} was pruned (retention: {reason})",
            hint=f"removed at {at}; keep runs longer with HARNESS_RUNS_MAX_AGE_DAYS and HARNESS_RUNS_MAX_BYTES",
        )
        self.run_id = run_id
        self.reason = reason
        self.at = at


class Tampered(HarnessError):
    """Raised when the review key, the audit log or a reviewed file was altered or is not a plain file."""

    def __init__(self, message: str, *, hint: str = "", path: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path
