"""The CLI opens one Services per invocation, builds the backend only when a command runs something, and closes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import context, main
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

SUMMARY = {"group_by": "region", "files": ["a.csv"], "rows": 1, "groups": {"north": {}}}


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedBackend]:
    made: list[ScriptedBackend] = []

    def factory(settings: Settings) -> ScriptedBackend:
        outputs = {"summary.json": json.dumps(SUMMARY).encode(), "summary.md": b"| north |\n"}
        made.append(ScriptedBackend(lambda spec: Outcome(outputs=outputs)))
        return made[-1]

    monkeypatch.setattr(context, "_cli_backend", factory)
    return made


def test_listing_templates_builds_no_backend(
    backends: list[ScriptedBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["templates", "list", "--json"]) == 0
    assert "csv_summary" in {s["name"] for s in json.loads(capsys.readouterr().out)}
    assert backends == []
    assert context._current.get() is None  # closed with the command


def test_a_run_uses_the_invocations_backend_and_closes_it(
    backends: list[ScriptedBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "a.csv"
    data.write_text("region\nnorth\n")
    args = ["run", "summarise the CSV by region", "--template", "csv_summary", "--param", "group_by=region"]
    code = main([*args, "--input", str(data), "--output", str(tmp_path / "out"), "--yes", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["execution_result"]["status"] == "succeeded"
    assert len(backends) == 1 and len(backends[0].specs) == 1 and backends[0].closed
    assert context._current.get() is None
    # The history command of a later invocation reads the same store through its own services.
    assert main(["history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["run_id"] == report["run_id"]
