"""The full cycle: generate with the (fake) LLM, review, approve, promote, and reuse with no LLM."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.llm

SCRIPT = """import os
import sys
from pathlib import Path

import harness_runtime as hr


def main() -> int:
    out = Path(os.environ.get("HARNESS_OUTPUT", "/output"))
    with hr.phase("count"):
        names = sorted(p.name for p in Path(os.environ.get("HARNESS_INPUT", "/input")).rglob("*") if p.is_file())
        hr.progress(len(names), len(names), "counted")
    with hr.phase("write"):
        (out / "inventory.txt").write_text("\\n".join(names) + "\\n", encoding="utf-8")
        hr.artifact("inventory.txt", "file names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""
REQUEST = "make an inventory listing of every file name in the shipment folder"


def test_generate_review_approve_promote_reuse(
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox_image: str,
    no_leftovers: None,
) -> None:
    library = tmp_path / "scaffolds"
    library.mkdir()
    from harness.generation.scaffolds import scaffolds_root

    for name in ("csv_summary", "log_analysis", "archive_builder"):
        __import__("shutil").copytree(scaffolds_root() / name, library / name)
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    shipment = tmp_path / "shipment"
    shipment.mkdir()
    (shipment / "a.txt").write_text("a")
    (shipment / "b.bin").write_bytes(b"b")

    with FakeAnthropic([Reply.tool_use("write_script", {"code": SCRIPT, "explanation": "lists file names"})]) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        code, out, err = cli(
            "run", REQUEST, "--strategy", "generate_custom", "--input", str(shipment), "--json", "--yes"
        )
        assert code == 0, err
        record_id = json.loads(out)["generation"]["id"]
        assert len(fake.requests) == 1

    # Review: pending, shown, approved once.
    code, out, _ = cli("review", "list", "--json")
    assert [(r["id"], r["status"]) for r in json.loads(out)] == [(record_id, "pending_review")]
    code, out, _ = cli("review", "show", record_id)
    assert code == 0 and "inventory.txt" in out and "attempt 1 (generate): gate passed" in out
    assert cli("promote", record_id, "--name", "shipment_inventory")[0] == 2  # not approved yet
    assert cli("review", "approve", record_id, "--note", "reads input, writes one file")[0] == 0
    code, _, err = cli("review", "approve", record_id)
    assert code == 2 and "is approved; it cannot become approved" in err

    # The reviewed bytes, and only those, may run with more than the default limits.
    folder = Path(os.environ["HARNESS_GENERATED_DIR"]) / record_id
    assert cli("exec", "--generated", record_id, "--memory", "1g", "--input", str(shipment))[0] == 0
    original = (folder / "script.py").read_text()
    (folder / "script.py").write_text(original + "\n# edited after review\n")
    code, _, err = cli("exec", "--generated", record_id)
    assert code == 1 and "changed after it was approved" in err
    assert cli("promote", record_id, "--name", "shipment_inventory")[0] == 1
    (folder / "script.py").write_text(original)

    # Promotion: a name clash is refused; then the scaffold exists with its provenance.
    assert cli("promote", record_id, "--name", "csv_summary")[0] == 2
    code, out, err = cli("promote", record_id, "--name", "shipment_inventory", "--reviewer", "ada")
    assert code == 0, err
    meta = (library / "shipment_inventory" / "scaffold.toml").read_text()
    assert f'generated_id = "{record_id}"' in meta and "sha256" in meta and 'promoted_by = "ada"' in meta
    from harness.review.store import GeneratedStore
    from harness.settings import Settings

    audit = GeneratedStore.from_settings(Settings.from_env()).audit_entries()
    assert [(e["action"], e["promoted_as"]) for e in audit] == [("approved", None), ("promoted", "shipment_inventory")]

    # Reuse: the same kind of request is now served by the scaffold, offline, with no LLM call.
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    out_dir = tmp_path / "out"
    code, out, err = cli(
        "run",
        "inventory listing of file names in the shipment folder",
        "--input",
        str(shipment),
        "--output",
        str(out_dir),
        "--json",
        "--yes",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["dispatch_decision"]["strategy"] == "use_template"
    assert report["dispatch_decision"]["template"] == "shipment_inventory"
    assert (out_dir / "inventory.txt").read_text() == "a.txt\nb.bin\n"
    assert cli("review", "reject", record_id, "--reason", "too late")[0] == 2  # promoted is final
