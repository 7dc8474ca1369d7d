"""Scaffold output assertions: each property, parameter conditions, and untrusted output folders."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.assertions import Assertion, check_counts, check_outputs, processed_line, verify
from harness.events import MetricEvent
from harness.records import PolicyReceipt, RunResult


def verdict(tmp_path: Path, params: dict[str, object] | None = None, **fields: object) -> tuple[bool, str]:
    outcomes = check_outputs([Assertion(description="d", **fields)], tmp_path, params or {})  # type: ignore[arg-type]
    assert len(outcomes) == 1
    return outcomes[0].passed, outcomes[0].detail


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "summary.json").write_text(json.dumps({"groups": {"north": {"n": 2}}, "rows": [1, 2, 3], "ok": True}))
    (tmp_path / "table.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "lines.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (tmp_path / "report.md").write_text("# Report\n\n| a | b |\n")
    (tmp_path / "empty.txt").write_text("")
    return tmp_path


def test_existence_and_size(out: Path) -> None:
    assert verdict(out, file="report.md") == (True, "")
    assert verdict(out, file="missing.md") == (False, "no file matches missing.md")
    assert verdict(out, file="empty.txt") == (False, "empty.txt: 0 bytes, expected at least 1")
    assert verdict(out, file="empty.txt", min_bytes=0)[0]
    assert verdict(out, file="*.md")[0]  # a glob needs one match, and every match must pass


def test_json_keys_paths_counts_and_values(out: Path) -> None:
    assert verdict(out, file="summary.json", keys=("groups", "rows"))[0]
    assert verdict(out, file="summary.json", keys=("groups", "total")) == (False, "summary.json: lacks total")
    assert verdict(out, file="summary.json", at="groups", min_items=1)[0]
    assert verdict(out, file="summary.json", at="rows", min_items=5) == (
        False,
        "summary.json: 3 items at rows, expected at least 5",
    )
    assert verdict(out, file="summary.json", at="groups.north.n", equals=2)[0]
    assert verdict(out, file="summary.json", at="rows.0", equals=1)[0]
    assert verdict(out, file="summary.json", at="ok", equals=False) == (
        False,
        "summary.json: ok is true, expected false",
    )
    assert verdict(out, file="summary.json", at="groups.south", min_items=1) == (
        False,
        "summary.json: has no groups.south",
    )
    assert verdict(out, file="report.md", format="json")[1].startswith("report.md: not JSON")


def test_text_formats(out: Path) -> None:
    assert verdict(out, file="table.csv", format="csv", min_items=2)[0]
    assert verdict(out, file="table.csv", format="csv", min_items=3)[1] == "table.csv: 2 data rows, expected at least 3"
    assert verdict(out, file="lines.jsonl", format="jsonl", min_items=2)[0]
    (out / "bad.jsonl").write_text('{"a": 1}\nnot json\n')
    assert verdict(out, file="bad.jsonl", format="jsonl") == (False, "bad.jsonl: line 2 is not JSON")
    assert verdict(out, file="report.md", contains=("| a |",))[0]
    assert verdict(out, file="report.md", contains=("| z |",)) == (False, "report.md: does not contain '| z |'")
    (out / "binary.txt").write_bytes(b"\xff\xfe\x00")
    assert verdict(out, file="binary.txt", contains=("x",)) == (False, "binary.txt: not UTF-8 text")


def test_archives(out: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    (out / "good.zip").write_bytes(buffer.getvalue())
    assert verdict(out, file="good.zip", format="zip")[0]
    corrupt = bytearray(buffer.getvalue())
    corrupt[corrupt.index(b"hello")] ^= 0xFF  # the stored member no longer matches its CRC
    (out / "corrupt.zip").write_bytes(bytes(corrupt))
    assert verdict(out, file="corrupt.zip", format="zip") == (False, "corrupt.zip: member a.txt is corrupt")
    (out / "fake.zip").write_text("not a zip at all")
    assert "not a valid zip archive" in verdict(out, file="fake.zip", format="zip")[1]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    (out / "good.tar.gz").write_bytes(buffer.getvalue())
    assert verdict(out, file="good.tar.gz", format="tar")[0]
    (out / "trunc.tar.gz").write_bytes(buffer.getvalue()[:20])
    assert "not a valid tar archive" in verdict(out, file="trunc.tar.gz", format="tar")[1]


def test_parameters_select_and_name_files(out: Path) -> None:
    rules = [
        Assertion(description="zip", file="{name}.zip", format="zip", when={"format": "zip"}),
        Assertion(description="md", file="{name}.md", when={"format": "markdown"}),
    ]
    outcomes = check_outputs(rules, out, {"format": "markdown", "name": "report"})
    assert [(o.description, o.file, o.passed) for o in outcomes] == [("md", "report.md", True)]
    assert check_outputs(rules, out, {"format": "csv", "name": "report"}) == ()


def test_untrusted_outputs_cannot_point_outside(out: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = tmp_path_factory.mktemp("host") / "secret.json"
    secret.write_text('{"groups": {}}')
    (out / "link.json").symlink_to(secret)
    assert verdict(out, file="link.json") == (False, "no file matches link.json")
    assert verdict(out, file="../*/secret.json")[0] is False
    assert verdict(out / "nowhere", file="x") == (False, "the run left no output folder")


def test_large_files_are_not_parsed(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.assertions.MAX_PARSE_BYTES", 10)
    assert verdict(out, file="summary.json", keys=("groups",))[1].startswith("summary.json: too large to check (")
    assert verdict(out, file="summary.json")[0]  # existence and size need no parsing


def test_records_must_meet_the_conditions_asked_for(tmp_path: Path) -> None:
    rule = Assertion(description="filtered", file="records.{format}", min_bytes=0, satisfies="where")
    (tmp_path / "records.json").write_text(json.dumps([{"id": 1, "Total": 120}, {"id": 2, "Total": 99}]))
    params = {"format": "json", "where": ["total > 100"]}
    outcome = check_outputs([rule], tmp_path, params)[0]
    assert not outcome.passed and "record 2 does not meet 'total > 100'" in outcome.detail
    (tmp_path / "records.csv").write_text("id,total\n1,120\n3,101\n")
    assert check_outputs([rule], tmp_path, {**params, "format": "csv"})[0].passed
    # A condition on a field the output did not keep cannot be checked, and is not held against it.
    assert check_outputs([rule], tmp_path, {"format": "csv", "where": ["status == paid"]})[0].passed
    # No conditions asked: nothing to check.
    assert check_outputs([rule], tmp_path, {"format": "json", "where": []})[0].passed


def _ran(*counts: tuple[str, float, str]) -> RunResult:
    events = tuple(MetricEvent(name=name, value=value, unit=unit) for name, value, unit in counts)
    return RunResult(
        run_id="r1", status="succeeded", exit_code=0, image="img", pooled=False, duration_s=0.1,
        events=events, policy=PolicyReceipt(),
    )  # fmt: skip


def test_a_run_that_read_nothing_or_lost_records_has_failed() -> None:
    """The script's own account can turn a success into a failure, never the reverse."""
    good = _ran(
        ("records_in", 600, "lines read"), ("records_out", 598, "lines parsed"), ("records_skipped", 2, "skipped")
    )
    assert processed_line(good) == "600 lines read, 598 lines parsed, 2 skipped"
    assert check_counts(good) is None and verify(good, (), None, {})[0].status == "succeeded"
    nothing = _ran(("records_in", 0, "rows read"), ("records_out", 0, "rows used"), ("records_skipped", 0, "skipped"))
    run, _ = verify(nothing, (), None, {})
    assert run.status == "failed" and run.message == "nothing was read (0 rows read, 0 rows used, 0 skipped)"
    lost = _ran(("records_in", 10, "rows read"), ("records_out", 7, "rows used"), ("records_skipped", 1, "skipped"))
    run, _ = verify(lost, (), None, {})
    assert run.status == "failed" and run.message.startswith("the script's counts do not add up: 10 rows read")
    failed = nothing.model_copy(update={"status": "failed", "exit_code": 3})
    assert verify(failed, (), None, {})[0] == failed
    untold = _ran()
    assert processed_line(untold) == "" and verify(untold, (), None, {})[0] == untold
