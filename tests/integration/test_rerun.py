"""``harness rerun``: a run repeated from its report, on the real engine: same answer, linked, inputs checked."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
REQUEST = "summarise every CSV in the sales data by region"


def _run(cli: Cli, data: Path, out: Path) -> dict:  # type: ignore[type-arg]
    code, stdout, stderr = cli("run", REQUEST, "--input", str(data), "--output", str(out), "--json", "--local")
    assert code == 0, stderr
    return json.loads(stdout)  # type: ignore[no-any-return]


def test_a_rerun_gives_the_same_answer_under_a_new_id_linked_to_the_original(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ROOT / "examples/data", data)
    first = _run(cli, data, tmp_path / "first")
    made_from = first["provenance"]
    assert made_from["argv"][:3] == ["harness", "run", REQUEST] and made_from["template"] == "csv_summary"
    assert (
        made_from["inputs"][0]["files"][0]["path"] == "sales.csv" and made_from["params_used"]["group_by"] == "region"
    )
    assert made_from["params_bound"] == {"group_by": "region"} and made_from["params_given"] == {}

    code, stdout, stderr = cli("rerun", first["run_id"], "--output", str(tmp_path / "again"), "--json")
    assert code == 0, stderr
    outcome = json.loads(stdout)
    assert outcome["rerun_of"] == first["run_id"] and outcome["run_id"] != first["run_id"]
    assert outcome["warnings"] == [] and "warning" not in stderr
    report = json.loads((Path(outcome["run_dir"]) / "report.json").read_text())
    assert report["provenance"]["rerun_of"] == first["run_id"]
    assert report["provenance"]["script_sha256"] == made_from["script_sha256"]  # the same script, no LLM
    assert report["dispatch_decision"]["params"] == first["dispatch_decision"]["params"]
    assert report["provenance"]["argv"][:2] == ["harness", "rerun"]
    before = json.loads((tmp_path / "first" / "summary.json").read_text())
    after = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert after == before and after["rows"] == 240


def test_a_changed_input_is_warned_and_a_deleted_one_refused(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ROOT / "examples/data", data)
    first = _run(cli, data, tmp_path / "first")
    with (data / "sales.csv").open("a") as fh:
        fh.write("2024-12-31,north,widget,1,2.5\n")
    code, stdout, stderr = cli("rerun", first["run_id"], "--json")
    assert code == 0, stderr
    warned = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {data}/sales.csv changed since the run"]
    assert json.loads(stdout)["warnings"] == [f"{data}/sales.csv changed since the run"]

    (data / "sales.csv").unlink()
    code, stdout, stderr = cli("rerun", first["run_id"])
    assert code == 2
    assert stderr.startswith(f"Error: cannot rerun {first['run_id']}: input {data}/sales.csv is gone")
    assert len(stderr.strip().splitlines()) == 1


def test_an_exec_run_is_rerun_with_its_own_script_and_env_values_given_again(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "greet.py"
    script.write_text(
        "import os\nfrom pathlib import Path\n"
        "Path('/output/greeting.txt').write_text(os.environ['WHO'] + ':' + str(len(os.environ['TOKEN'])))\n"
    )
    code, stdout, stderr = cli(
        "exec",
        str(script),
        "--env",
        "WHO=world",
        "-e",
        "TOKEN=s3cret",
        "--output",
        str(tmp_path / "a"),
        "--json",
        "--local",
    )
    assert code == 0, stderr
    first = json.loads(stdout)["run_id"]
    assert (tmp_path / "a" / "greeting.txt").read_text() == "world:6"
    data_dir = Path(os.environ["HARNESS_DATA_DIR"])
    provenance = (data_dir / "runs" / first / "provenance.json").read_text()
    assert "s3cret" not in provenance and "world" not in provenance  # env values are never kept
    assert json.loads(provenance)["env_keys"] == ["TOKEN", "WHO"]

    code, _, stderr = cli("rerun", first)
    assert code == 2 and "TOKEN, WHO" in stderr and "never recorded" in stderr

    code, stdout, stderr = cli(
        "rerun", first, "-e", "WHO=again", "-e", "TOKEN=abc", "--output", str(tmp_path / "b"), "--json"
    )
    assert code == 0, stderr
    outcome = json.loads(stdout)
    assert outcome["kind"] == "exec" and outcome["script"]["result"]["status"] == "succeeded"
    assert (tmp_path / "b" / "greeting.txt").read_text() == "again:3"
    again = json.loads((data_dir / "runs" / outcome["run_id"] / "provenance.json").read_text())
    assert again["rerun_of"] == first and again["script_sha256"] == json.loads(provenance)["script_sha256"]


def test_unknown_ids_and_plans_are_one_line_refusals(cli: Cli) -> None:
    code, _, stderr = cli("rerun", "0123456789ab")
    assert (
        code == 2
        and stderr.strip() == "Error: no run 0123456789ab: list run ids with harness history (or harness runs list)"
    )
    code, _, stderr = cli("rerun", "plan-0123456789ab")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "is a plan" in stderr
