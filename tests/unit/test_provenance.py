"""Provenance: redaction of secrets, input hashing with caps, and the comparison a rerun makes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.provenance import (
    REDACTED,
    Provenance,
    check_inputs,
    looks_secret,
    record_inputs,
    redact_argv,
    redact_params,
)
from harness.report import Report


def test_env_values_are_never_kept_and_secret_looking_params_are_redacted() -> None:
    argv = [
        "harness", "exec", "s.py",
        "--env", "TOKEN=abc", "-e", "PLAIN=visible?", "--env=X=1",
        "--param", "group_by=region", "-p", "api_key=sk-123", "--param=db_password=hunter2",
    ]  # fmt: skip
    assert redact_argv(argv) == (
        "harness", "exec", "s.py",
        "--env", f"TOKEN={REDACTED}", "-e", f"PLAIN={REDACTED}", f"--env=X={REDACTED}",
        "--param", "group_by=region", "-p", f"api_key={REDACTED}", f"--param=db_password={REDACTED}",
    )  # fmt: skip
    assert "sk-123" not in json.dumps(redact_argv(argv)) and "hunter2" not in json.dumps(redact_argv(argv))
    assert redact_params({"group_by": "region", "Auth_Header": "x", "threshold": 3}) == {
        "group_by": "region",
        "Auth_Header": REDACTED,
        "threshold": 3,
    }
    assert looks_secret("GITHUB_TOKEN") and looks_secret("passphrase") and not looks_secret("region")


def test_inputs_are_hashed_files_and_folders_with_a_cap(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("a,b\n1,2\n")
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        (folder / "sub" / f"f{i}.txt").write_text(f"file {i}\n")
    (folder / "link").symlink_to(one)
    file_rec, folder_rec, missing = record_inputs([one, folder, tmp_path / "nope"], max_files=3)
    assert file_rec.kind == "file" and file_rec.size == 8
    assert file_rec.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert folder_rec.kind == "folder" and len(folder_rec.files) == 3 and folder_rec.not_hashed == 2
    assert folder_rec.skipped == 1  # the link is never followed
    assert folder_rec.files[0].path == "sub/f0.txt" and folder_rec.size == 5 * 7
    assert missing.kind == "missing" and missing.given == str(tmp_path / "nope")


def test_check_inputs_names_what_changed_and_what_is_gone(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("v1\n")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    (folder / "b.txt").write_text("b\n")
    before = record_inputs([one, folder])
    assert check_inputs(before) == ([], [])
    one.write_text("v2\n")
    (folder / "c.txt").write_text("new\n")
    gone, changed = check_inputs(before)
    assert gone == [] and len(changed) == 2
    assert changed[0].startswith(f"{one} changed since the run (sha256 ")
    assert "1 new file(s), e.g. c.txt" in changed[1]
    (folder / "b.txt").unlink()
    one.unlink()
    gone, _ = check_inputs(before)
    assert gone == [f"{one} ({one}) is gone", f"{folder}/b.txt is gone"]


def test_a_report_without_provenance_still_loads() -> None:
    old = {
        "schema_version": 1,
        "run_id": "0123456789ab",
        "created_at": "2026-01-01T00:00:00+00:00",
        "request": "summarise",
        "workflow_analysis": {
            "workflow_type": "automation",
            "confidence": 1.0,
            "features": [],
            "complexity": "simple",
            "complexity_features": [],
            "roles": [],
            "estimated_duration_s": 1.0,
            "estimated_tokens": 0,
            "estimate_basis": "prior",
        },
        "dispatch_decision": {
            "strategy": "use_template",
            "template": "t",
            "params": {},
            "confidence": 1,
            "reasoning": "",
        },
        "execution_result": {"status": "succeeded"},
        "performance_metrics": {"total_s": 1.0, "stages_s": {}, "estimated_duration_s": 1.0},
    }
    report = Report.model_validate(old)
    assert report.provenance is None and report.schema_version == 1
    made = Provenance(kind="exec", harness_version="0.1.0")
    assert Provenance.model_validate_json(made.model_dump_json()) == made


def test_a_file_past_the_cap_is_compared_by_size(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 100)
    (before,) = record_inputs([big], max_bytes=50)
    assert before.sha256 is None and before.not_hashed == 1 and before.size == 100
    assert check_inputs([before]) == ([], [])
    big.write_bytes(b"x" * 101)
    assert check_inputs([before]) == ([], [f"{big} changed since the run (size 100 → 101 bytes)"])
