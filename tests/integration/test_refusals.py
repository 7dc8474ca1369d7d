"""Refusals a calling program can read: one JSON object on stdout, exit 2; analyze agrees with run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture()
def sales(tmp_path: Path) -> Path:
    folder = tmp_path / "sales"
    folder.mkdir()
    (folder / "q1.csv").write_text("Date,Region,Product,Units\n2026-01-01,North,widget,3\n")
    return folder


def test_a_refusal_with_json_names_what_is_missing(cli, sales: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("run", "summarise the csv files by regoin", "--input", str(sales), "--json", "--yes")
    assert code == 2
    refusal = json.loads(out)
    assert refusal["status"] == "refused"
    assert refusal["missing"][0]["name"] == "group_by"
    assert refusal["missing"][0]["suggestions"][0] == "Region"
    assert "regoin" in refusal["missing"][0]["reason"]
    assert refusal["how"].startswith("--param group_by=")
    assert "Error: cannot run this request yet" in err


def test_an_output_no_scaffold_writes_is_unexplained(cli, sales: Path) -> None:  # type: ignore[no-untyped-def]
    request = "summarise the csv files by region as an excel file"
    code, out, _ = cli("run", request, "--input", str(sales), "--json")
    assert code == 2
    assert json.loads(out)["unexplained"] == ["xlsx output"]


def test_analyze_exits_as_run_would(cli, sales: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("analyze", "summarise the csv files by regoin", "--input", str(sales), "--json")
    assert code == 2
    decision = json.loads(out)["decision"]
    assert decision["template"] == "csv_summary" and decision["missing"][0]["name"] == "group_by"
    code, out, _ = cli("analyze", "summarise the csv files by region", "--input", str(sales), "--json")
    assert code == 0
    assert json.loads(out)["decision"]["params"]["group_by"] == "Region"
    code, out, _ = cli(
        "analyze", "anything at all", "--template", "csv_summary", "--param", "group_by=Region", "--json"
    )
    assert code == 0 and json.loads(out)["decision"]["template"] == "csv_summary"


def test_run_takes_limits_and_the_seeds_strategy_names(cli, sales: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(
        "run",
        "summarise the csv files by region",
        "--input",
        str(sales),
        "--output",
        str(tmp_path / "out"),
        "--timeout",
        "7",
        "--memory",
        "300m",
        "--strategy",
        "template",
        "--json",
        "--yes",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["policy"]["limits"]["timeout_s"] == 7
    assert report["dispatch_decision"]["strategy"] == "use_template"
    code, _, err = cli("run", "summarise the csv files by region", "--input", str(sales), "--memory", "lots")
    assert code == 2 and "memory" in err
