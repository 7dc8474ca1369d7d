"""The error tree by cause: one exit-code table for the CLI, one status table for HTTP, both total."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import harness
from harness import errors
from harness.cli import EXIT_CODES, exit_code_for
from harness.errors import (
    BudgetExhausted,
    ConfigError,
    Conflict,
    EngineError,
    EngineRefused,
    EngineUnavailable,
    GateRefused,
    HarnessError,
    ImageError,
    InputError,
    InvalidInput,
    LLMError,
    NotFound,
    NotReviewed,
    OutputExists,
    Refused,
    RunError,
    RunPrunedError,
    Tampered,
    Unavailable,
    UserError,
    http_status,
)
from tests.conftest import Cli


def _every_subclass() -> set[type[HarnessError]]:
    # Import every module first, so a subclass defined anywhere in the package is seen.
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: set[type[HarnessError]] = set()
    todo = [HarnessError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _make(cls: type[HarnessError]) -> HarnessError:
    if cls is RunPrunedError:
        return RunPrunedError("0123456789ab", "age", "2026-01-01")
    return cls("boom")


ALL = sorted(_every_subclass() | {HarnessError}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_error_has_an_exit_code_a_status_a_docstring_and_a_place_in_the_tree(cls: type[HarnessError]) -> None:
    exc = _make(cls)
    assert exit_code_for(exc) in (1, 2)
    assert http_status(exc) in (400, 403, 404, 409, 422, 429, 500, 503)
    assert cls.__doc__ is not None and "\n" not in cls.__doc__.strip()
    assert cls is HarnessError or cls.__doc__.startswith("Raised when")
    tree = (errors.__doc__ or "").split("\n\n")[1]
    assert re.search(rf"[─ ]{cls.__name__}\b", tree), f"{cls.__name__} is missing from the tree in errors.py"


# What the CLI exited with before the tree was redrawn, for every class that existed then.
OLD_EXIT_CODES = {
    UserError: 2,
    ConfigError: 2,
    InputError: 2,
    EngineError: 2,
    EngineUnavailable: 2,
    EngineRefused: 2,
    ImageError: 2,
    NotReviewed: 2,
    RunPrunedError: 2,
    RunError: 1,
    Tampered: 1,
    LLMError: 1,
    BudgetExhausted: 1,
    HarnessError: 1,
}


@pytest.mark.parametrize(("cls", "code"), OLD_EXIT_CODES.items(), ids=lambda c: getattr(c, "__name__", str(c)))
def test_exit_codes_are_what_they_were(cls: type[HarnessError], code: int) -> None:
    exc = _make(cls)
    assert exit_code_for(exc) == code
    # UserError still means exit 2, and only it does.
    assert isinstance(exc, UserError) == (code == 2)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("no run x", id="x"), 2),
        (Conflict("taken", id="x"), 2),
        (InvalidInput("bad", name="p"), 2),
        (OutputExists("not empty", path="/o"), 2),
        (GateRefused("fails the gate", id="g-1"), 1),
        (Refused("not kept"), 1),
        (Unavailable("down"), 1),
    ],
)
def test_new_classes_exit_like_their_side_of_the_tree(exc: HarnessError, code: int) -> None:
    assert exit_code_for(exc) == code


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (NotFound("no scaffold x", id="x"), 404),
        (RunPrunedError("0123456789ab", "age", "2026-01-01"), 404),
        (Conflict("x is approved; it cannot become rejected", id="x"), 409),
        (OutputExists("output folder o is not empty", path="o"), 409),
        (InvalidInput("bad value", name="p"), 422),
        (ConfigError("bad limit"), 422),
        (InputError("input path i does not exist"), 422),
        (EngineUnavailable("no engine"), 503),
        (EngineRefused("permission denied"), 503),
        (ImageError("no image"), 503),
        (LLMError("rate limited", kind="rate_limit"), 503),
        (GateRefused("fails the strict gate"), 403),
        (NotReviewed("not approved", record_id="g-1"), 403),
        (Tampered("changed after approval", path="p"), 403),
        (BudgetExhausted("token budget exhausted"), 429),
        (UserError("misuse not yet sorted by cause"), 400),
        (RunError("the run broke", run_id="r"), 500),
        (HarnessError("anything else"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, HarnessError) else str(v),
)
def test_http_status_follows_the_cause(exc: HarnessError, status: int) -> None:
    assert http_status(exc) == status


def test_errors_carry_data() -> None:
    assert NotFound("m", id="g-1").id == "g-1"
    assert Conflict("m", id="sales").id == "sales"
    assert InvalidInput("m", name="limit").name == "limit"
    assert OutputExists("m", hint="h", path="/out").path == "/out"
    assert OutputExists("m", hint="h").one_line() == "m: h"
    assert RunPrunedError("0123456789ab", "age", "t").id == "0123456789ab"
    assert GateRefused("m", id="g-1", findings=()).findings == ()
    assert Tampered("m", path="p", id="g-1").id == "g-1"


def test_the_exit_table_ends_with_the_root() -> None:
    assert list(EXIT_CODES)[-1] is HarnessError
    assert list(errors.HTTP_STATUS)[-1] is HarnessError


def test_old_import_paths_still_work() -> None:
    from harness.generation.budget import BudgetExhausted as OldBudget
    from harness.generation.llm import LLMError as OldLLM

    assert OldBudget is BudgetExhausted and OldLLM is LLMError


def test_the_cli_exits_2_for_an_unknown_scaffold(cli: Cli) -> None:
    code, _, err = cli("templates", "show", "no_such_scaffold")
    assert code == 2 and "no scaffold called 'no_such_scaffold'" in err
