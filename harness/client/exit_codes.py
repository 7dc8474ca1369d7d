"""The CLI's exit code for each error class, by name, for errors that come back from a server.

Generated from ``harness.cli.EXIT_CODES`` (a test keeps the two equal): importing that table would
load typer and rich, and the server names the class in its problem's ``type``.
"""

from __future__ import annotations

__all__ = ["EXIT_CODES_BY_NAME", "exit_code_for_type"]

EXIT_CODES_BY_NAME: dict[str, int] = {
    "BudgetExhausted": 1,
    "Busy": 1,
    "Cancelled": 1,
    "ConfigError": 2,
    "Conflict": 2,
    "Draining": 1,
    "EngineError": 2,
    "EngineRefused": 2,
    "EngineUnavailable": 2,
    "GateRefused": 1,
    "HarnessError": 1,
    "ImageError": 2,
    "InputError": 2,
    "InvalidInput": 2,
    "LLMError": 1,
    "MissingInputs": 2,
    "NotFound": 2,
    "NotReviewed": 2,
    "OutputExists": 2,
    "Refused": 1,
    "RemoteError": 1,
    "RunError": 1,
    "RunPrunedError": 2,
    "RuntimeMissing": 2,
    "Tampered": 1,
    "Unavailable": 1,
    "UserError": 2,
}


def exit_code_for_type(name: str) -> int:
    """The exit code for a problem ``type``; a class this client does not know (``Busy``, a newer one) exits 1."""
    return EXIT_CODES_BY_NAME.get(name, 1)
