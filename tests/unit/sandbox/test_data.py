"""The sandbox's shared data reader (harness_runtime.data), run on the host against everyday files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

SANDBOX = Path(__file__).resolve().parents[3] / "sandbox"


@pytest.fixture(scope="module")
def data() -> Iterator[ModuleType]:
    sys.path.insert(0, str(SANDBOX))
    try:
        import harness_runtime.data as module

        yield module
    finally:
        sys.path.remove(str(SANDBOX))
        for name in [n for n in sys.modules if n == "harness_runtime" or n.startswith("harness_runtime.")]:
            del sys.modules[name]


@pytest.fixture()
def warnings() -> list[str]:
    return []


def test_comma_csv_with_bom_and_spaced_header(data: ModuleType, tmp_path: Path, warnings: list[str]) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(b"\xef\xbb\xbfRegion , Units,Unit Price\nnorth,3,2.50\nSouth,1,10\n")
    table = data.read_table(path, warn=warnings.append)
    assert table.columns == ["Region", "Units", "Unit Price"]
    assert table.encoding == "utf-8-sig"
    assert table.column("region") == "Region"
    assert table.column("unit_price") == "Unit Price"
    assert [table.number(r, "Units") for r in table.rows] == [Decimal(3), Decimal(1)]
    assert warnings == []


def test_semicolon_latin1_with_decimal_comma(data: ModuleType, tmp_path: Path, warnings: list[str]) -> None:
    path = tmp_path / "umsatz.csv"
    path.write_bytes("Region;Menge;Preis\nMünchen;2;1.234,50\nKöln;1;3,25\n".encode("latin-1"))
    table = data.read_table(path, warn=warnings.append)
    assert table.delimiter == ";"
    assert table.decimal_comma
    assert [r["Region"] for r in table.rows] == ["München", "Köln"]
    assert [table.number(r, "Preis") for r in table.rows] == [Decimal("1234.50"), Decimal("3.25")]
    assert warnings == ["umsatz.csv: not UTF-8; read as cp1252"]


def test_tab_and_pipe_delimiters(data: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("name\tsize\nx\t1\ny\t2\n")
    (tmp_path / "b.txt").write_text("name|size\nx|1\n")
    assert data.read_table(tmp_path / "a.tsv", warn=None).delimiter == "\t"
    assert data.read_table(tmp_path / "b.txt", warn=None).delimiter == "|"


def test_quoted_commas_do_not_fool_the_sniffer(data: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('city,note\n"Paris","a; b; c"\n"Rome","d; e"\n')
    table = data.read_table(path, warn=None)
    assert table.delimiter == ","
    assert table.rows[0]["note"] == "a; b; c"


def test_empty_and_binary_files_are_skipped_not_fatal(data: ModuleType, tmp_path: Path, warnings: list[str]) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blob.csv").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "good.csv").write_text("a,b\n1,2\n")
    tables, skipped = data.read_tables(sorted(tmp_path.iterdir()), warn=warnings.append)
    assert [t.name for t in tables] == ["good.csv"]
    assert skipped == ["blob.csv: binary data, not text", "empty.csv: empty file"]
    assert len(warnings) == 2


def test_ragged_rows(data: ModuleType, tmp_path: Path, warnings: list[str]) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1,2\n1,2,3,4\n5,6,7\n")
    table = data.read_table(path, warn=warnings.append)
    assert table.rows == [{"a": "1", "b": "2", "c": ""}, {"a": "5", "b": "6", "c": "7"}]
    assert table.skipped_rows == 1 and warnings


def test_duplicate_and_blank_headers(data: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("x,,x\n1,2,3\n")
    assert data.read_table(path, warn=None).columns == ["x", "column_2", "x_2"]


def test_match_column_is_unambiguous(data: ModuleType) -> None:
    assert data.match_column(["Region", "region "], "REGION") is None
    assert data.match_column(["order-date"], "order date") == "order-date"
    assert data.suggest_columns(["Region", "Revenue", "Units"], "regoin") == ["Region"]


@pytest.mark.parametrize(
    ("text", "comma", "expected"),
    [
        ("1,234.50", False, "1234.50"),
        ("$12", False, "12"),
        ("12 €", False, "12"),
        ("-3.5e2", False, "-3.5E+2"),
        ("1.234,5", True, "1234.5"),
        ("3,25", True, "3.25"),
        ("3,25", False, None),
        ("12%", False, None),
        ("nan", False, None),
        ("inf", False, None),
        ("", False, None),
        ("abc", False, None),
    ],
)
def test_parse_number(data: ModuleType, text: str, comma: bool, expected: str | None) -> None:
    result = data.parse_number(text, decimal_comma=comma)
    assert (None if result is None else str(result)) == expected


def test_format_number_is_exact(data: ModuleType) -> None:
    assert data.format_number(Decimal("149399000.00")) == "149399000"
    assert data.format_number(149399000.0) == "149399000"
    assert data.format_number(Decimal("0.1") + Decimal("0.2")) == "0.3"
    assert data.format_number(Decimal("2.345"), 2) == "2.34" or data.format_number(Decimal("2.345"), 2) == "2.35"
    assert data.format_number(Decimal("-0.0")) == "0"


LOG_LINES = {
    "access": '203.0.113.9 - - [20/Nov/2026:10:15:32 +0000] "GET /api/orders?id=3 HTTP/1.1" 502 173 "-" "curl/8.0"',
    "access_common": '10.0.0.1 - bob [20/Nov/2026:10:15:33 +0000] "POST /login HTTP/1.1" 401 12',
    "syslog": "Nov 20 10:15:34 web01 sshd[1234]: Failed password for root from 10.0.0.5 port 22 ssh2",
    "journal": "2026-11-20T10:15:35+0000 web01 kernel: eth0: link up",
    "jsonl": '{"ts": "2026-11-20T10:15:36Z", "level": "warn", "msg": "slow query", "ms": 812}',
    "python": "2026-11-20 10:15:37,123 - app.db - ERROR - database timeout after 3000 ms",
    "python_basic": "WARNING:root:disk almost full",
    "stamped": "2026-11-20 10:15:38 [ERROR] payment failed for order 7",
    "level": "[INFO] worker started",
}


def test_each_common_log_format_parses(data: ModuleType) -> None:
    parsed = {name: data.parse_log_line(line, year=2026) for name, line in LOG_LINES.items()}
    assert all(parsed.values()), [n for n, e in parsed.items() if e is None]
    assert parsed["access"]["status"] == 502 and parsed["access"]["path"] == "/api/orders?id=3"
    assert parsed["access"]["level"] == "ERROR" and parsed["access"]["ip"] == "203.0.113.9"
    assert parsed["access_common"]["status"] == 401 and parsed["access_common"]["level"] == "WARNING"
    assert parsed["syslog"]["program"] == "sshd" and parsed["syslog"]["level"] == "ERROR"
    assert parsed["syslog"].time.isoformat() == "2026-11-20T10:15:34"
    assert parsed["journal"]["format"] == "syslog" and parsed["journal"]["level"] == "INFO"
    assert parsed["jsonl"]["level"] == "WARNING" and parsed["jsonl"]["message"] == "slow query"
    assert parsed["python"]["level"] == "ERROR" and parsed["python"]["logger"] == "app.db"
    assert parsed["python_basic"]["level"] == "WARNING"
    assert parsed["stamped"]["level"] == "ERROR" and parsed["stamped"].time.hour == 10
    assert parsed["level"]["level"] == "INFO"


def test_read_log_counts_lines(data: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text(
        "2026-11-20 10:00:00 ERROR boom\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1\n'
        "garbage line\n"
        "\n"
        "2026-11-20 10:00:01 INFO ok\n"
    )
    log = data.read_log(path, warn=None)
    assert (log.lines_read, log.parsed, log.continuations, log.skipped) == (5, 2, 2, 1)


def test_read_logs_skips_files_with_nothing_parsed(data: ModuleType, tmp_path: Path, warnings: list[str]) -> None:
    (tmp_path / "notes.txt").write_text("just some prose\nnothing else\n")
    (tmp_path / "a.log").write_text("ERROR x\n")
    logs, skipped = data.read_logs(sorted(tmp_path.iterdir()), warn=warnings.append)
    assert [log.name for log in logs] == ["a.log"]
    assert skipped == ["notes.txt: none of its 2 line(s) is in a known log format"]


ROW = {"status": "Paid", "total": "120.50", "units": "3", "unit price": "2.5", "tags": ["a", "b"], "note": ""}


def _lookup(name: str) -> object:
    import harness_runtime.data as module

    return ROW.get(name, module.MISSING)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status == paid", True),
        ("status = 'PAID'", True),
        ("status != paid", False),
        ("total >= 100", True),
        ("total > 120.5", False),
        ("total >= 100 and status == paid", True),
        ("total < 100 or status == paid", True),
        ("not (total < 100)", True),
        ("status contains ai", True),
        ("'a' in tags", True),
        ("'z' not in tags", True),
        ("missing_field > 3", False),
        ("note > 1", False),
        ("units * `unit price` == 7.5", True),
        ("units × `unit price` >= 7.5", True),
        ("(units + 1) / 2 == 2", True),
        ("units / 0 == 1", False),
    ],
)
def test_conditions(data: ModuleType, text: str, expected: bool) -> None:
    assert data.compile_condition(text).holds(_lookup) is expected


def test_derived_column_is_exact(data: ModuleType) -> None:
    name, expr = data.compile_assignment("revenue = units * `unit price`")
    assert name == "revenue"
    assert expr.fields == {"units", "unit price"}
    assert expr.evaluate(_lookup) == Decimal("7.5")


@pytest.mark.parametrize("text", ["", "total >", "(a == 1", "a == 1)", "a ; b", "__import__('os')"])
def test_bad_expressions_are_refused(data: ModuleType, text: str) -> None:
    with pytest.raises(data.ExpressionError):
        expr = data.compile_condition(text)
        # A call is not part of the language: a name followed by '(' does not parse.
        expr.evaluate(_lookup)


def test_assignment_needs_a_name(data: ModuleType) -> None:
    with pytest.raises(data.ExpressionError):
        data.compile_assignment("units == 3")
