"""`harness check`: table or JSON on stdout, exit codes 0 / 1 / 2, one-line errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.cli.check import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    register(app)

    @app.callback()
    def root() -> None:
        """A tiny app, so `check` stays a subcommand."""

    return app


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_benign_script_passes(app: typer.Typer, tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("import json\nprint(json.dumps({'a': 1}))\n")
    code, out, err = invoke(app, "check", str(script))
    assert code == 0 and err == ""
    assert "ok.py: gate passed under the strict policy" in out


def test_a_failing_script_shows_a_table_and_exits_1(app: typer.Typer, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import os\nos.system('id')  # [bold]markup is shown as text[/bold]\n")
    code, out, err = invoke(app, "check", str(script))
    assert code == 1 and err == ""
    for column in ("code", "severity", "line:col", "message", "hint"):
        assert column in out
    assert "HP103" in out and "2:0" in out and "gate failed" in out
    assert "HB605" not in out  # info findings only with --info
    code, out, _ = invoke(app, "check", str(script), "--info")
    assert code == 1 and "HB605" in out


def test_json_output_is_the_report_and_the_decision(app: typer.Typer, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import os\nos.system('id')\n")
    code, out, _ = invoke(app, "check", str(script), "--json")
    assert code == 1
    payload = json.loads(out)
    assert set(payload) == {"report", "gate"}
    assert payload["gate"]["passed"] is False and payload["gate"]["policy"] == "strict"
    assert payload["report"]["passed"] is False and payload["report"]["counts"]["error"] >= 1
    assert any(f["code"] == "HP103" and f["line"] == 2 for f in payload["report"]["findings"])
    assert payload["gate"]["reasons"][0].startswith("HP103 line 2:")


def test_policy_option_changes_the_verdict(app: typer.Typer, tmp_path: Path) -> None:
    script = tmp_path / "loader.py"
    script.write_text("import sys\nsys.path.insert(0, '/tmp')\n")
    assert invoke(app, "check", str(script), "--policy", "strict")[0] == 1
    code, out, _ = invoke(app, "check", str(script), "--policy", "standard", "--json")
    assert code == 0 and json.loads(out)["gate"]["policy"] == "standard"


def test_usage_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], served: str) -> None:
    from harness.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("check", str(tmp_path / "missing.py"))
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and "missing.py" in err
    script = tmp_path / "ok.py"
    script.write_text("x = 1\n")
    code, out, err = run("check", str(script), "--policy", "lax")
    assert code == 2 and out == "" and err.startswith("Error: unknown gate policy 'lax'")
    code, _, err = run("check", str(tmp_path))
    assert code == 2 and err.startswith("Error: ")
    assert run("check")[0] == 2  # typer's own usage error
