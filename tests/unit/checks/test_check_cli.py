"""`harness check`: table or JSON, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main


def test_check_passes_benign_script(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "ok.py"
    script.write_text("import json\nprint(json.dumps({'a': 1}))\n")
    assert main(["check", str(script)]) == 0
    assert "passed" in capsys.readouterr().out


def test_check_fails_and_reports_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "bad.py"
    script.write_text("import os\nos.system('id')\n")
    assert main(["check", str(script), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["gate"]["passed"] is False
    assert any(f["code"] == "HP103" and f["line"] == 2 for f in payload["report"]["findings"])


def test_check_usage_errors_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    assert capsys.readouterr().err.startswith("Error: script")
    script = tmp_path / "ok.py"
    script.write_text("x = 1\n")
    assert main(["check", str(script), "--policy", "lax"]) == 2
