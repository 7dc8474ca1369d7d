"""`harness run` and `harness analyze` without an engine: decisions, dry runs and every usage error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.generation.scaffolds import scaffolds_root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "summarise the csv files", "--template", "csv_sumary"], "no scaffold called 'csv_sumary'"),
        (["run", "find errors in logs", "--template", "log_analysis", "--param", "top=many"], "parameter top"),
        (["run", "find errors in logs", "--template", "log_analysis", "--param", "nope=1"], "no parameter 'nope'"),
        (["run", "find errors in logs", "--param", "top"], "invalid --param"),
        (["run", "plan it", "-t", "project_plan", "--param", "default_estimate_days=nan"], "a finite number"),
        (["run", "plan it", "-t", "project_plan", "--param", "hours_per_day=inf"], "a finite number"),
        (["run", "find errors", "--input", "/does/not/exist"], "does not exist"),
        (["run", "summarise the csv files"], "missing --param group_by="),
        (["run", "book me a flight to Lisbon"], "missing a scaffold: pass --template NAME"),
        (["run", "   "], "the request is empty"),
        (["run", "x" * 30_000], "characters long"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert needle in one_error_line(err)


def test_dry_run_prints_the_script_and_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", "summarise every CSV by region", "--dry-run")
    assert code == 0
    assert "GROUP_BY = 'region'" in out and "import harness_runtime as hr" in out
    assert "dry run: the script passes the standard gate" in err


def test_gate_failure_exits_1_and_keeps_script_and_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "log_analysis", library / "log_analysis")
    template = library / "log_analysis" / "template.py.j2"
    template.write_text(template.read_text().replace("import json\n", "import json\nimport subprocess\n", 1))
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    code, out, err = run(capsys, "run", "find errors in the logs", "--template", "log_analysis", "--json")
    assert code == 1
    assert "gate refused" in err
    report = json.loads(out)
    assert report["execution_result"]["status"] == "gate_failed"
    assert report["quality_metrics"]["gate_passed"] is False
    assert any(f["code"] == "HP101" for f in report["quality_metrics"]["findings"])
    run_dir = Path(report["script_path"]).parent
    assert "import subprocess" in (run_dir / "script.py").read_text()
    assert json.loads((run_dir / "checks.json").read_text())["findings"]
    assert (run_dir / "report.json").is_file()


def test_analyze_json_shows_analysis_and_decision(capsys: pytest.CaptureFixture[str], served: str) -> None:
    code, out, _ = run(capsys, "analyze", "audit this repository for hard-coded secrets", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["analysis"]["workflow_type"] == "security_audit"
    assert payload["analysis"]["roles"] == ["security-specialist"]
    estimate = payload["analysis"]["estimate"]
    assert estimate["coordination_s"] == 1.0 and estimate["token_budget"] is None  # offline: no tokens to budget
    assert payload["decision"]["template"] == "security_audit"


def test_templates_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "templates", "list", "--json")
    assert code == 0 and len(json.loads(out)) >= 12
    code, out, _ = run(capsys, "templates", "show", "project_plan")
    assert code == 0 and "critical path" in out and "example: harness run" in out
    code, _, err = run(capsys, "templates", "show", "nope")
    assert code == 2 and one_error_line(err)


@pytest.mark.parametrize("command", ["run", "exec"])
def test_output_flags_are_checked_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    target = tmp_path / "checkout"
    (target / ".git").mkdir(parents=True)
    script = tmp_path / "s.py"
    script.write_text("print(1)\n")
    first = ["run", "find errors in logs", "--template", "log_analysis"] if command == "run" else ["exec", str(script)]
    code, _, err = run(capsys, *first, "--output", str(target))
    assert code == 2 and "not empty" in one_error_line(err) and "--merge" in err and "--overwrite" in err
    code, _, err = run(capsys, *first, "--output", str(target), "--overwrite")
    assert code == 2 and "not made by harness" in one_error_line(err)
    code, _, err = run(capsys, *first, "--output", str(target), "--merge", "--overwrite")
    assert code == 2 and "cannot be used together" in one_error_line(err)
    assert sorted(p.name for p in target.iterdir()) == [".git"]
