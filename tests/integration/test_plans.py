"""Plans in real containers: parallel phases overlap, a dependent phase reads their outputs, failures follow policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.dispatch.plan import Plan, PlanPhase, estimate_plan
from harness.execution.docker import DockerBackend
from harness.orchestrate import run_plan
from harness.pipeline import Harness
from harness.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SALES = ROOT / "scaffolds/csv_summary/example/sales"
LOGS = ROOT / "scaffolds/log_analysis/example/logs"
TAMPERED = ROOT / "scaffolds/checksum_manifest/example/tampered"


@pytest.fixture
def harness() -> Harness:
    return Harness(Settings.from_env())


def phase(name: str, template: str, *deps: str, **kw: object) -> PlanPhase:
    return PlanPhase(name=name, request=f"{template} phase", template=template, depends_on=deps, **kw)  # type: ignore[arg-type]


def test_two_parallel_phases_then_a_dependent_one(harness: Harness, backend: DockerBackend, tmp_path: Path) -> None:
    plan = Plan(
        phases=(
            PlanPhase(
                name="summary", request="summarise by region", template="csv_summary", params={"group_by": "region"}
            ),
            phase("errors", "log_analysis"),
            PlanPhase(name="bundle", request="zip it", template="archive_builder", depends_on=("summary", "errors")),
        )
    )
    assert plan.stages() == [["errors", "summary"], ["bundle"]]
    estimates = {p.name: harness.analyse(p.request)[0].estimate for p in plan.phases}
    estimate = estimate_plan(plan, estimates, workers=2)
    report = run_plan(
        harness,
        plan,
        "test",
        inputs=(SALES, LOGS),
        output_dir=tmp_path,
        backend=backend,
        max_parallel=2,
        estimate=estimate,
    )
    assert report.status == "succeeded", report.phases
    by = {p.name: p for p in report.phases}
    # The two independent phases really ran at the same time.
    assert by["summary"].started_s < by["errors"].finished_s and by["errors"].started_s < by["summary"].finished_s
    assert by["bundle"].started_s >= max(by["summary"].finished_s, by["errors"].finished_s)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    packed = {f["path"] for f in manifest["files"]}
    assert {"summary/summary.json", "errors/log_report.json"} <= packed
    assert report.phases_completed == 3 and report.parallel_execution_percentage > 0
    assert "bundle/archive.zip" in report.deliverables and report.gates_passed == "6/6"
    assert report.estimate == estimate and report.estimate_error == round(report.wall_s / estimate.duration_s - 1, 3)
    assert json.loads((tmp_path / "plan_report.json").read_text())["plan_id"] == report.plan_id
    # History keeps the plan with each phase's run, its analysis and decision.
    recorded = harness.history.plans()[0]
    assert recorded["plan_id"] == report.plan_id and recorded["status"] == "succeeded"
    assert recorded["estimated_s"] == estimate.duration_s and recorded["wall_s"] == report.wall_s
    assert sorted(r["phase"] for r in recorded["runs"]) == ["bundle", "errors", "summary"]
    run = next(r for r in harness.history.recent() if r["phase"] == "summary")
    assert json.loads(run["decision"])["template"] == "csv_summary" and run["gate_passed"] == 1
    assert run["template_version"] == harness.library.get("csv_summary").version


def test_failure_policies(harness: Harness, backend: DockerBackend, tmp_path: Path) -> None:
    verify = {"mode": "verify", "manifest": "tampered/MANIFEST.sha256"}
    stop = Plan(
        phases=(
            PlanPhase(name="check", request="verify", template="checksum_manifest", params=verify),
            phase("after", "archive_builder", "check"),
        )
    )
    report = run_plan(harness, stop, "t", inputs=(TAMPERED,), output_dir=tmp_path / "a", backend=backend)
    assert [(p.name, p.status) for p in report.phases] == [("check", "failed"), ("after", "skipped")], [
        (p.name, p.status, p.reason) for p in report.phases
    ]
    assert report.status == "failed" and report.error_rate == 1.0

    skip = Plan(
        phases=(
            PlanPhase(name="check", request="verify", template="checksum_manifest", params=verify, on_failure="skip"),
            phase("other", "archive_builder"),
            phase("after-check", "archive_builder", "check"),
            phase("after-other", "dedupe_files", "other"),
        )
    )
    report = run_plan(harness, skip, "t", inputs=(TAMPERED,), output_dir=tmp_path / "b", backend=backend)
    status = {p.name: p.status for p in report.phases}
    assert status == {"check": "failed", "other": "succeeded", "after-check": "skipped", "after-other": "succeeded"}, [
        (p.name, p.status, p.reason) for p in report.phases
    ]

    retry = Plan(
        phases=(
            PlanPhase(name="check", request="verify", template="checksum_manifest", params=verify, on_failure="retry"),
        )
    )
    report = run_plan(harness, retry, "t", inputs=(TAMPERED,), output_dir=tmp_path / "c", backend=backend)
    assert report.phases[0].attempts == 2 and report.retries == 1


def test_deadline_skips_optional_phases_and_marks_partial(
    harness: Harness, backend: DockerBackend, tmp_path: Path
) -> None:
    plan = Plan(phases=(phase("first", "archive_builder"), phase("extra", "dedupe_files", "first", optional=True)))
    report = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=tmp_path, backend=backend, deadline_s=0.0)
    assert report.partial
    assert {p.name: p.status for p in report.phases}["extra"] == "skipped"
    assert report.status == "succeeded"  # what had to run, ran
    over = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=tmp_path / "b", backend=backend, token_budget=-1)
    assert over.partial and "token budget" in {p.name: p for p in over.phases}["extra"].reason


def test_expected_outputs_are_a_gate_between_phases(harness: Harness, backend: DockerBackend, tmp_path: Path) -> None:
    plan = Plan(
        phases=(
            PlanPhase(name="pack", request="zip", template="archive_builder", expect=("archive.zip", "missing.txt")),
            phase("after", "dedupe_files", "pack"),
        )
    )
    report = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=tmp_path, backend=backend)
    by = {p.name: p for p in report.phases}
    assert by["pack"].status == "failed" and "missing.txt" in by["pack"].reason
    assert by["after"].status == "skipped"


def test_scaffold_assertions_are_a_gate_between_phases(
    backend: DockerBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the library where csv_summary promises more groups than the example data has.
    library = tmp_path / "scaffolds"
    for name in ("csv_summary", "archive_builder"):
        shutil.copytree(ROOT / "scaffolds" / name, library / name)
    meta = library / "csv_summary" / "scaffold.toml"
    meta.write_text(
        meta.read_text() + '\n[[assertions]]\ndescription = "many groups"\nfile = "summary.json"\n'
        'at = "groups"\nmin_items = 1000\n'
    )
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    harness = Harness(Settings.from_env())
    plan = Plan(
        phases=(
            PlanPhase(name="summary", request="summarise", template="csv_summary", params={"group_by": "region"}),
            phase("bundle", "archive_builder", "summary"),
        )
    )
    report = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=tmp_path / "out", backend=backend)
    by = {p.name: p for p in report.phases}
    assert by["summary"].status == "failed" and by["summary"].assertions_passed is False
    assert by["summary"].reason.startswith("scaffold assertion failed: many groups (summary.json:")
    assert by["bundle"].status == "skipped"
    assert report.gates_passed == "1/2"  # the static gate passed, the assertions did not
    assert (tmp_path / "out" / "summary" / "summary.json").is_file()  # the broken output is kept for a look
    # The failure counts against the scaffold, as any other failed run does.
    assert harness.history.outcomes()["csv_summary"] == (0, 1)


def test_the_seeds_hybrid_example_runs_as_a_plan(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    request = (
        "research these papers, then build a python package called inventory, "
        "then audit the code for hard-coded secrets"
    )
    papers = ROOT / "scaffolds/research_digest/example/papers"
    assert main(["run", request, "--input", str(papers), "--json", "--yes"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["status"]) for p in report["phases"]] == [
        ("research_digest", "succeeded"),
        ("project_skeleton", "succeeded"),
        ("security_audit", "succeeded"),
    ]
    assert report["gates_passed"] == "6/6" and report["estimate"]["duration_s"] > 0
    assert "project_skeleton/inventory/pyproject.toml" in report["deliverables"]
    # The audit read the package the previous phase wrote, mounted under its /input.
    findings = json.loads((Path(report["phases"][2]["output_dir"]) / "findings.json").read_text())
    assert findings["files_scanned"] >= 4
    assert {"research-analyst", "security-specialist"} <= set(report["agents_coordinated"])


def test_plan_folders_follow_the_output_rules(harness: Harness, backend: DockerBackend, tmp_path: Path) -> None:
    from harness.errors import InputError
    from harness.execution.outputs import MARKER

    summary = PlanPhase(name="summary", request="summarise", template="csv_summary", params={"group_by": "region"})
    plan = Plan(phases=(summary,))
    mine = tmp_path / "mine"
    (mine / "summary").mkdir(parents=True)
    (mine / "summary" / "summary.json").write_text("my own")
    (mine / "plan_report.json").write_text("my own")
    with pytest.raises(InputError, match="not empty"):
        run_plan(harness, plan, "t", inputs=(SALES,), output_dir=mine, backend=backend)
    with pytest.raises(InputError, match="not made by harness"):
        run_plan(harness, plan, "t", inputs=(SALES,), output_dir=mine, output_mode="overwrite", backend=backend)

    merged = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=mine, output_mode="merge", backend=backend)
    assert (mine / "summary" / "summary.json").read_text() == "my own"
    assert (mine / "summary" / "summary.md").is_file()  # new files are added next to the user's
    assert (mine / "plan_report.json").read_text() == "my own"
    assert merged.report_file == f"plan_report-{merged.plan_id}.json" and merged.phases[0].outputs_partial
    assert json.loads((mine / merged.report_file).read_text())["plan_id"] == merged.plan_id
    assert not (mine / MARKER).exists()

    fresh = tmp_path / "fresh"
    first = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=fresh, backend=backend)
    assert first.status == "succeeded" and (fresh / MARKER).is_file() and (fresh / "summary" / MARKER).is_file()
    again = run_plan(harness, plan, "t", inputs=(SALES,), output_dir=fresh, output_mode="overwrite", backend=backend)
    assert again.status == "succeeded" and again.report_file == "plan_report.json"
    assert json.loads((fresh / "plan_report.json").read_text())["plan_id"] == again.plan_id
