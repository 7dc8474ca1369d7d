"""Requests people actually type, against the real scaffold library: the right scaffold, or none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.pipeline import Harness
from harness.report import Report
from harness.settings import Settings


def harness() -> Harness:
    """A harness on this test's own, empty data directory: the tables test heuristics, not what was learnt."""
    return Harness(Settings.from_env())


TABLE = [
    ("summarise every CSV in ./data by region", "csv_summary", {"group_by": "region"}),
    ("total the sales spreadsheets per product", "csv_summary", {}),
    ("find the most common errors in the application logs", "log_analysis", {}),
    ("how many warnings per hour are in these log files?", "log_analysis", {"bucket": "hour"}),
    ("organise my downloads folder into folders by file extension", "file_organiser", {"by": "extension"}),
    ("sort these files by date into monthly folders", "file_organiser", {"by": "date"}),
    ("create a sha256 checksum manifest for the release", "checksum_manifest", {"algorithm": "sha256"}),
    ("verify the files against MANIFEST.sha256", "checksum_manifest", {"mode": "verify"}),
    ("keep only paid orders from the json records and rename fields", "json_transform", {}),
    ("find duplicate photos and keep one copy of each", "dedupe_files", {}),
    ("zip up the project folder with a manifest", "archive_builder", {"format": "zip"}),
    ("make a tarball backup of my notes", "archive_builder", {}),
    ("write a markdown report describing the columns of survey.csv", "data_report", {"format": "markdown"}),
    ("audit this repository for hard-coded secrets and unpinned dependencies", "security_audit", {}),
    ("security review of the code for dangerous calls like eval and pickle", "security_audit", {}),
    ("research these papers and summarise the key themes", "research_digest", {}),
    ("compare the documents in the corpus and extract key phrases", "research_digest", {}),
    (
        "create a new python package called inventory with a cli and unit tests",
        "project_skeleton",
        {"package": "inventory"},
    ),
    ("plan the project from the task list with milestones and the critical path", "project_plan", {}),
    ("turn this spec into a phased schedule with dependencies and deliverables", "project_plan", {}),
]
UNMATCHED = [
    "book me a flight to Lisbon next Tuesday",
    "write a haiku about autumn",
    "deploy a blue-green kubernetes rollout with canary analysis",
    "translate the user interface into Japanese",
]


@pytest.mark.parametrize(("request_text", "scaffold", "params"), TABLE)
def test_request_is_served_by_the_expected_scaffold(request_text: str, scaffold: str, params: dict) -> None:
    analysis, decision = harness().analyse(request_text)
    assert decision.template == scaffold, (decision.reasoning, analysis.candidates[:2])
    assert decision.strategy == "use_template"
    for key, value in params.items():
        assert decision.params.get(key) == value


@pytest.mark.parametrize("request_text", UNMATCHED)
def test_unrelated_requests_are_not_forced_onto_a_scaffold(request_text: str) -> None:
    _, decision = harness().analyse(request_text)
    assert decision.strategy == "generate_custom" and decision.template is None
    assert decision.missing[0].kind == "template_or_llm"


def test_report_schema_document_matches_the_model() -> None:
    path = Path(__file__).resolve().parents[3] / "docs" / "report.schema.json"
    assert json.loads(path.read_text()) == Report.model_json_schema()
