"""One ``Services`` per CLI invocation: opened by the first command that asks, closed when the command ends."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.execution.backend import Backend
    from harness.services import Services
    from harness.settings import Settings

__all__ = ["close_services", "command_line", "services", "set_command_line"]

_current: ContextVar[tuple[Services, dict[str, Any]] | None] = ContextVar("harness_cli_services", default=None)
_argv: ContextVar[tuple[str, ...]] = ContextVar("harness_cli_argv", default=())


def set_command_line(args: list[str]) -> None:
    """Remember this invocation's arguments as given (a run's provenance records them, redacted)."""
    _argv.set(("harness", *args))


def command_line() -> tuple[str, ...]:
    """This invocation's command line as given (``harness`` and its arguments); empty if unknown."""
    return _argv.get()


def _cli_backend(settings: Settings) -> Backend:
    # One command runs one request: a warm pool would only add containers to start and remove.
    from harness.cli.console import err_console
    from harness.execution.docker import DockerBackend

    def progress(message: str) -> None:
        # Building the sandbox image takes a while the first time: say what is happening, on stderr.
        err_console.print(f"[dim]sandbox:[/] {message}", highlight=False)

    return DockerBackend(settings, pool_size=0, progress=progress)


def services(**overrides: Any) -> Services:
    """This invocation's services, with settings from the environment and ``overrides`` (made on first call)."""
    from harness.services import Services
    from harness.settings import Settings

    current = _current.get()
    if current is not None:
        opened, with_overrides = current
        if overrides and with_overrides != overrides:
            raise RuntimeError("services were already opened with other settings in this invocation")
        return opened
    # Settings are resolved here, at the command's first need, so a bad HARNESS_* value fails where it did.
    opened = Services(Settings.from_env(**overrides), backend_factory=_cli_backend)
    _current.set((opened, dict(overrides)))
    return opened


def close_services() -> None:
    """Close this invocation's services, if a command opened them (its backend's containers go with them)."""
    current = _current.get()
    _current.set(None)
    if current is not None:
        current[0].close()
