"""Reading requests and binding them to scaffold parameters with the inputs' help."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.dispatch.inputs import inspect_inputs
from harness.dispatch.understand import bind, read_request
from harness.generation.scaffolds import load_library

LIBRARY = load_library()


@pytest.fixture()
def sales(tmp_path: Path) -> Path:
    folder = tmp_path / "sales"
    folder.mkdir()
    (folder / "q1.csv").write_text("Date,Region,Product,Units,Unit Price\n2026-01-01,North,widget,3,2.50\n")
    (folder / "q2.csv").write_bytes(
        "Date;Region;Product;Units;Unit Price\n2026-04-01;Süd;gizmo;1;10,5\n".encode("cp1252")
    )
    return folder


@pytest.fixture()
def orders(tmp_path: Path) -> Path:
    folder = tmp_path / "orders"
    folder.mkdir()
    records = [
        {"id": 1, "status": "paid", "total": 120.5, "customer": {"name": "Ada"}},
        {"id": 2, "status": "open", "total": 99, "customer": {"name": "Alan"}},
    ]
    (folder / "orders.json").write_text(json.dumps(records))
    return folder


@pytest.mark.parametrize(
    ("request_text", "group"),
    [
        ("total sales per region", ("region",)),
        ("summarise the CSVs by Region", ("Region",)),
        ("for each product, sum the units", ("product",)),
        ("sales broken down by customer region, then zip it", ("customer region",)),
        ("sort my downloads into folders by type", ("type",)),
        ("count the rows by 2026", ()),
    ],
)
def test_group_phrases(request_text: str, group: tuple[str, ...]) -> None:
    assert read_request(request_text).group_by == group


def test_numbers_names_formats_files_and_fields() -> None:
    reading = read_request(
        "filter orders.json to paid ones over 100, keep id, customer name and total, sorted by total descending, "
        "as csv; call nothing"
    )
    assert [(c.subject, c.op, c.value) for c in reading.conditions] == [("paid", ">", "100")]
    assert reading.files == ("orders.json",)
    assert reading.formats == ("csv",)
    assert reading.fields == ("id", "customer name", "total")
    assert reading.sort == ("total desc",)
    other = read_request("back up the project into a tar.gz archive called pkg-backup, top 5 files, last 7 days")
    assert other.name == "pkg-backup"
    assert other.formats == ("tar.gz",)
    assert other.top == 5 and other.last_days == 7
    assert read_request("chart monthly sales as a png").formats == ("png",)
    assert read_request("at least 2,500 units").conditions[0].value == "2500"


def test_inputs_are_inspected_by_their_heads(sales: Path, orders: Path) -> None:
    facts = inspect_inputs([sales, orders])
    assert facts.files == 3
    assert facts.find_column("region") == "Region"
    assert facts.find_column("unit_price") == "Unit Price"
    assert set(facts.numeric_columns) >= {"Units", "Unit Price", "id", "total"}
    assert facts.find_column("customer name") == "customer.name"
    assert facts.columns_with_value("PAID") == ["status"]


def test_group_by_comes_from_the_data_whatever_its_case(sales: Path) -> None:
    facts = inspect_inputs([sales])
    binding = bind(read_request("total sales per region"), LIBRARY.get("csv_summary"), facts)
    assert binding.params["group_by"] == "Region"
    # "sales" is no column: it is units x price.
    assert binding.params["derive"] == ["sales = Units * `Unit Price`"]
    assert binding.params["columns"] == ["sales"]
    assert not binding.missing


def test_unknown_group_column_is_missing_with_suggestions(sales: Path) -> None:
    binding = bind(read_request("summarise by regoin"), LIBRARY.get("csv_summary"), inspect_inputs([sales]))
    assert "group_by" not in binding.params
    assert binding.missing[0].name == "group_by"
    assert binding.missing[0].suggestions[0] == "Region"


def test_no_group_phrase_lists_the_columns(sales: Path) -> None:
    binding = bind(read_request("summarise these csv files"), LIBRARY.get("csv_summary"), inspect_inputs([sales]))
    assert binding.missing[0].name == "group_by"
    assert "Region" in binding.missing[0].suggestions


def test_choice_synonyms_map_and_others_are_refused() -> None:
    organiser = LIBRARY.get("file_organiser")
    assert bind(read_request("sort my downloads into folders by type"), organiser).params["by"] == "extension"
    assert bind(read_request("organise photos by month"), organiser).params["by"] == "date"
    refused = bind(read_request("organise files by colour"), organiser)
    assert "by" not in refused.params
    assert refused.missing[0].suggestions == ("extension", "date")


def test_filter_and_fields_are_bound_to_the_records(orders: Path) -> None:
    facts = inspect_inputs([orders])
    reading = read_request("filter orders to paid ones over 100 and keep id, customer name and total as csv")
    binding = bind(reading, LIBRARY.get("json_transform"), facts)
    assert binding.params["where"] == ["total > 100", "status == paid"]
    assert binding.params["select"] == ["id", "customer.name", "total"]
    assert binding.params["format"] == "csv"


def test_a_format_the_scaffold_cannot_write_is_unmet(orders: Path) -> None:
    binding = bind(read_request("convert orders to excel"), LIBRARY.get("json_transform"), inspect_inputs([orders]))
    assert "format" not in binding.params
    assert binding.unmet == ("xlsx output",)


def test_stated_values_win_over_readings_and_are_checked_against_the_data(sales: Path) -> None:
    scaffold, facts = LIBRARY.get("csv_summary"), inspect_inputs([sales])
    binding = bind(read_request("total sales per region"), scaffold, facts, {"group_by": "product"})
    assert binding.params["group_by"] == "Product"  # the caller's column, in the data's spelling
    typo = bind(read_request("total sales per region"), scaffold, facts, {"group_by": "prodcut"})
    assert "group_by" not in typo.params
    [missing] = typo.missing
    assert missing.reason == "no column of the inputs matches 'prodcut'"
    assert missing.suggestions == ("Product",) and missing.sole is None  # a close spelling is not assumed
    nonsense = bind(read_request("total sales per region"), scaffold, facts, {"group_by": "x"})
    assert nonsense.missing[0].sole is None and "Region" in nonsense.missing[0].suggestions


def test_only_one_label_column_is_the_sole_candidate_for_groups(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("Region,Units,Price\nNorth,3,2.5\nSouth,4,1\n")
    [missing] = bind(read_request("summarise the sales"), LIBRARY.get("csv_summary"), inspect_inputs([one])).missing
    assert missing.name == "group_by" and missing.sole == "Region"
    assert missing.suggestions[0] == "Region"
    two = tmp_path / "two.csv"
    two.write_text("Region,Product,Units\nNorth,widget,3\n")
    [missing] = bind(read_request("summarise the sales"), LIBRARY.get("csv_summary"), inspect_inputs([two])).missing
    assert missing.sole is None and missing.suggestions[:2] == ("Region", "Product")


def test_a_large_csv_is_inspected_quickly(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    row = "2026-01-01,North,widget,3,2.50\n"
    big.write_text("Date,Region,Product,Units,Unit Price\n" + row * (10_000_000 // len(row)))
    start = time.perf_counter()
    facts = inspect_inputs([big])
    # Only the head is read: this is a guard against reading whole files, not a benchmark.
    assert time.perf_counter() - start < 2.0
    assert facts.find_column("region") == "Region" and facts.total_bytes >= 9_000_000


def test_a_named_numeric_column_is_not_replaced_by_a_derived_amount(sales: Path) -> None:
    reading = read_request("group these sales spreadsheets by region and add up the units")
    binding = bind(reading, LIBRARY.get("csv_summary"), inspect_inputs([sales]))
    assert binding.params["group_by"] == "Region"
    assert "derive" not in binding.params and "columns" not in binding.params


@pytest.mark.parametrize(
    "request_text", ["summarise every CSV in the sales data by region", "sum the sales files by region"]
)
def test_an_amount_word_naming_the_data_derives_nothing(sales: Path, request_text: str) -> None:
    binding = bind(read_request(request_text), LIBRARY.get("csv_summary"), inspect_inputs([sales]))
    assert binding.params["group_by"] == "Region"
    assert "derive" not in binding.params


def test_a_bare_each_groups_only_by_a_column_the_data_has(sales: Path) -> None:
    scaffold, facts = LIBRARY.get("csv_summary"), inspect_inputs([sales])
    reading = read_request("how many units did each region sell")
    assert reading.group_by == () and reading.each == ("region",)
    assert bind(reading, scaffold, facts).params["group_by"] == "Region"
    # "each other" is not a group, and a noun that is no column leaves the question open.
    assert read_request("which photos are copies of each other").each == ()
    [missing] = bind(read_request("how many units did each shop sell"), scaffold, facts).missing
    assert missing.name == "group_by" and missing.reason == "the request does not say what to group by"


def test_customers_do_not_stem_to_custom() -> None:
    from harness.dispatch.text import stem

    assert stem("customers") == stem("customer") != stem("custom")


def test_the_llm_is_asked_whenever_the_heuristic_leaves_something_unexplained(sales: Path) -> None:
    from harness.dispatch.analyse import analyse
    from harness.dispatch.llm_analyse import wanted

    scaffolds = LIBRARY.scaffolds
    confident = analyse("total sales per region", scaffolds, facts=inspect_inputs([sales]))
    assert confident.candidates[0].confidence >= 0.45 and not confident.unmet
    assert not wanted("auto", confident, 0.45)
    leftover = analyse("total sales per region as a png chart", scaffolds, facts=inspect_inputs([sales]))
    assert leftover.candidates[0].confidence >= 0.45 and leftover.unmet == ("png output",)
    assert wanted("auto", leftover, 0.45)
