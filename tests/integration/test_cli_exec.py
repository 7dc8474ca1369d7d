"""The `harness exec` command as a user runs it: exit codes, JSON, one-line errors, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.execution.docker import LABEL

ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness"]


def harness(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=120, **kw
    )


def test_exec_bundled_example_json(tmp_path: Path, served: str) -> None:
    done = harness(
        "exec",
        str(ROOT / "examples/sales_summary.py"),
        "--input",
        str(ROOT / "examples/data/sales.csv"),
        "--output",
        str(tmp_path),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert {a["path"] for a in result["artifacts"]} == {"summary.json", "summary.md"}
    assert result["policy"]["network"] == "none"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"east", "north", "south", "west"}
    assert sum(r["rows"] for r in summary.values()) == 240


def test_exec_failed_script_exits_1_and_keeps_events(tmp_path: Path, served: str) -> None:
    script = tmp_path / "fail.py"
    script.write_text("import harness_runtime as hr\nhr.log('about to fail')\nraise SystemExit(3)\n")
    done = harness("exec", str(script), "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["exit_code"] == 3 and result["status"] == "failed"
    run_dir = Path(os.environ["HARNESS_DATA_DIR"]) / "runs" / result["run_id"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "log" and e["message"] == "about to fail" for e in events)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--memory", "lots"], "invalid limit memory"),
        (["--timeout", "-1"], "invalid limit timeout_s"),
        (["--input", "/definitely/not/here"], "does not exist"),
        (["--output", "/proc/harness-cannot-write"], "not writable"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str, served: str) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('hi')\n")
    done = harness("exec", str(script), *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_no_engine_is_one_line_and_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('hi')\n")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = harness("exec", str(script), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("Error: no Docker engine answered") and "DOCKER_HOST" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_exec_leaves_no_container(tmp_path: Path, docker_client: Any, leftovers: Any, sig: int) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    # A shell's background jobs inherit SIGINT as ignored; a user's terminal delivers it.
    proc = subprocess.Popen(
        [*HARNESS, "exec", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60

    def started() -> bool:
        owners = [
            (c.get("Labels") or {}).get("harness.owner", "")
            for c in docker_client.api.containers(filters={"label": LABEL})
        ]
        return any(owner.split(":")[1:2] == [str(proc.pid)] for owner in owners)

    while time.monotonic() < deadline and not started():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    assert leftovers() == []


def test_run_bundled_request_end_to_end(tmp_path: Path) -> None:
    done = harness(
        "run",
        "summarise every CSV in the sales data by region",
        "--input",
        str(ROOT / "examples/data"),
        "--output",
        str(tmp_path),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dispatch_decision"]["template"] == "csv_summary"
    assert report["dispatch_decision"]["params"]["group_by"] == "region"
    assert report["execution_result"]["status"] == "succeeded"
    assert report["execution_result"]["phases_completed"] == 4  # discover, read, aggregate, report
    assert {d["path"] for d in report["execution_result"]["deliverables"]} == {"summary.json", "summary.md"}
    assert report["quality_metrics"]["gate_passed"] is True
    assert report["policy"]["network"] == "none"
    assert set(report["performance_metrics"]["stages_s"]) >= {"analyse_s", "render_s", "check_s", "run_s"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows"] == 240 and set(summary["groups"]) == {"east", "north", "south", "west"}
    assert "decision use_template csv_summary" in done.stderr
    history = json.loads(harness("history", "--json").stdout)
    assert history[0]["run_id"] == report["run_id"] and history[0]["status"] == "succeeded"
    assert history[0]["template"] == "csv_summary" and history[0]["duration_s"] > 0


def test_run_failed_script_exits_1_with_report(tmp_path: Path) -> None:
    # verify mode against a manifest that does not match: the scaffold fails on purpose.
    tampered = ROOT / "scaffolds/checksum_manifest/example/tampered"
    done = harness(
        "run",
        "verify the files against the sha256 manifest",
        "--input",
        str(tampered),
        "--param",
        "manifest=tampered/MANIFEST.sha256",
        "--json",
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["execution_result"]["status"] == "failed" and report["execution_result"]["exit_code"] == 1


def test_missing_image_that_cannot_be_built_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('hi')\n")
    env = {**os.environ, "HARNESS_IMAGE": "harness-sandbox:does-not-exist"}
    done = harness("exec", str(script), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("Error: sandbox image harness-sandbox:does-not-exist is not on this engine")
    assert len(done.stderr.strip().splitlines()) == 1


def test_run_a_multi_phase_request_as_a_plan(tmp_path: Path) -> None:
    sales = ROOT / "scaffolds/csv_summary/example/sales"
    logs = ROOT / "scaffolds/log_analysis/example/logs"
    done = harness(
        "run",
        "summarise every CSV by region and find the most common errors in the logs, then zip up the results",
        "--input",
        str(sales),
        "--input",
        str(logs),
        "--output",
        str(tmp_path),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p["name"] for p in report["phases"]] == ["csv_summary", "log_analysis", "archive_builder"]
    assert report["status"] == "succeeded" and report["phases_completed"] == 3
    manifest = json.loads((tmp_path / "archive_builder" / "manifest.json").read_text())
    assert {"csv_summary/summary.json", "log_analysis/log_report.json"} <= {f["path"] for f in manifest["files"]}
    assert "plan stage 2: archive_builder" in done.stderr
