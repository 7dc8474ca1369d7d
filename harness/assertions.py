"""Assertions a scaffold declares about its outputs, checked on the host after every run of it.

A scaffold promises files (``[[outputs]]``); assertions make the promise checkable: the file
exists, parses as its format, has the keys and the number of items it should, contains what
it should. A run that exits 0 but breaks an assertion has failed, which makes assertions the
quality gate between a plan's phases (a dependent phase never starts on broken input) and
feeds the scaffold's success record. Everything read here was written by untrusted code, so
files are size-capped and must stay inside the output folder.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

if TYPE_CHECKING:
    from harness.records import RunResult

__all__ = ["Assertion", "AssertionOutcome", "check_counts", "check_outputs", "processed_line", "verify"]

MAX_PARSE_BYTES = 64 * 1024 * 1024  # larger files are checked for existence and size only
_MISSING = object()


class Assertion(BaseModel):
    """One declared property of a scaffold's output (``[[assertions]]`` in scaffold.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1)
    file: str = Field(min_length=1, description="glob under /output; {param} is replaced by the parameter's value")
    format: Literal["json", "jsonl", "csv", "text", "zip", "tar"] | None = None
    min_bytes: int = Field(1, ge=0, description="an empty file breaks the assertion unless this is 0")
    contains: tuple[str, ...] = ()
    keys: tuple[str, ...] = Field((), description="keys the JSON document (an object) must have")
    at: str = Field("", description="dotted path into the JSON document (list items by index)")
    min_items: int | None = Field(None, ge=0, description="items at `at` (JSON), data rows (csv), lines (jsonl/text)")
    equals: JsonValue = Field(None, description="the JSON value at `at` must equal this (null: not checked)")
    when: dict[str, JsonValue] = Field(default_factory=dict, description="applies only with these parameter values")
    satisfies: str | None = Field(
        None,
        description="a list parameter of conditions (e.g. 'where'): every record of the file (json, jsonl, csv) "
        "that has a condition's fields must meet it, checked on the host",
    )

    def applies(self, params: Mapping[str, Any]) -> bool:
        """True when the run's parameters match ``when``."""
        return all(params.get(k) == v for k, v in self.when.items())


class AssertionOutcome(BaseModel):
    """An assertion's verdict on one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    file: str
    passed: bool
    detail: str = ""


def check_outputs(
    assertions: Sequence[Assertion], output_dir: Path, params: Mapping[str, Any]
) -> tuple[AssertionOutcome, ...]:
    """Check every assertion that applies to ``params`` against the files in ``output_dir``."""
    root = output_dir.resolve()
    results = []
    for assertion in assertions:
        if not assertion.applies(params):
            continue
        pattern = _substitute(assertion.file, params)
        failure = _check(assertion, root, pattern, _conditions(assertion, params))
        results.append(
            AssertionOutcome(
                description=assertion.description, file=pattern, passed=failure is None, detail=failure or ""
            )
        )
    return tuple(results)


def _substitute(pattern: str, params: Mapping[str, Any]) -> str:
    for name, value in params.items():
        pattern = pattern.replace("{" + name + "}", str(value))
    return pattern


def _conditions(assertion: Assertion, params: Mapping[str, Any]) -> tuple[Any, ...]:
    """The parsed conditions a ``satisfies`` assertion checks (none when the parameter is empty)."""
    if assertion.satisfies is None:
        return ()
    from harness.runtime_data import data_module

    raw = params.get(assertion.satisfies) or ()
    texts = [raw] if isinstance(raw, str) else [str(item) for item in raw]
    data = data_module()
    return tuple(data.compile_condition(text) for text in texts if text.strip())


def _check(assertion: Assertion, root: Path, pattern: str, conditions: tuple[Any, ...] = ()) -> str | None:
    if not root.is_dir():
        return "the run left no output folder"
    matches = sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())
    matches = [p for p in matches if p.resolve().is_relative_to(root)]
    if not matches:
        return f"no file matches {pattern}"
    for path in matches:
        problem = _check_file(assertion, path) or (_check_records(path, conditions) if conditions else None)
        if problem is not None:
            return f"{path.relative_to(root)}: {problem}"
    return None


def _check_file(assertion: Assertion, path: Path) -> str | None:
    size = path.stat().st_size
    if size < assertion.min_bytes:
        return f"{size} bytes, expected at least {assertion.min_bytes}"
    needs_content = assertion.format or assertion.contains or assertion.keys or assertion.min_items is not None
    if not needs_content and assertion.equals is None:
        return None
    if size > MAX_PARSE_BYTES:
        return f"too large to check ({size} bytes)"
    data = path.read_bytes()
    if assertion.format in ("zip", "tar"):
        return _check_archive(assertion.format, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    for needle in assertion.contains:
        if needle not in text:
            return f"does not contain {needle!r}"
    fmt = assertion.format or ("json" if assertion.keys or assertion.at or assertion.equals is not None else "text")
    if fmt == "json":
        return _check_json(assertion, text)
    if fmt == "jsonl":
        lines = [line for line in text.splitlines() if line.strip()]
        for number, line in enumerate(lines, 1):
            try:
                json.loads(line)
            except ValueError:
                return f"line {number} is not JSON"
        return _enough(assertion, len(lines), "lines")
    if fmt == "csv":
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error as exc:
            return f"not CSV ({exc})"
        if not rows:
            return "no header row"
        return _enough(assertion, len(rows) - 1, "data rows")
    return _enough(assertion, sum(1 for line in text.splitlines() if line.strip()), "non-empty lines")


def _records(path: Path) -> list[dict[str, Any]] | None:
    """The file's records (a JSON array of objects, JSON lines, or CSV rows), or None for another shape."""
    text = path.read_bytes()[:MAX_PARSE_BYTES].decode("utf-8", errors="replace")
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    try:
        if path.suffix in (".jsonl", ".ndjson"):
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rows, list):
        return None
    return [row for row in rows if isinstance(row, dict)]


def _check_records(path: Path, conditions: tuple[Any, ...]) -> str | None:
    """The first record that breaks a condition it can be checked against (all of its fields present)."""
    from harness.runtime_data import data_module

    data = data_module()
    records = _records(path)
    if records is None:
        return "records expected (a JSON array, JSON lines or CSV) to check the conditions against"
    for number, record in enumerate(records, 1):

        def lookup(name: str, record: dict[str, Any] = record) -> Any:
            value: Any = record
            for part in name.split("."):
                key = part if isinstance(value, dict) and part in value else None
                if key is None and isinstance(value, dict):
                    key = data.match_column(list(value), part)
                if key is None:
                    return data.MISSING
                value = value[key]
            return value

        for condition in conditions:
            if any(lookup(field) is data.MISSING for field in condition.fields):
                continue  # the field was not kept in the output: nothing to check it against
            if not condition.holds(lookup):
                return f"record {number} does not meet {condition.text!r}"
    return None


def _check_json(assertion: Assertion, text: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if assertion.keys:
        if not isinstance(document, dict):
            return "the document is not an object"
        absent = [k for k in assertion.keys if k not in document]
        if absent:
            return f"lacks {', '.join(absent)}"
    value = _at(document, assertion.at)
    where = assertion.at or "the top level"
    if value is _MISSING:
        return f"has no {assertion.at}"
    if assertion.equals is not None and value != assertion.equals:
        return f"{where} is {json.dumps(value)[:80]}, expected {json.dumps(assertion.equals)}"
    if assertion.min_items is not None:
        if not isinstance(value, (list, dict)):
            return f"{where} is not a list or object"
        return _enough(assertion, len(value), f"items at {where}")
    return None


def _at(document: Any, path: str) -> Any:
    value = document
    for part in path.split(".") if path else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _enough(assertion: Assertion, count: int, what: str) -> str | None:
    if assertion.min_items is not None and count < assertion.min_items:
        return f"{count} {what}, expected at least {assertion.min_items}"
    return None


def _check_archive(kind: str, data: bytes) -> str | None:
    stream = io.BytesIO(data)
    try:
        if kind == "zip":
            with zipfile.ZipFile(stream) as archive:
                bad = archive.testzip()  # CRC of every member
                return f"member {bad} is corrupt" if bad else (None if archive.namelist() else "an empty zip")
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            return None if archive.getmembers() else "an empty tar archive"
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        return f"not a valid {kind} archive ({exc})"


_COUNTS = ("records_in", "records_out", "records_skipped")  # what ``hr.processed`` reports


def _counts(run: RunResult) -> dict[str, tuple[float, str]]:
    counts: dict[str, tuple[float, str]] = {}
    for event in run.events:
        if event.kind == "metric" and event.name in _COUNTS:
            counts[event.name] = (event.value, event.unit)  # the last report of each counts
    return counts


def processed_line(run: RunResult) -> str:
    """What the script says it went through, as words ("600 lines read, 598 parsed, 2 skipped"); "" if untold."""
    counts = _counts(run)
    return ", ".join(
        f"{value:g} {unit}".rstrip() for name in _COUNTS if name in counts for value, unit in [counts[name]]
    )


def check_counts(run: RunResult) -> str | None:
    """Why the script's own account of its work rules out success, if it does.

    A run that read nothing has not answered anything, and counts that do not add up mean
    records went missing. Script-reported numbers can only ever turn a success into a failure.
    """
    counts = _counts(run)
    if "records_in" in counts and counts["records_in"][0] <= 0:
        return f"nothing was read ({processed_line(run)})"
    if len(counts) == len(_COUNTS):
        read, out, skipped = (counts[name][0] for name in _COUNTS)
        if read != out + skipped:
            return f"the script's counts do not add up: {processed_line(run)}"
    return None


def verify(
    run: RunResult, assertions: Sequence[Assertion], output_dir: Path | None, params: Mapping[str, Any]
) -> tuple[RunResult, tuple[AssertionOutcome, ...]]:
    """The verify stage: a succeeded run that read nothing, or whose outputs break an assertion, has failed."""
    if not run.ok:
        return run, ()
    problem = check_counts(run)
    if problem is not None:
        return run.model_copy(update={"status": "failed", "message": problem}), ()
    if not (assertions and output_dir is not None):
        return run, ()
    outcomes = tuple(check_outputs(assertions, output_dir, params))
    broken = [a for a in outcomes if not a.passed]
    if not broken:
        return run, outcomes
    message = f"scaffold assertion failed: {broken[0].description} ({broken[0].detail})"
    if len(broken) > 1:
        message += f", and {len(broken) - 1} more"
    return run.model_copy(update={"status": "failed", "message": message}), outcomes
