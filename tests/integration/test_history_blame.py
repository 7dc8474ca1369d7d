"""Bad input is the user's, not the scaffold's: the README's request stays dispatchable however often it meets it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REQUEST = "summarise every CSV in the sales data by region"


def test_input_failures_do_not_lower_the_scaffolds_standing(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sales.csv").write_text("date,region,units\n")  # a header and no rows: nothing to summarise
    code, out, err = cli("analyze", REQUEST, "--json")
    before = json.loads(out)["decision"]["confidence"]
    for n in range(6):
        code, out, err = cli("run", REQUEST, "--input", str(bad), "--output", str(tmp_path / f"o{n}"), "--yes")
        assert code == 1, err
        assert "no rows" in err
    code, out, err = cli("history", "--json")
    causes = {row["cause"] for row in json.loads(out)}
    assert causes == {"input"}
    code, out, err = cli("analyze", REQUEST, "--json")
    decision = json.loads(out)["decision"]
    assert decision["template"] == "csv_summary" and decision["confidence"] == before
    code, out, err = cli("stats", "--json")
    row = next(r for r in json.loads(out)["by_template"] if r["template"] == "csv_summary")
    assert row["failures_by_cause"] == {"input": 6}
