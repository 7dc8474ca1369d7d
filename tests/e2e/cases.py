"""The labelled request suite: realistic requests, their data, and an independent check of each answer.

Each intent has two phrasings: ``tune`` (used while improving dispatch) and ``holdout`` (never
looked at while tuning; reported separately). ``covered`` says whether a bundled scaffold can
serve the intent; an uncovered request must end refused or failed, never ``succeeded``.
A checker reads the collected outputs and raises ``AssertionError`` naming what is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

Checker = Callable[[Path, dict[str, Any]], None]


@dataclass(frozen=True)
class Case:
    id: str
    request: str
    data: Callable[[Path], dict[str, Any]]
    check: Checker | None
    half: str  # "tune" or "holdout"
    covered: bool = True


def _json(out: Path, name: str) -> Any:
    matches = sorted(out.rglob(name))
    assert matches, f"no {name} among the outputs ({sorted(p.name for p in out.rglob('*'))})"
    return json.loads(matches[0].read_text(encoding="utf-8"))


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 0.011


def _group_sums(summary: dict[str, Any], column_names: tuple[str, ...]) -> dict[str, float]:
    sums = {}
    for group, stats in summary["groups"].items():
        columns = {k.casefold(): v for k, v in stats["columns"].items()}
        hit = next((columns[c.casefold()] for c in column_names if c.casefold() in columns), None)
        assert hit is not None, f"group {group} has no column among {column_names}: {sorted(stats['columns'])}"
        sums[group] = hit["sum"]
    return sums


def units_by_region(out: Path, facts: dict[str, Any]) -> None:
    summary = _json(out, "summary.json")
    got = _group_sums(summary, ("Units", "Menge", "units"))
    assert set(got) == set(facts["units_by_region"]), f"groups {sorted(got)} != {sorted(facts['units_by_region'])}"
    for group, expected in facts["units_by_region"].items():
        assert _close(got[group], expected), f"{group}: units {got[group]} != {expected}"


def revenue_by_region(out: Path, facts: dict[str, Any]) -> None:
    summary = _json(out, "summary.json")
    got = _group_sums(summary, ("sales", "revenue", "turnover", "amount"))
    assert set(got) == set(facts["revenue_by_region"]), f"groups {sorted(got)}"
    for group, expected in facts["revenue_by_region"].items():
        assert _close(got[group], expected), f"{group}: revenue {got[group]} != {expected}"


def mean_price_by_product(out: Path, facts: dict[str, Any]) -> None:
    summary = _json(out, "summary.json")
    for product, expected in facts["mean_price_by_product"].items():
        stats = summary["groups"].get(product)
        assert stats, f"no group {product}"
        columns = {k.casefold(): v for k, v in stats["columns"].items()}
        price = columns.get("unit price") or columns.get("unit_price") or columns.get("stückpreis")
        assert price is not None, f"{product}: no price column"
        assert _close(price["mean"], expected), f"{product}: mean price {price['mean']} != {expected}"


def paid_orders_over_100(out: Path, facts: dict[str, Any]) -> None:
    expected_ids = [r["id"] for r in facts["paid_over_100"]]
    files = sorted(out.rglob("records.*"))
    assert files, "no records file"
    if files[0].suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(files[0].read_text(encoding="utf-8"))))
        ids = [int(r["id"]) for r in rows]
    else:
        rows = json.loads(files[0].read_text())
        ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(expected_ids), f"ids {ids} != {expected_ids}"
    names = {k.casefold() for k in rows[0]} if rows else set()
    assert any("total" in n for n in names), f"total not kept: {names}"
    assert any("customer" in n or "name" in n for n in names), f"customer name not kept: {names}"
    assert "status" not in names, "fields were not selected"


def orders_as_csv(out: Path, facts: dict[str, Any]) -> None:
    files = sorted(out.rglob("*.csv"))
    assert files, f"no CSV among the outputs: {sorted(p.name for p in out.rglob('*'))}"
    rows = list(csv.DictReader(io.StringIO(files[0].read_text(encoding="utf-8"))))
    assert len(rows) == len(facts["records"]), f"{len(rows)} rows != {len(facts['records'])}"
    assert {"id", "status", "total"} <= set(rows[0]), f"columns {list(rows[0])}"


def status_counts(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "log_report.json")
    got = {item["value"]: item["count"] for item in report["counts"]["status"]}
    assert got == facts["status_counts"], f"{got} != {facts['status_counts']}"
    assert report["lines_parsed"] == facts["lines"]


def top_ips(out: Path, facts: dict[str, Any]) -> None:
    # A log report's top IPs, or a search's IP addresses by count (each line of this log names one IP).
    if sorted(out.rglob("log_report.json")):
        got = [(item["value"], item["count"]) for item in _json(out, "log_report.json")["counts"]["ip"]][:3]
    else:
        got = [(item["value"], item["count"]) for item in _json(out, "matches.json")["distinct"]][:3]
    ranked = sorted(facts["ip_counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    assert [c for _, c in got] == [c for _, c in ranked[:3]], f"{got} != {ranked[:3]}"
    assert {ip for ip, _ in got} <= {ip for ip, c in ranked if c >= ranked[2][1]}


def ssh_failures(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "log_report.json")
    assert report["lines_parsed"] == facts["lines"], f"parsed {report['lines_parsed']} of {facts['lines']}"
    assert report["levels"].get("ERROR", 0) == facts["failures"], f"errors {report['levels']}"


def json_log_levels(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "log_report.json")
    assert report["levels"] == facts["levels"], f"{report['levels']} != {facts['levels']}"


def duplicate_groups(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "duplicates.json")
    assert report["groups"] == facts["groups"] and report["duplicate_files"] == facts["duplicate_files"], report


def todo_count(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "matches.json")
    assert report["find"] == "todo" and report["matches_total"] == facts["todos"], report["matches_total"]


def email_set(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "matches.json")
    assert {d["value"] for d in report["distinct"]} == facts["emails"]


def largest_files(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "usage.json")
    got = [Path(item["path"]).name for item in report["largest"]][:3]
    assert got == facts["largest"][:3], f"{got} != {facts['largest'][:3]}"


def python_lines(out: Path, facts: dict[str, Any]) -> None:
    report = _json(out, "code_stats.json")
    python = next(item for item in report["languages"] if item["language"] == "Python")
    assert python["code"] == facts["python_code_lines"], f"{python['code']} != {facts['python_code_lines']}"


def organised_by_extension(out: Path, facts: dict[str, Any]) -> None:
    manifest = _json(out, "manifest.json")
    assert manifest["by"] == "extension", manifest["by"]
    assert len(manifest["files"]) == len(facts["files"])


def zipped(out: Path, facts: dict[str, Any]) -> None:
    archives = sorted(out.rglob("*.zip"))
    assert archives, "no zip archive"
    with zipfile.ZipFile(archives[0]) as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert set(facts["files"]) <= names, f"missing {set(facts['files']) - names}"


def _pair(intent: str, tune: str, holdout: str, data: Any, check: Checker | None, covered: bool = True) -> list[Case]:
    return [
        Case(f"{intent}-tune", tune, data, check, "tune", covered),
        Case(f"{intent}-holdout", holdout, data, check, "holdout", covered),
    ]


CASES: list[Case] = [
    *_pair(
        "units-region",
        "total units per region",
        "how many units did each region sell",
        datasets.sales_comma,
        units_by_region,
    ),
    *_pair(
        "revenue-region",
        "total sales per region",
        "what was the revenue for each region",
        datasets.sales_comma,
        revenue_by_region,
    ),
    *_pair(
        "units-region-european",
        "sum the Menge column by Region",
        "summarise the German export by region",
        datasets.sales_european,
        units_by_region,
    ),
    *_pair(
        "units-region-bom",
        "summarise the csv exports by region",
        "group these sales spreadsheets by region and add up the units",
        datasets.sales_bom,
        units_by_region,
    ),
    *_pair(
        "price-product",
        "average unit price by product",
        "per product, what is the mean price",
        datasets.sales_comma,
        mean_price_by_product,
    ),
    *_pair(
        "paid-orders",
        "filter orders to paid ones over 100 and keep id, customer name and total",
        "only keep the paid orders above 100 with their id, customer name and total",
        datasets.orders,
        paid_orders_over_100,
    ),
    *_pair(
        "orders-csv",
        "convert orders.json to csv",
        "turn the orders into a CSV file",
        datasets.orders,
        orders_as_csv,
    ),
    *_pair(
        "status-counts",
        "count the requests per status code in the nginx access log",
        "how many responses of each HTTP status are in this access log",
        datasets.access_logs,
        status_counts,
    ),
    *_pair(
        "top-ips",
        "top 3 client IPs in the access log",
        "which 3 IP addresses made the most requests",
        datasets.access_logs,
        top_ips,
    ),
    *_pair(
        "ssh-failures",
        "analyse the syslog for errors",
        "find the failures in this system log",
        datasets.syslog,
        ssh_failures,
    ),
    *_pair(
        "json-levels",
        "count log lines per level in the json logs",
        "how many errors and warnings are in the application log",
        datasets.json_logs,
        json_log_levels,
    ),
    *_pair(
        "duplicates",
        "find duplicate files",
        "which photos are copies of each other",
        datasets.duplicates,
        duplicate_groups,
    ),
    *_pair(
        "todos",
        "list every TODO and FIXME in the code",
        "find the todo comments in this package",
        datasets.package,
        todo_count,
    ),
    *_pair(
        "emails",
        "find all email addresses in these files",
        "extract the e-mail addresses mentioned in the docs",
        datasets.package,
        email_set,
    ),
    *_pair(
        "largest",
        "show the largest files in this folder",
        "what is taking up the most disk space here",
        datasets.downloads,
        largest_files,
    ),
    *_pair(
        "loc",
        "count lines of code per language",
        "how many lines of python are in this repository",
        datasets.package,
        python_lines,
    ),
    *_pair(
        "organise",
        "sort my downloads into folders by type",
        "organise these files by extension",
        datasets.downloads,
        organised_by_extension,
    ),
    *_pair(
        "zip",
        "zip up the downloads folder",
        "make a zip archive of these files",
        datasets.downloads,
        zipped,
    ),
    *_pair(
        "chart",
        "chart monthly sales as a png",
        "plot the units sold per month",
        datasets.sales_comma,
        None,
        covered=False,
    ),
    *_pair(
        "email-send",
        "email the sales summary to the team",
        "send the totals to finance@example.com",
        datasets.sales_comma,
        None,
        covered=False,
    ),
    *_pair(
        "translate",
        "translate the README into French",
        "write a German version of the docs",
        datasets.package,
        None,
        covered=False,
    ),
]
