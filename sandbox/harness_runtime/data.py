"""Everyday data, read robustly inside the sandbox: tables, logs, and one small expression language.

Scaffolds share this module instead of each carrying its own reader, so a CSV with a BOM, a
semicolon dialect or a Latin-1 byte is read the same way everywhere, and a condition such as
``total >= 100 and status == paid`` or a derived column ``revenue = units * unit_price`` means
the same thing in every scaffold. Standard library only; nothing here calls ``eval``.

    from harness_runtime import data

    tables = data.read_tables(paths)            # unreadable or empty files are skipped, with a warning
    column = data.match_column(table.columns, "region")   # case- and spacing-insensitive
    keep = data.compile_condition("units > 2")
    keep.evaluate(lambda name: data.table_value(table, row, name))
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = [
    "DataError",
    "ExpressionError",
    "LogEntry",
    "LogFile",
    "Table",
    "compile_assignment",
    "compile_condition",
    "compile_expression",
    "decode",
    "format_number",
    "match_column",
    "parse_log_line",
    "parse_number",
    "parse_table",
    "read_log",
    "read_logs",
    "read_table",
    "read_tables",
    "read_text",
    "suggest_columns",
]

MAX_FILE_BYTES = 512 * 1024 * 1024
DELIMITERS = ",;\t|"
SAMPLE_LINES = 50


class DataError(ValueError):
    """A file that cannot be used as the data asked for (empty, binary, no header...)."""


def _warn(message: str) -> None:
    # Imported here so this module also loads outside the sandbox (tests, the host's fixtures).
    from harness_runtime import log

    log(message, "warning")


Warn = Callable[[str], None]


# -- text ---------------------------------------------------------------------------------------
def read_text(path: Path, *, warn: Warn | None = _warn) -> tuple[str, str]:
    """The file's text and the encoding it was read with: UTF-8 (BOM stripped), UTF-16 by BOM, else cp1252/Latin-1."""
    raw = Path(path).read_bytes()
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"{Path(path).name}: {len(raw)} bytes is more than this reader takes ({MAX_FILE_BYTES})")
    try:
        text, encoding = decode(raw)
    except DataError as exc:
        raise DataError(f"{Path(path).name}: {exc}") from None
    if encoding in ("cp1252", "latin-1") and warn is not None:
        warn(f"{Path(path).name}: not UTF-8; read as {encoding}")
    return text, encoding


# -- numbers ------------------------------------------------------------------------------------
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")
_EURO_GROUPED = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
_CURRENCY = "$€£¥"


def parse_number(text: Any, *, decimal_comma: bool = False) -> Decimal | None:
    """``text`` as an exact number (thousands separators, a currency sign and a decimal comma understood), else None."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return Decimal(text)
    if isinstance(text, float):
        return Decimal(repr(text)) if text == text and abs(text) != float("inf") else None
    if isinstance(text, Decimal):
        return text if text.is_finite() else None
    if not isinstance(text, str):
        return None
    value = text.strip().replace("\u00a0", "").replace(" ", "")
    if value[:1] in _CURRENCY:
        value = value[1:]
    elif value[-1:] in _CURRENCY:
        value = value[:-1]
    if value.endswith("%"):
        return None  # a share, not a quantity: summing percentages silently would be wrong
    if decimal_comma:
        if _COMMA_DECIMAL.match(value):
            value = value.replace(",", ".")
        elif _EURO_GROUPED.match(value):
            value = value.replace(".", "").replace(",", ".")
    elif _GROUPED.match(value):
        value = value.replace(",", "")
    if not _PLAIN.match(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def format_number(value: Any, places: int | None = None) -> str:
    """A number written out in full (never ``1.49399e+08``), rounded to ``places`` decimals when given."""
    number = parse_number(value)
    if number is None:
        return str(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def to_json_number(value: Decimal) -> int | float:
    """A Decimal as the JSON number that prints the same digits (int when whole)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


# -- tables -------------------------------------------------------------------------------------
def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().casefold()).strip("_")


def match_column(columns: Iterable[str], wanted: str) -> str | None:
    """The column that ``wanted`` names, ignoring case, spacing, ``_`` and ``-``; None when none or several do."""
    columns = list(columns)
    if wanted in columns:
        return wanted
    hits = [c for c in columns if _normal(c) == _normal(wanted)]
    return hits[0] if len(hits) == 1 else None


def suggest_columns(columns: Iterable[str], wanted: str, n: int = 3) -> list[str]:
    """Columns whose names are close to ``wanted`` (for an error that suggests what was meant)."""
    by_normal = {_normal(c): c for c in columns}
    return [by_normal[m] for m in difflib.get_close_matches(_normal(wanted), list(by_normal), n=n, cutoff=0.6)]


class Table:
    """One file's rows as dicts keyed by its (cleaned) header, with how it was read."""

    def __init__(
        self,
        name: str,
        columns: list[str],
        rows: list[dict[str, str]],
        *,
        delimiter: str,
        encoding: str,
        decimal_comma: bool,
        skipped_rows: int,
    ) -> None:
        self.name = name
        self.columns = columns
        self.rows = rows
        self.delimiter = delimiter
        self.encoding = encoding
        self.decimal_comma = decimal_comma
        self.skipped_rows = skipped_rows

    def column(self, wanted: str) -> str | None:
        """This table's column for ``wanted`` (see :func:`match_column`)."""
        return match_column(self.columns, wanted)

    def number(self, row: dict[str, str], column: str) -> Decimal | None:
        """The cell as an exact number, in this file's number dialect."""
        return parse_number(row.get(column), decimal_comma=self.decimal_comma)

    def value(self, row: dict[str, str], name: str) -> Any:
        """A cell for an expression: a number when it reads as one, else the text; MISSING for no such column."""
        column = self.column(name)
        if column is None:
            return MISSING
        text = row.get(column)
        number = self.number(row, column)
        return number if number is not None else (text or "")

    def __repr__(self) -> str:
        return f"<Table {self.name} {len(self.columns)} columns {len(self.rows)} rows>"


def _sniff(lines: Sequence[str]) -> str:
    """The delimiter that splits the sample into the most consistent rows of more than one field."""
    best, best_score = ",", (-1, -1)
    for delimiter in DELIMITERS:
        rows = list(csv.reader(lines, delimiter=delimiter))
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows[1:] if len(r) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _clean_header(header: Sequence[str]) -> list[str]:
    seen: Counter[str] = Counter()
    columns = []
    for index, raw in enumerate(header, 1):
        name = " ".join(raw.split()) or f"column_{index}"
        seen[name] += 1
        columns.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return columns


def read_table(path: Path, *, warn: Warn | None = _warn) -> Table:
    """Read one delimited text file with a header row (delimiter sniffed; BOM and encoding handled)."""
    path = Path(path)
    text, encoding = read_text(path, warn=warn)
    return parse_table(path.name, text, encoding=encoding, warn=warn)


def parse_table(name: str, text: str, *, encoding: str = "utf-8", warn: Warn | None = _warn) -> Table:
    """A table from delimited text already decoded (the whole file, or a head cut at a line end)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{name}: empty file")
    delimiter = _sniff(lines[:SAMPLE_LINES])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    skipped = 0
    for record in reader:
        if not any(field.strip() for field in record):
            continue
        if header is None:
            header = _clean_header(record)
            continue
        if len(record) != len(header):
            # A short row padded with blanks is still that row; a longer one has lost its alignment.
            if len(record) < len(header):
                record = record + [""] * (len(header) - len(record))
            else:
                skipped += 1
                continue
        rows.append(dict(zip(header, (field.strip() for field in record), strict=True)))
    if header is None:
        raise DataError(f"{name}: no header row")
    if len(header) < 2 and delimiter == "," and warn is not None:
        warn(f"{name}: only one column found; is it a delimited file?")
    sample = [v for row in rows[:200] for v in row.values() if v]
    decimal_comma = delimiter == ";" and any(_COMMA_DECIMAL.match(v) or _EURO_GROUPED.match(v) for v in sample)
    if skipped and warn is not None:
        warn(f"{name}: {skipped} row(s) with more fields than the header were skipped")
    return Table(
        name,
        header,
        rows,
        delimiter=delimiter,
        encoding=encoding,
        decimal_comma=decimal_comma,
        skipped_rows=skipped,
    )


def decode(raw: bytes) -> tuple[str, str]:
    """Bytes as text the way :func:`read_text` reads a file (BOM, UTF-8, then cp1252/Latin-1); no warning."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    if b"\x00" in raw[:8192]:
        raise DataError("binary data, not text")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3:  # a multi-byte character cut by a head read
            return raw[: exc.start].decode("utf-8"), "utf-8"
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def read_tables(paths: Iterable[Path], *, warn: Warn | None = _warn) -> tuple[list[Table], list[str]]:
    """Every readable table among ``paths``, and a reason for each file that was skipped (warned, not raised)."""
    tables, skipped = [], []
    for path in paths:
        try:
            tables.append(read_table(path, warn=warn))
        except (DataError, OSError, csv.Error) as exc:
            reason = str(exc) if isinstance(exc, DataError) else f"{Path(path).name}: {exc}"
            skipped.append(reason)
            if warn is not None:
                warn(f"skipped {reason}")
    return tables, skipped


# -- logs ---------------------------------------------------------------------------------------
LEVELS = {
    "WARN": "WARNING",
    "ERR": "ERROR",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "EMERG": "CRITICAL",
    "ALERT": "CRITICAL",
    "TRACE": "DEBUG",
    "INFORMATION": "INFO",
    "NOTICE": "INFO",
    "SEVERE": "ERROR",
    "E": "ERROR",
    "W": "WARNING",
    "I": "INFO",
    "D": "DEBUG",
}
KNOWN_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_LEVEL_WORD = r"DEBUG|INFO|INFORMATION|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|SEVERE|TRACE|EMERG|ALERT"
_ACCESS = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?'
)
_SYSLOG = re.compile(
    r"^(?:<\d{1,3}>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) (?P<program>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: (?P<message>.*)$"
)
_PY_LOGGING = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[,.]\d+)?)\s+-\s+(?P<logger>\S+)\s+-\s+"
    rf"(?P<level>{_LEVEL_WORD})\s+-\s+(?P<message>.*)$",
    re.IGNORECASE,
)
_PY_BASIC = re.compile(rf"^(?P<level>{_LEVEL_WORD}):(?P<logger>[\w.]+):(?P<message>.*)$")
_STAMPED = re.compile(
    r"^\s*\[?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[,.]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\]?\s+"
    rf"(?:\[?(?P<level>{_LEVEL_WORD})\]?:?\s+)?(?P<message>.*)$",
    re.IGNORECASE,
)
_LEVEL_FIRST = re.compile(rf"^\s*\[?(?P<level>{_LEVEL_WORD})\]?:?\s+(?P<message>.*)$", re.IGNORECASE)
_INFERRED = (
    (re.compile(r"\b(panic|fatal|critical|emerg)", re.I), "CRITICAL"),
    (re.compile(r"\b(error|fail(ed|ure)?|denied|refused|exception|segfault)", re.I), "ERROR"),
    (re.compile(r"\bwarn(ing)?\b", re.I), "WARNING"),
)
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",
    "%b %d %H:%M:%S",
)


def _level(word: str | None) -> str | None:
    if not word:
        return None
    upper = str(word).strip().upper()
    upper = LEVELS.get(upper, upper)
    return upper if upper in KNOWN_LEVELS else None


def _infer_level(message: str) -> str:
    for pattern, level in _INFERRED:
        if pattern.search(message):
            return level
    return "INFO"


def parse_time(text: Any, *, year: int | None = None) -> datetime | None:
    """A log timestamp as a naive datetime in its own clock (ISO 8601, access-log and syslog forms; epoch seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if 0 < text < 1e11:
            return datetime.fromtimestamp(text, tz=UTC).replace(tzinfo=None)
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    iso = value.replace(",", ".").replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(iso).replace(tzinfo=None)
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            stamp = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if fmt == "%b %d %H:%M:%S":
            stamp = stamp.replace(year=year or datetime.now().year)
        return stamp.replace(tzinfo=None)
    return None


class LogEntry(dict):  # type: ignore[type-arg]
    """One parsed log line: ``format``, ``time`` (datetime or None), ``level``, ``message`` and per-format fields."""

    @property
    def time(self) -> datetime | None:
        """When the line was logged, if it said."""
        value = self.get("time")
        return value if isinstance(value, datetime) else None


def _json_field(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        value: Any = record
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                value = None
                break
            value = value[part]
        if value not in (None, ""):
            return value
    return None


def parse_log_line(line: str, *, year: int | None = None) -> LogEntry | None:
    """Parse one line in a common log format (access log, syslog, JSON lines, Python logging, ``LEVEL message``)."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict):
            message = _json_field(record, "message", "msg", "event", "log", "text")
            level = _level(_json_field(record, "level", "lvl", "severity", "levelname", "log.level", "loglevel"))
            stamp = _json_field(record, "time", "timestamp", "ts", "@timestamp", "asctime", "datetime", "date")
            if message is None and level is None:
                return None
            message = str(message if message is not None else "")
            return LogEntry(
                format="jsonl",
                time=parse_time(stamp, year=year),
                level=level or _infer_level(message),
                message=message,
                fields=record,
            )
    match = _ACCESS.match(text)
    if match:
        parts = match["request"].split()
        status = int(match["status"])
        return LogEntry(
            format="access",
            time=parse_time(match["ts"], year=year),
            level="ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO",
            message=match["request"],
            ip=match["ip"],
            method=parts[0] if len(parts) >= 2 else "",
            path=parts[1] if len(parts) >= 2 else "",
            status=status,
            bytes=0 if match["bytes"] == "-" else int(match["bytes"]),
            agent=match["agent"] or "",
        )
    match = _PY_LOGGING.match(text) or _PY_BASIC.match(text)
    if match:
        groups = match.groupdict()
        return LogEntry(
            format="python",
            time=parse_time(groups.get("ts"), year=year),
            level=_level(groups["level"]),
            message=groups["message"].strip(),
            logger=groups["logger"],
        )
    match = _SYSLOG.match(text)
    if match:
        message = match["message"]
        inner = _LEVEL_FIRST.match(message)
        return LogEntry(
            format="syslog",
            time=parse_time(match["ts"], year=year),
            level=_level(inner["level"]) if inner else _infer_level(message),
            message=message,
            host=match["host"],
            program=match["program"],
        )
    stamped = _STAMPED.match(text)
    if stamped and stamped["level"]:
        return LogEntry(
            format="stamped",
            time=parse_time(stamped["ts"], year=year),
            level=_level(stamped["level"]),
            message=stamped["message"].strip(),
        )
    match = _LEVEL_FIRST.match(text)
    if match:
        return LogEntry(format="level", time=None, level=_level(match["level"]), message=match["message"].strip())
    if stamped:
        # A timestamp and no level word: the level is read from the message's own words.
        message = stamped["message"].strip()
        return LogEntry(
            format="stamped", time=parse_time(stamped["ts"], year=year), level=_infer_level(message), message=message
        )
    return None


class LogFile:
    """One log file's parsed entries, with counts of what was read, parsed, continued and skipped."""

    def __init__(self, name: str, encoding: str) -> None:
        self.name = name
        self.encoding = encoding
        self.entries: list[LogEntry] = []
        self.lines_read = 0
        self.continuations = 0
        self.skipped = 0
        self.formats: Counter[str] = Counter()

    @property
    def parsed(self) -> int:
        """Lines that became entries."""
        return len(self.entries)

    def counts(self) -> dict[str, Any]:
        """What was read from this file, for a report."""
        return {
            "file": self.name,
            "encoding": self.encoding,
            "lines_read": self.lines_read,
            "lines_parsed": self.parsed,
            "lines_continued": self.continuations,
            "lines_skipped": self.skipped,
            "formats": dict(self.formats.most_common()),
        }


def read_log(path: Path, *, year: int | None = None, warn: Warn | None = _warn) -> LogFile:
    """Parse every line of one log file; indented lines and tracebacks continue the entry above them."""
    path = Path(path)
    text, encoding = read_text(path, warn=warn)
    if year is None:
        year = datetime.fromtimestamp(path.stat().st_mtime).year
    log = LogFile(path.name, encoding)
    for line in text.splitlines():
        if not line.strip():
            continue
        log.lines_read += 1
        entry = parse_log_line(line, year=year)
        if entry is not None:
            log.entries.append(entry)
            log.formats[entry["format"]] += 1
        elif log.entries and (line[:1].isspace() or line.startswith(("Traceback", "Caused by"))):
            log.continuations += 1
        else:
            log.skipped += 1
    return log


def read_logs(
    paths: Iterable[Path], *, year: int | None = None, warn: Warn | None = _warn
) -> tuple[list[LogFile], list[str]]:
    """Every file among ``paths`` with at least one parsed line, and a reason for each one skipped."""
    logs, skipped = [], []
    for path in paths:
        try:
            log = read_log(path, year=year, warn=warn)
        except (DataError, OSError) as exc:
            reason = str(exc) if isinstance(exc, DataError) else f"{Path(path).name}: {exc}"
        else:
            if log.parsed:
                logs.append(log)
                continue
            reason = f"{log.name}: none of its {log.lines_read} line(s) is in a known log format"
        skipped.append(reason)
        if warn is not None:
            warn(f"skipped {reason}")
    return logs, skipped


# -- expressions --------------------------------------------------------------------------------
class ExpressionError(ValueError):
    """An expression that does not parse; the message says where."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<string>'[^']*'|\"[^\"]*\")|(?P<quoted>`[^`]+`)"
    r"|(?P<op>==|!=|>=|<=|=|>|<|\+|-|\*|×|/|%|\(|\))|(?P<name>[^\W\d][\w.]*))"
)
_WORDS = {"and", "or", "not", "contains", "in"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:].strip()[:20]!r} at position {pos} in {text!r}")
        kind = match.lastgroup or ""
        value = match[kind]
        if kind == "name" and value.lower() in _WORDS:
            kind, value = "op", value.lower()
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class Expr:
    """A parsed expression: ``evaluate(lookup)`` gives its value for one record; ``fields`` names what it reads."""

    def __init__(self, text: str, tree: tuple[Any, ...]) -> None:
        self.text = text
        self.tree = tree

    @property
    def fields(self) -> set[str]:
        """The field names the expression reads."""
        found: set[str] = set()

        def walk(node: tuple[Any, ...]) -> None:
            if node[0] == "field":
                found.add(node[1])
            for child in node[1:]:
                if isinstance(child, tuple):
                    walk(child)

        walk(self.tree)
        return found

    def evaluate(self, lookup: Callable[[str], Any]) -> Any:
        """The expression's value with field values from ``lookup(name)`` (``MISSING`` for an absent field)."""
        return _eval(self.tree, lookup)

    def holds(self, lookup: Callable[[str], Any]) -> bool:
        """True when the expression's value is true for this record."""
        return bool(self.evaluate(lookup))

    def __repr__(self) -> str:
        return f"<Expr {self.text!r}>"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, *ops: str) -> str | None:
        token = self.peek()
        if token and token[0] == "op" and token[1] in ops:
            self.pos += 1
            return token[1]
        return None

    def parse(self) -> tuple[Any, ...]:
        if not self.tokens:
            raise ExpressionError("empty expression")
        tree = self.either()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return tree

    def either(self) -> tuple[Any, ...]:
        node = self.both()
        while self.take("or"):
            node = ("or", node, self.both())
        return node

    def both(self) -> tuple[Any, ...]:
        node = self.negation()
        while self.take("and"):
            node = ("and", node, self.negation())
        return node

    def negation(self) -> tuple[Any, ...]:
        if self.take("not"):
            return ("not", self.negation())
        return self.comparison()

    def comparison(self) -> tuple[Any, ...]:
        left = self.sum()
        op = self.take("==", "=", "!=", ">", ">=", "<", "<=", "contains")
        if op is None:
            if self.take("not"):
                if not self.take("in", "contains"):
                    raise ExpressionError(f"expected 'in' or 'contains' after 'not' in {self.text!r}")
                return ("not", ("contains", self.sum(), left))
            if self.take("in"):
                return ("contains", self.sum(), left)
            return left
        right = self.sum()
        if op == "contains":
            return ("contains", left, right)
        return ("compare", "==" if op == "=" else op, left, right)

    def sum(self) -> tuple[Any, ...]:
        node = self.product()
        while (op := self.take("+", "-")) is not None:
            node = ("arith", op, node, self.product())
        return node

    def product(self) -> tuple[Any, ...]:
        node = self.unary()
        while (op := self.take("*", "×", "/", "%")) is not None:
            node = ("arith", "*" if op == "×" else op, node, self.unary())
        return node

    def unary(self) -> tuple[Any, ...]:
        if self.take("-"):
            return ("neg", self.unary())
        return self.atom()

    def atom(self) -> tuple[Any, ...]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"{self.text!r} ends too early")
        kind, value = token
        self.pos += 1
        if kind == "number":
            return ("const", Decimal(value))
        if kind == "string":
            return ("const", value[1:-1])
        if kind == "quoted":
            return ("field", value[1:-1])
        if kind == "name":
            if value.lower() in ("true", "false"):
                return ("const", value.lower() == "true")
            return ("field", value)
        if value == "(":
            node = self.either()
            if not self.take(")"):
                raise ExpressionError(f"a '(' is not closed in {self.text!r}")
            return node
        raise ExpressionError(f"unexpected {value!r} in {self.text!r}")


def _number(value: Any) -> Decimal | None:
    return None if value is MISSING else parse_number(value)


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format_number(value)
    return "" if value is None or value is MISSING else str(value)


def _eval(node: tuple[Any, ...], lookup: Callable[[str], Any]) -> Any:
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "field":
        return lookup(node[1])
    if kind == "and":
        return bool(_eval(node[1], lookup)) and bool(_eval(node[2], lookup))
    if kind == "or":
        return bool(_eval(node[1], lookup)) or bool(_eval(node[2], lookup))
    if kind == "not":
        return not bool(_eval(node[1], lookup))
    if kind == "neg":
        value = _number(_eval(node[1], lookup))
        return None if value is None else -value
    if kind == "arith":
        left, right = _number(_eval(node[2], lookup)), _number(_eval(node[3], lookup))
        if left is None or right is None:
            return None
        op = node[1]
        if op in ("/", "%") and right == 0:
            return None
        return {"+": left + right, "-": left - right, "*": left * right, "/": left / right, "%": left % right}[op]
    if kind == "contains":
        haystack, needle = _eval(node[1], lookup), _eval(node[2], lookup)
        if needle is MISSING and node[2][0] == "field":
            needle = node[2][1]
        if haystack is MISSING or needle is MISSING:
            return False
        if isinstance(haystack, (list, tuple)):
            return any(_text(item).casefold() == _text(needle).casefold() for item in haystack)
        return _text(needle).casefold() in _text(haystack).casefold()
    if kind == "compare":
        op, left_node, right_node = node[1], node[2], node[3]
        left = _eval(left_node, lookup)
        right = _eval(right_node, lookup)
        # `status == paid`: a bare word on the right that is no field of the record is the text itself.
        if right is MISSING and right_node[0] == "field":
            right = right_node[1]
        if left is MISSING or right is MISSING:
            return False
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return {"==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
        if op in ("==", "!="):
            same = _text(left).casefold() == _text(right).casefold()
            return same if op == "==" else not same
        if left in (None, "") or right in (None, ""):
            return False
        x, y = _text(left).casefold(), _text(right).casefold()
        return {">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op]
    raise ExpressionError(f"unknown node {kind}")  # pragma: no cover - the parser makes no other kind


def compile_expression(text: str) -> Expr:
    """Parse an arithmetic or boolean expression over field names (``units * unit_price``, ``total >= 100``)."""
    return Expr(text, _Parser(text).parse())


def compile_condition(text: str) -> Expr:
    """Parse a condition (``status == paid and total >= 100``); evaluates to True or False per record."""
    return compile_expression(text)


def compile_assignment(text: str) -> tuple[str, Expr]:
    """Parse ``name = expression`` (a derived column such as ``revenue = units * unit_price``)."""
    name, sep, rest = text.partition("=")
    if not sep or rest.startswith("=") or not name.strip():
        raise ExpressionError(f"expected 'name = expression', got {text!r}")
    return name.strip().strip("`"), compile_expression(rest)
