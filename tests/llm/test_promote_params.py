"""Promotion with the LLM proposing parameters: validated, confirmed by a person, then reused offline."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.generation.scaffolds import load_library, scaffolds_root
from harness.review.store import GeneratedRecord, GeneratedStore
from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.llm

SCRIPT = """import os
import sys
from pathlib import Path

import harness_runtime as hr

PATTERN = "*.txt"
LIMIT = 10
HEADER = "files"
CHUNK = 65536


def main() -> int:
    root = Path(os.environ.get("HARNESS_INPUT", "/input"))
    out = Path(os.environ.get("HARNESS_OUTPUT", "/output"))
    with hr.phase("list"):
        names = sorted(p.name for p in root.rglob(PATTERN) if p.is_file())[:LIMIT]
        hr.progress(len(names), len(names), "listed")
    with hr.phase("write"):
        (out / "listing.txt").write_text("\\n".join([HEADER, *names]) + "\\n", encoding="utf-8")
        hr.artifact("listing.txt", "the names")
    return 0 if CHUNK else 1


if __name__ == "__main__":
    sys.exit(main())
"""

PROPOSAL = Reply.tool_use(
    "declare_parameters",
    {
        "parameters": [
            {"constant": "PATTERN", "name": "pattern", "description": "which files to list"},
            {"constant": "LIMIT", "name": "limit", "description": "most names to list"},
            {"constant": "HEADER", "name": "header", "description": "first line", "choices": ["files", "names"]},
            {"constant": "MISSING", "name": "missing", "description": "not in the script"},
            {"constant": "CHUNK", "name": "Chunk Size", "description": "bad name"},
            {"constant": "LIMIT", "name": "limit_again", "description": "twice"},
            {"name": "no_constant"},
        ]
    },
    usage={"input_tokens": 1500, "output_tokens": 120},
)


def test_llm_proposes_a_person_confirms_and_the_scaffold_is_reused(
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox_image: str,
    no_leftovers: None,
) -> None:
    library = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "csv_summary", library / "csv_summary")
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="list the text files", strategy="generate_custom", model="m"
    )
    store.save(record, SCRIPT)
    assert cli("review", "approve", record.id)[0] == 0

    with FakeAnthropic() as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        # Not confirmed (no terminal, no --yes): one clear line, nothing written.
        fake.add(PROPOSAL)
        code, _, err = cli("promote", record.id, "--name", "text_lister")
        assert code == 2 and "3 parameter(s) proposed and not confirmed" in err and "--yes" in err
        assert "dropped 'MISSING': no such constant" in err and "'Chunk Size' is not a usable" in err
        assert "dropped a second entry for LIMIT" in err and "malformed entry" in err
        assert not (library / "text_lister").exists()
        body = fake.requests[0].body
        assert body["tool_choice"] == {"type": "tool", "name": "declare_parameters"}
        assert '"PATTERN"' in body["messages"][0]["content"]

        fake.add(PROPOSAL)
        code, _, err = cli("promote", record.id, "--name", "text_lister", "--param", "nope")
        assert code == 2 and "'nope' is not a proposed parameter" in err

        fake.add(PROPOSAL)
        code, out, err = cli("promote", record.id, "--name", "text_lister", "--param", "LIMIT", "--param", "header")
        assert code == 0, err
        assert "parameters: limit, header" in err
    scaffold = load_library(library).get("text_lister")
    assert set(scaffold.parameters) == {"limit", "header"}
    assert scaffold.parameters["header"].type == "choice" and scaffold.parameters["header"].choices == (
        "files",
        "names",
    )
    assert scaffold.provenance["parameters"] == "LIMIT as limit (llm), HEADER as header (llm)"
    assert scaffold.provenance["sha256"] == store.load(record.id)[0].reviewed_sha256

    # Reused offline with a value the reviewed script never had.
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    shipment = tmp_path / "shipment"
    shipment.mkdir()
    for name in ("a.txt", "b.txt", "c.bin"):
        (shipment / name).write_text(name)
    out_dir = tmp_path / "out"
    code, out, err = cli(
        "run",
        "list the text files",
        "--template",
        "text_lister",
        "--param",
        "limit=1",
        "--param",
        "header=names",
        "--input",
        str(shipment),
        "--output",
        str(out_dir),
        "--json",
        "--yes",
    )
    assert code == 0, err
    assert json.loads(out)["dispatch_decision"]["params"] == {"limit": 1, "header": "names"}
    assert (out_dir / "listing.txt").read_text() == "names\na.txt\n"
    code, _, err = cli("run", "x", "--template", "text_lister", "--param", "header=other", "--json", "--yes")
    assert code == 2 and "must be one of files, names" in err


def test_without_an_llm_the_rule_proposes_and_yes_accepts(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    library = tmp_path / "scaffolds"
    library.mkdir()
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(id=store.new_id(), created_at=store.now(), request="list", strategy="hybrid", model="m")
    store.save(record, SCRIPT)
    assert cli("review", "approve", record.id)[0] == 0
    code, _, err = cli("promote", record.id, "--name", "lister", "--yes")
    assert code == 0, err
    assert set(load_library(library).get("lister").parameters) == {"pattern", "limit", "header", "chunk"}
    record2 = GeneratedRecord(id=store.new_id(), created_at=store.now(), request="list", strategy="hybrid", model="m")
    store.save(record2, SCRIPT)
    assert cli("review", "approve", record2.id)[0] == 0
    code, _, err = cli("promote", record2.id, "--name", "fixed_lister", "--no-params")
    assert code == 0 and "no parameters" in err
    assert load_library(library).get("fixed_lister").parameters == {}
