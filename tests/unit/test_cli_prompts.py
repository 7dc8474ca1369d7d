"""Missing parameters: asked for in a terminal, taken under --yes only when the data leaves one value."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.ptyterm import Terminal

HARNESS = [sys.executable, "-m", "harness"]


@pytest.fixture
def one_label(tmp_path: Path) -> Path:
    (tmp_path / "one").mkdir()
    path = tmp_path / "one" / "sales.csv"
    path.write_text("Region,Units,Price\nNorth,3,2.5\nSouth,4,1\nNorth,1,2\n")
    return path


@pytest.fixture
def two_labels(tmp_path: Path) -> Path:
    (tmp_path / "two").mkdir()
    path = tmp_path / "two" / "sales.csv"
    path.write_text("Region,Product,Units\nNorth,widget,3\nSouth,gizmo,4\n")
    return path


def test_a_terminal_is_asked_with_the_data_suggestions_and_the_answer_decides(two_labels: Path) -> None:
    term = Terminal([*HARNESS, "run", "summarise the sales", "-i", str(two_labels), "--local", "--dry-run"])
    term.expect("csv_summary needs group_by: the request does not say what to group by")
    term.expect("group_by (one of: Region, Product, Units)")
    term.send("prodcut")  # a typo is asked again, with what it probably meant
    term.expect("no column of the inputs matches 'prodcut'")
    term.expect("[Product]")
    term.send("")  # Enter takes the only close match
    assert term.finish() == 0, term.seen
    assert "parameters group_by='Product'" in term.seen
    assert "dry run: the script passes the standard gate" in term.seen


def test_yes_takes_a_value_only_when_the_data_leaves_one(cli: Cli, one_label: Path, two_labels: Path) -> None:
    code, out, err = cli("run", "summarise the sales", "-i", str(one_label), "--yes", "--dry-run", "--local")
    assert code == 0, err
    assert "group_by='Region': the only value the data leaves (assumed, not asked)" in err
    code, out, err = cli("run", "summarise the sales", "-i", str(two_labels), "--yes", "--json", "--local")
    assert code == 2
    refusal = json.loads(out)
    assert refusal["status"] == "refused"
    assert refusal["missing"][0]["name"] == "group_by"
    assert refusal["missing"][0]["suggestions"][:2] == ["Region", "Product"]


def test_off_a_terminal_nothing_is_asked_and_the_request_is_refused(cli: Cli, one_label: Path) -> None:
    code, out, _ = cli("run", "summarise the sales", "-i", str(one_label), "--json", "--local")
    assert code == 2
    assert json.loads(out)["missing"][0]["suggestions"][0] == "Region"
