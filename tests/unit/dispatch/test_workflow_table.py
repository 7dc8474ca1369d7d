"""A labelled table of requests (written for the tests) -> workflow type, strategy and scaffold, offline."""

from __future__ import annotations

import pytest

from harness.pipeline import Harness
from harness.settings import Settings


def harness() -> Harness:
    """A harness on this test's own, empty data directory: the tables test heuristics, not what was learnt."""
    return Harness(Settings.from_env())


A, S, R, D, P = "automation", "security_audit", "research", "development", "project_management"
CUSTOM = "generate_custom"

TABLE = [
    # The seed's own examples.
    ("Implement secure user authentication system", P, CUSTOM, None),
    ("Research AI coding assistant market landscape", R, CUSTOM, None),
    ("Conduct comprehensive security audit of authentication system", S, "use_template", "security_audit"),
    ("Create REST API with Rust and PostgreSQL", D, CUSTOM, None),
    ("Build real-time collaborative editing system with conflict resolution", "custom", CUSTOM, None),
    (
        "Create automated blue-green deployment pipeline with rollback capabilities and comprehensive monitoring",
        "custom",
        CUSTOM,
        None,
    ),
    # Everyday automation.
    ("summarise every CSV in ./data by region", A, "use_template", "csv_summary"),
    ("group the expenses csv by category and sum the amounts", A, "use_template", "csv_summary"),
    ("total the sales spreadsheets per product", A, "use_template", "csv_summary"),
    ("find the most common errors in the application logs", A, "use_template", "log_analysis"),
    ("count log levels per hour in the nginx logs", A, "use_template", "log_analysis"),
    ("how many warnings per hour are in these log files?", A, "use_template", "log_analysis"),
    ("organise my downloads folder into folders by file extension", A, "use_template", "file_organiser"),
    ("copy the files into folders by extension", A, "use_template", "file_organiser"),
    ("sort these files by date into monthly folders", A, "use_template", "file_organiser"),
    ("create a sha256 checksum manifest for the release", A, "use_template", "checksum_manifest"),
    ("compute sha256 checksums of everything in the release folder", A, "use_template", "checksum_manifest"),
    ("verify the files against MANIFEST.sha256", A, "use_template", "checksum_manifest"),
    ("keep only paid orders from the json records and rename fields", A, "use_template", "json_transform"),
    ("convert the json lines records into a json array keeping id and name", A, "use_template", "json_transform"),
    ("find duplicate photos and keep one copy of each", A, "use_template", "dedupe_files"),
    ("zip up the project folder with a manifest", A, "use_template", "archive_builder"),
    ("make a tarball backup of my notes", A, "use_template", "archive_builder"),
    ("write a markdown report describing the columns of survey.csv", A, "use_template", "data_report"),
    # The four families' scaffolds.
    ("audit this repository for hard-coded secrets and unpinned dependencies", S, "use_template", "security_audit"),
    ("security review of the code for dangerous calls like eval and pickle", S, "use_template", "security_audit"),
    ("scan the source tree for leaked api keys and passwords", S, "use_template", "security_audit"),
    ("check requirements.txt for unpinned dependencies", S, "use_template", "security_audit"),
    ("research these papers and summarise the key themes", R, "use_template", "research_digest"),
    ("compare the documents in the corpus and extract key phrases", R, "use_template", "research_digest"),
    ("investigate the themes across these interview transcripts", R, "use_template", "research_digest"),
    ("study the documents and extract key phrases", R, "use_template", "research_digest"),
    ("create a new python package called inventory with a cli and unit tests", D, "use_template", "project_skeleton"),
    ("generate a python package skeleton named billing with tests", D, "use_template", "project_skeleton"),
    ("scaffold a new python cli project called notes", D, "use_template", "project_skeleton"),
    ("plan the project from the task list with milestones and the critical path", P, "use_template", "project_plan"),
    ("turn this spec into a phased schedule with dependencies and deliverables", P, "use_template", "project_plan"),
    ("turn the task list into milestones with a critical path", P, "use_template", "project_plan"),
    ("schedule these tasks into phases respecting dependencies", P, "use_template", "project_plan"),
    # Nothing here serves these.
    ("book me a flight to Lisbon next Tuesday", "custom", CUSTOM, None),
    ("write a haiku about autumn", "custom", CUSTOM, None),
    ("translate the user interface into Japanese", "custom", CUSTOM, None),
]


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("request_text", "workflow", "strategy", "template"), TABLE)
def test_workflow_type_and_decision(request_text: str, workflow: str, strategy: str, template: str | None) -> None:
    analysis, decision = harness().analyse(request_text)
    assert (analysis.workflow_type, decision.strategy, decision.template) == (workflow, strategy, template), (
        analysis.workflow_features
    )
