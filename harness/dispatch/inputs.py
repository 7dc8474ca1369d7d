"""What the inputs hold, read cheaply before deciding: file types, sizes, table columns and values.

Dispatch takes parameters from the data as well as from the request ("total sales per
region" over a CSV whose header says ``Region``), so it needs each table's columns, which of
them are numeric, and the values of the categorical ones. Only the head of each file is
read (``SAMPLE_BYTES``), so a 10 MB CSV costs what a small one does; the reading itself is
the sandbox's own reader, so host and script agree on delimiters, encodings and numbers.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.runtime_data import data_module

__all__ = ["InputFacts", "TableFacts", "inspect_inputs"]

SAMPLE_BYTES = 64 * 1024
MAX_FILES = 2000
MAX_VALUES = 50  # distinct values kept per categorical column
TABLE_SUFFIXES = {".csv", ".tsv", ".tab", ".psv"}
RECORD_SUFFIXES = {".json", ".jsonl", ".ndjson"}
LOG_SUFFIXES = {".log", ".jsonl", ".ndjson", ".out", ".err", ""}


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableFacts(_Facts):
    """One table-like file: its columns, the numeric ones, and the values seen in the others."""

    name: str
    kind: str = Field(description="csv or records (JSON / JSON lines)")
    columns: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    values: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="column -> distinct values seen")
    rows_sampled: int = 0


class InputFacts(_Facts):
    """A summary of the inputs, made before anything runs."""

    files: int = 0
    total_bytes: int = 0
    extensions: dict[str, int] = Field(default_factory=dict)
    names: tuple[str, ...] = Field((), description="relative file names, up to a cap")
    tables: tuple[TableFacts, ...] = ()
    log_formats: dict[str, int] = Field(default_factory=dict, description="lines sampled per recognised log format")
    unreadable: tuple[str, ...] = ()
    truncated: bool = Field(False, description="more files than were looked at")

    @property
    def columns(self) -> list[str]:
        """Every column or field name across the tables, first spelling first."""
        seen: dict[str, str] = {}
        for table in self.tables:
            for column in table.columns:
                seen.setdefault(column.casefold(), column)
        return list(seen.values())

    @property
    def numeric_columns(self) -> list[str]:
        """Columns that hold numbers in every table that has them."""
        seen: dict[str, str] = {}
        for table in self.tables:
            for column in table.numeric:
                seen.setdefault(column.casefold(), column)
        return list(seen.values())

    @property
    def label_columns(self) -> list[str]:
        """Columns that are not numbers: the ones whose values can name groups."""
        numeric = {c.casefold() for c in self.numeric_columns}
        return [c for c in self.columns if c.casefold() not in numeric]

    def find_column(self, wanted: str) -> str | None:
        """The column ``wanted`` names (case, spacing, ``_``/``-``/``.`` ignored), if exactly one does."""
        data = data_module()
        hit = data.match_column(self.columns, wanted)
        if hit is not None:
            return str(hit)
        flat = {c: c.replace(".", " ") for c in self.columns}
        hits = [c for c, spaced in flat.items() if data.match_column([spaced], wanted)]
        return hits[0] if len(hits) == 1 else None

    def suggest_columns(self, wanted: str) -> list[str]:
        """Columns close to ``wanted``, for a refusal that says what was probably meant."""
        return list(data_module().suggest_columns(self.columns, wanted))

    def columns_with_value(self, word: str) -> list[str]:
        """Categorical columns in which ``word`` is one of the values (case-insensitive)."""
        folded = word.casefold()
        found: dict[str, None] = {}
        for table in self.tables:
            for column, values in table.values.items():
                if any(v.casefold() == folded for v in values):
                    found[column] = None
        return list(found)

    @property
    def has_tables(self) -> bool:
        """True when some input reads as a table or as records."""
        return bool(self.tables)


def _walk(paths: Sequence[Path]) -> Iterable[tuple[Path, str]]:
    for root in paths:
        root = Path(root)
        if root.is_file():
            yield root, root.name
            continue
        if not root.is_dir():
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = Path(folder) / name
                yield path, str(path.relative_to(root.parent))


def _head(path: Path, size: int) -> tuple[bytes, bool]:
    with path.open("rb") as fh:
        raw = fh.read(size + 1)
    if len(raw) <= size:
        return raw, False
    cut = raw[:size]
    end = cut.rfind(b"\n")
    return (cut[: end + 1] if end > 0 else cut), True


def _table_facts(name: str, kind: str, rows: list[dict[str, Any]], columns: Sequence[str], comma: bool) -> TableFacts:
    data = data_module()
    numeric, values = [], {}
    for column in columns:
        cells = [row.get(column) for row in rows]
        present = [c for c in cells if c not in (None, "")]
        if present and all(data.parse_number(c, decimal_comma=comma) is not None for c in present):
            numeric.append(column)
            continue
        distinct: dict[str, None] = {}
        for cell in present:
            if isinstance(cell, (dict, list)):
                continue
            distinct.setdefault(str(cell), None)
            if len(distinct) > MAX_VALUES:
                break
        if distinct and len(distinct) <= MAX_VALUES:
            values[column] = tuple(distinct)
    return TableFacts(
        name=name, kind=kind, columns=tuple(columns), numeric=tuple(numeric), values=values, rows_sampled=len(rows)
    )


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not prefix:  # one level: customer.name, not deeper
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _records(text: str, suffix: str, complete: bool) -> list[dict[str, Any]] | None:
    if suffix in (".jsonl", ".ndjson") or (text.lstrip().startswith("{") and "\n{" in text):
        records = []
        for line in text.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        return records or None
    if not complete:
        return None  # half a JSON document says nothing reliable
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        document = lists[0] if len(lists) == 1 else [document]
    if isinstance(document, list):
        return [r for r in document if isinstance(r, dict)] or None
    return None


def inspect_inputs(
    paths: Sequence[Path], *, sample_bytes: int = SAMPLE_BYTES, max_files: int = MAX_FILES
) -> InputFacts:
    """Look at the inputs (heads of files only) and summarise what dispatch can use."""
    data = data_module()
    files = 0
    total = 0
    extensions: Counter[str] = Counter()
    names: list[str] = []
    tables: list[TableFacts] = []
    log_formats: Counter[str] = Counter()
    unreadable: list[str] = []
    truncated = False
    for path, name in _walk(paths):
        if files >= max_files:
            truncated = True
            break
        try:
            info = path.lstat()
        except OSError:
            unreadable.append(name)
            continue
        if not path.is_file() or path.is_symlink():
            continue
        files += 1
        total += info.st_size
        suffix = path.suffix.lower()
        extensions[suffix or "(none)"] += 1
        if len(names) < 200:
            names.append(name)
        if suffix not in TABLE_SUFFIXES | RECORD_SUFFIXES | LOG_SUFFIXES | {".txt"}:
            continue
        try:
            raw, cut = _head(path, sample_bytes)
            text, encoding = data.decode(raw)
        except (OSError, data.DataError):
            unreadable.append(name)
            continue
        if suffix in TABLE_SUFFIXES:
            try:
                table = data.parse_table(path.name, text, encoding=encoding, warn=None)
            except data.DataError:
                unreadable.append(name)
                continue
            tables.append(_table_facts(path.name, "csv", table.rows, table.columns, table.decimal_comma))
            continue
        if suffix in RECORD_SUFFIXES:
            records = _records(text, suffix, not cut)
            if records:
                flat = [_flatten(r) for r in records[:500]]
                columns = list(dict.fromkeys(k for r in flat for k in r))
                tables.append(_table_facts(path.name, "records", flat, columns, False))
        if suffix in LOG_SUFFIXES or suffix == ".txt":
            for line in text.splitlines()[:200]:
                entry = data.parse_log_line(line)
                if entry is not None:
                    log_formats[entry["format"]] += 1
    return InputFacts(
        files=files,
        total_bytes=total,
        extensions=dict(extensions.most_common()),
        names=tuple(names),
        tables=tuple(tables),
        log_formats=dict(log_formats.most_common()),
        unreadable=tuple(unreadable),
        truncated=truncated,
    )
