"""The data scaffolds on everyday files, run with the host's python3 (the container runs are in integration).

Each case writes realistic input, renders the scaffold as dispatch would, runs it with the
sandbox runtime on the path, and checks the answer against figures computed here from the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.checks import gate, run_checks
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import load_library

ROOT = Path(__file__).resolve().parents[3]
LIBRARY = load_library()


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    output: Path
    events: list[dict[str, Any]]

    def json(self, name: str) -> Any:
        return json.loads((self.output / name).read_text(encoding="utf-8"))

    def warnings(self) -> list[str]:
        return [e["message"] for e in self.events if e.get("kind") == "log" and e.get("level") == "warning"]

    def metric(self, name: str) -> Any:
        return next(e["value"] for e in self.events if e.get("kind") == "metric" and e.get("name") == name)


def run_scaffold(name: str, params: dict[str, Any], inputs: Path, tmp_path: Path) -> Ran:
    scaffold = LIBRARY.get(name)
    source = render(scaffold, validate_params(scaffold, params))
    assert gate(run_checks(source, "standard"), "standard").passed
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "main.py"
    script.write_text(source, encoding="utf-8")
    output = tmp_path / "out"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT / "sandbox"),
        "HARNESS_INPUT": str(inputs),
        "HARNESS_OUTPUT": str(output),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [sys.executable, "-B", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    events, lines = [], []
    for line in done.stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if isinstance(record, dict) and "kind" in record:
            events.append(record)
        else:
            lines.append(line)
    return Ran(done.returncode, "\n".join(lines), done.stderr, output, events)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


SALES = "Date,Region,Product,Units,Unit Price\n2026-01-01,North,widget,3,2.50\n2026-01-02,South,gizmo,1,10\n"
SALES += "2026-01-03,North,gizmo,2,10\n2026-01-04,East,widget,5,2.50\n"


# -- csv_summary ------------------------------------------------------------------------------
def test_csv_group_column_matches_case_insensitively(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    ran = run_scaffold("csv_summary", {"group_by": "region"}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    summary = ran.json("summary.json")
    assert summary["group_by"] == "Region"
    assert summary["groups"]["North"]["count"] == 2
    assert summary["groups"]["North"]["columns"]["Units"]["sum"] == 5
    assert summary["rows_read"] == 4 and ran.metric("records_in") == 4


def test_csv_total_sales_is_a_derived_column(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    params = {"group_by": "region", "derive": ["revenue = units * unit_price"], "columns": ["revenue"]}
    ran = run_scaffold("csv_summary", params, data, tmp_path)
    assert ran.code == 0, ran.stderr
    groups = ran.json("summary.json")["groups"]
    expected = {"North": 3 * 2.5 + 2 * 10, "South": 10, "East": 5 * 2.5}
    assert {k: v["columns"]["revenue"]["sum"] for k, v in groups.items()} == expected
    assert set(groups["North"]["columns"]) == {"revenue"}


def test_csv_semicolon_latin1_bom_and_a_bad_file(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "a.csv", "region;units;price\nNord;2;1.234,50\nSüd;1;3,25\n".encode("latin-1"))
    write(data, "b.csv", b"\xef\xbb\xbfregion,units,price\nNord,4,1\n")
    write(data, "c.csv", "")
    write(data, "d.csv", "other,columns\n1,2\n")
    ran = run_scaffold("csv_summary", {"group_by": "Region"}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    summary = ran.json("summary.json")
    assert summary["groups"]["Nord"]["columns"]["units"]["sum"] == 6
    assert summary["groups"]["Nord"]["columns"]["price"]["sum"] == 1235.5
    assert summary["groups"]["Süd"]["count"] == 1
    assert summary["files"] == ["a.csv", "b.csv"]
    assert len(summary["skipped_files"]) == 2
    assert any("not UTF-8" in w for w in ran.warnings())


def test_csv_big_numbers_stay_exact_in_the_table(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "big.csv", "region,amount\nx,149399000\nx,1\n")
    ran = run_scaffold("csv_summary", {"group_by": "region"}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    table = (ran.output / "summary.md").read_text()
    assert "149399001" in table and "e+" not in table


def test_csv_filter_applies_and_nothing_matching_is_a_stated_answer(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    ran = run_scaffold("csv_summary", {"group_by": "region", "where": ["units >= 3"]}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    summary = ran.json("summary.json")
    assert {k: v["count"] for k, v in summary["groups"].items()} == {"North": 1, "East": 1}
    assert summary["rows_filtered_out"] == 2
    none = run_scaffold("csv_summary", {"group_by": "region", "where": ["units > 100"]}, data, tmp_path / "2")
    assert none.code == 0, none.stderr
    assert none.json("summary.json")["groups"] == {}
    assert "no row matched" in (none.output / "summary.md").read_text()


def test_csv_unknown_column_names_the_close_ones(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    ran = run_scaffold("csv_summary", {"group_by": "regoin"}, data, tmp_path)
    assert ran.code == 2
    assert "did you mean Region" in ran.stderr


def test_csv_nothing_readable_fails(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "a.csv", "")
    write(data, "b.csv", b"\x00\x00binary")
    ran = run_scaffold("csv_summary", {"group_by": "region"}, data, tmp_path)
    assert ran.code == 3
    assert "could be read" in ran.stderr
    header_only = tmp_path / "h"
    write(header_only, "a.csv", "region,units\n")
    ran = run_scaffold("csv_summary", {"group_by": "region"}, header_only, tmp_path / "2")
    assert ran.code == 3 and "no rows" in ran.stderr


def test_csv_bad_condition_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    ran = run_scaffold("csv_summary", {"group_by": "region", "where": ["units >"]}, data, tmp_path)
    assert ran.code == 2 and "cannot use the condition" in ran.stderr


@pytest.mark.parametrize("bad", ["__import__('os').system('id')", "units.__class__ == 1"])
def test_csv_conditions_cannot_reach_python(tmp_path: Path, bad: str) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    ran = run_scaffold("csv_summary", {"group_by": "region", "where": [bad]}, data, tmp_path)
    # Either refused as a formula or evaluated as a (missing) field name: never run as code.
    assert "uid=" not in ran.stdout + ran.stderr
    if ran.code == 0:
        assert ran.json("summary.json")["groups"] == {}


# -- log_analysis -----------------------------------------------------------------------------
NGINX = [
    '203.0.113.9 - - [20/Nov/2026:10:15:32 +0000] "GET /api/orders HTTP/1.1" 200 173 "-" "curl/8.0"',
    '203.0.113.9 - - [20/Nov/2026:10:16:02 +0000] "GET /api/orders HTTP/1.1" 502 0 "-" "curl/8.0"',
    '198.51.100.4 - - [20/Nov/2026:11:01:00 +0000] "POST /login HTTP/1.1" 401 12 "-" "Mozilla/5.0"',
    '203.0.113.9 - - [20/Nov/2026:11:02:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube-probe"',
]
SYSLOG = [
    "Nov 20 10:15:34 web01 sshd[1234]: Failed password for root from 10.0.0.5 port 22 ssh2",
    "Nov 20 10:15:35 web01 sshd[1234]: Accepted publickey for deploy from 10.0.0.6 port 22 ssh2",
    "Nov 20 10:20:00 web01 CRON[99]: (root) CMD (run-parts /etc/cron.hourly)",
]
JSONL = [
    '{"time": "2026-11-20T10:00:00Z", "level": "info", "msg": "started"}',
    '{"time": "2026-11-20T10:05:00Z", "level": "error", "msg": "db timeout after 3000 ms"}',
    '{"time": "2026-11-20T10:06:00Z", "level": "error", "msg": "db timeout after 2000 ms"}',
]


def test_logs_in_three_formats_are_all_parsed(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "access.log", "\n".join(NGINX) + "\n")
    write(data, "syslog", "\n".join(SYSLOG) + "\n")
    write(data, "app.jsonl", "\n".join(JSONL) + "\n")
    write(data, "README.txt", "These are the logs from the incident.\nAsk ops.\n")
    ran = run_scaffold("log_analysis", {"top": 5}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    report = ran.json("log_report.json")
    assert report["lines_parsed"] == len(NGINX) + len(SYSLOG) + len(JSONL)
    assert sorted(report["files"]) == ["access.log", "app.jsonl", "syslog"]
    assert report["skipped_files"] == ["README.txt: none of its 2 line(s) is in a known log format"]
    assert report["formats"] == {"access": 4, "syslog": 3, "jsonl": 3}
    assert report["counts"]["ip"][0] == {"value": "203.0.113.9", "count": 3}
    assert {v["value"]: v["count"] for v in report["counts"]["status"]} == {"200": 2, "502": 1, "401": 1}
    assert report["counts"]["program"][0] == {"value": "sshd", "count": 2}
    assert report["top_errors"][0] == {"level": "ERROR", "message": "db timeout after <n> ms", "count": 2}
    assert report["levels"]["ERROR"] == 2 + 1 + 1  # two JSON errors, one 502, one failed password
    assert (ran.metric("records_in"), ran.metric("records_out"), ran.metric("records_skipped")) == (10, 10, 0)
    assert "10 lines read, 10 parsed, 0 skipped" in ran.stdout


def test_logs_with_nothing_parsed_fail(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "notes.log", "prose only\nno format here\n")
    ran = run_scaffold("log_analysis", {}, data, tmp_path)
    assert ran.code == 3
    assert "no line in a known log format" in ran.stderr


# -- json_transform ---------------------------------------------------------------------------
ORDERS = [
    {"id": 1, "status": "paid", "total": 120.5, "customer": {"name": "Ada"}},
    {"id": 2, "status": "open", "total": 300, "customer": {"name": "Alan"}},
    {"id": 3, "status": "Paid", "total": 99.99, "customer": {"name": "Grace"}},
    {"id": 4, "status": "paid", "total": 250, "customer": {"name": "Edsger"}},
]


def test_json_filter_sort_select_to_csv(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "orders.json", json.dumps({"orders": ORDERS}))
    params = {
        "where": ["status == paid and total > 100"],
        "select": ["id", "customer.name", "total"],
        "rename": ["customer.name:customer"],
        "sort": ["total desc"],
        "format": "csv",
    }
    ran = run_scaffold("json_transform", params, data, tmp_path)
    assert ran.code == 0, ran.stderr
    text = (ran.output / "records.csv").read_text()
    assert text.splitlines() == ["id,customer,total", "4,Edsger,250", "1,Ada,120.5"]
    assert (ran.metric("records_in"), ran.metric("records_out"), ran.metric("records_skipped")) == (4, 2, 2)


def test_csv_to_json_with_a_derived_field(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "sales.csv", SALES)
    params = {"derive": ["revenue = units * `unit price`"], "select": ["region", "revenue"], "format": "json"}
    ran = run_scaffold("json_transform", params, data, tmp_path)
    assert ran.code == 0, ran.stderr
    assert ran.json("records.json") == [
        {"region": "North", "revenue": 7.5},
        {"region": "South", "revenue": 10},
        {"region": "North", "revenue": 20},
        {"region": "East", "revenue": 12.5},
    ]


def test_json_unknown_field_and_unreadable_input(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "orders.json", json.dumps(ORDERS))
    ran = run_scaffold("json_transform", {"select": ["price"]}, data, tmp_path)
    assert ran.code == 2 and "no record has the field 'price'" in ran.stderr
    broken = tmp_path / "broken"
    write(broken, "a.json", "{not json")
    ran = run_scaffold("json_transform", {}, broken, tmp_path / "2")
    assert ran.code == 3 and "no records read" in ran.stderr


# -- text_search ------------------------------------------------------------------------------
def test_todos_are_found_with_file_and_line(tmp_path: Path) -> None:
    ran = run_scaffold("text_search", {"find": "todo"}, ROOT / "scaffolds/text_search/example/project", tmp_path)
    assert ran.code == 0, ran.stderr
    report = ran.json("matches.json")
    assert report["matches_total"] == 3
    assert [(m["file"], m["line"]) for m in report["matches"]] == [
        ("src/app.py", 5),
        ("src/app.py", 10),
        ("src/app.py", 11),
    ]
    assert report["files_skipped"] == ["logo.bin"]


def test_emails_are_counted_once_each(tmp_path: Path) -> None:
    ran = run_scaffold("text_search", {"find": "email"}, ROOT / "scaffolds/text_search/example/project", tmp_path)
    assert ran.code == 0, ran.stderr
    distinct = {d["value"]: d["count"] for d in ran.json("matches.json")["distinct"]}
    assert distinct == {
        "ops@example.com": 2,
        "oncall@example.org": 1,
        "security@example.com": 1,
        "billing@example.com": 1,
    }


def test_nothing_found_is_an_answer_and_a_bad_regex_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "in"
    write(data, "a.txt", "nothing to see\n")
    ran = run_scaffold("text_search", {"find": "regex", "regex": "secret"}, data, tmp_path / "1")
    assert ran.code == 0 and ran.json("matches.json")["matches_total"] == 0
    assert "Nothing matched." in (ran.output / "matches.md").read_text()
    bad = run_scaffold("text_search", {"find": "regex", "regex": "(unclosed"}, data, tmp_path / "2")
    assert bad.code == 2 and "cannot use the regular expression" in bad.stderr


# -- disk_usage -------------------------------------------------------------------------------
def test_disk_usage_matches_the_files(tmp_path: Path) -> None:
    home = ROOT / "scaffolds/disk_usage/example/home"
    ran = run_scaffold("disk_usage", {"top": 2, "depth": 1}, home, tmp_path)
    assert ran.code == 0, ran.stderr
    report = ran.json("usage.json")
    files = [p for p in home.rglob("*") if p.is_file()]
    assert report["files"] == len(files)
    assert report["total_bytes"] == sum(p.stat().st_size for p in files)
    biggest = sorted(files, key=lambda p: -p.stat().st_size)[:2]
    assert [item["path"] for item in report["largest"]] == [str(p.relative_to(home)) for p in biggest]
    folders = {f["folder"]: f["bytes"] for f in report["folders"]}
    assert folders["videos"] == sum(p.stat().st_size for p in (home / "videos").iterdir())
    assert folders["."] == (home / "todo.md").stat().st_size


# -- code_stats -------------------------------------------------------------------------------
def test_code_stats_counts_code_comments_and_blanks(tmp_path: Path) -> None:
    ran = run_scaffold("code_stats", {}, ROOT / "scaffolds/code_stats/example/pkg", tmp_path)
    assert ran.code == 0, ran.stderr
    languages = {item["language"]: item for item in ran.json("code_stats.json")["languages"]}
    # core.py: docstring, 2 defs, 2 returns = 5 code; 2 comments; 5 blanks.
    assert (languages["Python"]["code"], languages["Python"]["comment"], languages["Python"]["blank"]) == (5, 2, 5)
    # app.js: const, function, return, closing brace = 4 code; 3 comment lines; 2 blanks.
    assert (languages["JavaScript"]["code"], languages["JavaScript"]["comment"]) == (4, 3)
    assert languages["Markdown"]["files"] == 1


# -- csv_merge --------------------------------------------------------------------------------
def test_merge_matches_columns_across_dialects_and_drops_duplicates(tmp_path: Path) -> None:
    ran = run_scaffold("csv_merge", {"dedupe": True}, ROOT / "scaffolds/csv_merge/example/exports", tmp_path)
    assert ran.code == 0, ran.stderr
    lines = (ran.output / "merged.csv").read_text().splitlines()
    assert lines == [
        "ID,name,email,city,source_file",
        "3,Grace,grace@example.com,Arlington,february.csv",
        "1,Ada,ada@example.com,London,february.csv",
        "1,Ada,ada@example.com,,january.csv",
        "2,Alan,alan@example.com,,january.csv",
    ]
    report = ran.json("merge_report.json")
    assert (report["rows_read"], report["rows_written"], report["duplicates_dropped"]) == (5, 4, 1)


def test_data_report_reads_everyday_csv_through_the_shared_reader(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    # Semicolons, a BOM and a decimal comma: the dialect people's spreadsheets export.
    (data / "survey.csv").write_bytes("Région;Score\nNord;1,5\nSüd;2\nNord;10\n".encode("utf-8-sig"))
    ran = run_scaffold("data_report", {}, data, tmp_path)
    assert ran.code == 0, ran.stderr
    profile = ran.json("profile.json")
    assert profile["rows"] == 3
    score = profile["columns"]["Score"]
    assert score["type"] == "number" and (score["min"], score["max"], score["median"]) == (1.5, 10, 2)
    assert profile["columns"]["Région"]["top"][0] == ["Nord", 2]
    assert (ran.metric("records_in"), ran.metric("records_out")) == (3, 3)


def test_data_report_on_an_empty_table_says_nothing_was_read(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "empty.csv").write_text("a,b\n")
    ran = run_scaffold("data_report", {}, data, tmp_path)
    assert ran.code == 3 and "has no rows" in ran.stderr
