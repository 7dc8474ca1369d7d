"""Hostile event lines from a real container: whatever a script prints, the run finishes and is recorded.

Issue 9 item 7: one line, ``{"v":1,"kind":"result","data":{"\\ud800":1}}`` (a lone surrogate, as a
JSON escape in valid UTF-8), killed harness mid-run: no result.json, the history row unfinished.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from harness.checks import gate, run_checks
from harness.execution.docker import DockerBackend
from harness.pipeline import Harness
from harness.settings import Settings

ISSUE_LINE = r'{"v":1,"kind":"result","data":{"\ud800":1}}'
SCRIPT = f"""from pathlib import Path

Path("/output/records.json").write_text("[]", encoding="utf-8")  # what the scaffold's assertion asks for
print({ISSUE_LINE!r}, flush=True)
print('{{"v":1,"kind":"log","level":"error","message":"lone \\\\udc00 here"}}', flush=True)
print('{{"v":1,"kind":"metric","name":"m","value":NaN}}', flush=True)
print('{{"v":1,"kind":"result","data":' + '[' * 300 + ']' * 300 + '}}', flush=True)
print('{{"v":1,"kind":"result","data":' + '9' * 4300 + '}}', flush=True)
print("still here", flush=True)
"""


def test_the_issue_line_from_a_container_is_recorded_by_exec(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    script = tmp_path / "surrogate.py"
    script.write_text(SCRIPT, encoding="utf-8")
    code, out, err = cli("exec", str(script), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded"
    run_dir = Settings.from_env().runs_dir / result["run_id"]
    assert json.loads((run_dir / "result.json").read_text(encoding="utf-8"))["status"] == "succeeded"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = [e["kind"] for e in events]
    assert {"kind": "result", "data": {"\ufffd": 1}} in [{"kind": e["kind"], "data": e.get("data")} for e in events]
    assert any(e["kind"] == "log" and e["message"] == "lone \ufffd here" for e in events)
    assert kinds.count("unknown") == 2  # NaN, and nesting past MAX_DEPTH
    assert any(e["kind"] == "result" and e["data"] == int("9" * 4300) for e in events)
    assert kinds[-1] == "run_finished" and any(e.get("text") == "still here" for e in events)

    # The same run with the live display (stderr), not --json: shown, not crashed.
    code, out, err = cli("exec", str(script))
    assert code == 0 and "succeeded" in out and "error: lone \ufffd here" in err and "still here" in err


def test_the_issue_line_from_a_container_gets_a_report_and_a_finished_history_row(backend: DockerBackend) -> None:
    harness = Harness(Settings.from_env())
    prepared = harness.prepare("convert the json", template="json_transform")
    prepared.script = SCRIPT  # the scaffold only gets the request this far; this script is what runs
    prepared.checks = run_checks(SCRIPT, "standard")
    prepared.gate_passed = gate(prepared.checks, "standard").passed
    assert prepared.runnable, prepared.decision.missing
    report = harness.execute(prepared, backend=backend)
    assert report.execution_result.status == "succeeded", report.execution_result.message
    assert report.execution_result.result == int("9" * 4300)  # the last result event
    saved = json.loads((prepared.run_dir / "report.json").read_text(encoding="utf-8"))
    assert saved["execution_result"]["status"] == "succeeded"
    assert (prepared.run_dir / "result.json").is_file()
    row = next(r for r in harness.history.recent(50) if r["run_id"] == prepared.run_id)
    assert row["status"] == "succeeded"
