"""Parameters at promotion: the script's constants proposed, confirmed, and templated without changing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.errors import RunError
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import load_library
from harness.review.params import constants, parameterise, propose
from harness.review.promote import promote
from harness.review.store import GeneratedRecord, GeneratedStore

SCRIPT = '''"""Counts files — déjà vu: non-ASCII before the constants moves every byte offset."""
import sys
from pathlib import Path

# glob of the files to count
PATTERN = "**/*.txt"
TOP = 5  # how many names to list
RATIO: float = 0.5
VERBOSE = False
SKIP = ["a", "b"]
PAIR = ("a", "b")  # a tuple would come back a list: left alone
retries = 3
CHANGED = 1
CHANGED = 2
MIXED = [1, "x"]
PATHS = Path("/input")
A, B = 1, 2


def main() -> int:
    LOCAL = 7
    names = sorted(str(p) for p in Path("/input").glob(PATTERN))[:TOP]
    print(len(names), RATIO, VERBOSE, SKIP, PAIR, retries, LOCAL, CHANGED, MIXED, PATHS, A, B)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def test_only_module_level_literals_assigned_once_are_constants() -> None:
    found = constants(SCRIPT)
    assert sorted(found) == ["PATTERN", "RATIO", "SKIP", "TOP", "VERBOSE", "retries"]
    assert found["SKIP"].value == ["a", "b"] and found["SKIP"].kind == "list[str]"
    assert found["RATIO"].kind == "float" and found["VERBOSE"].kind == "bool"
    assert found["PATTERN"].comment == "glob of the files to count"
    assert found["TOP"].comment == "how many names to list"


def test_the_rule_proposes_upper_case_constants_with_their_comments() -> None:
    proposals = {p.name: p for p in propose(SCRIPT)}
    assert sorted(proposals) == ["pattern", "ratio", "skip", "top", "verbose"]  # `retries` is not UPPER_CASE
    assert proposals["top"].type == "int" and proposals["top"].default == 5
    assert proposals["top"].description == "how many names to list"
    assert proposals["verbose"].description == "VERBOSE in the reviewed script"


def test_template_with_defaults_is_the_reviewed_program(tmp_path: Path) -> None:
    template = parameterise(SCRIPT, propose(SCRIPT))
    assert "{{ params.top|py }}" in template and "{{ params.pattern|py }}" in template
    assert "déjà vu" in template
    store, record_id = approved(tmp_path, SCRIPT)
    folder = promote(
        store, record_id, "file_counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(SCRIPT)
    )
    scaffold = load_library(tmp_path / "lib").get("file_counter")
    assert set(scaffold.parameters) == {"pattern", "ratio", "skip", "top", "verbose"}
    assert scaffold.parameters["top"].default == 5 and not scaffold.parameters["top"].required
    defaults = render(scaffold, validate_params(scaffold, {}))
    assert ast.dump(ast.parse(defaults)) == ast.dump(ast.parse(SCRIPT))
    changed = render(scaffold, validate_params(scaffold, {"top": "2", "pattern": "*.md", "verbose": "yes"}))
    assert "TOP = 2  # how many names to list" in changed and "PATTERN = '*.md'" in changed
    assert "VERBOSE = True" in changed and "LOCAL = 7" in changed
    assert 'parameters = "PATTERN as pattern (rule)' in (folder / "scaffold.toml").read_text()


def test_hostile_values_stay_literals(tmp_path: Path) -> None:
    store, record_id = approved(tmp_path, SCRIPT)
    promote(store, record_id, "file_counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(SCRIPT))
    scaffold = load_library(tmp_path / "lib").get("file_counter")
    hostile = '"; import os; os.system("id") #'
    rendered = render(scaffold, validate_params(scaffold, {"pattern": hostile}))
    assert ast.literal_eval(rendered.split("PATTERN = ", 1)[1].splitlines()[0]) == hostile


def test_a_jinja_raw_end_in_the_script_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    script = 'X = 1\nprint("{%- endraw %}")\n'
    store, record_id = approved(tmp_path, script)
    with pytest.raises(RunError, match="raw-block end"):
        promote(store, record_id, "raw_end", library_root=tmp_path / "lib", reviewer="ada")
    assert not (tmp_path / "lib" / "raw_end").exists()


def approved(tmp_path: Path, script: str) -> tuple[GeneratedStore, str]:
    store = GeneratedStore(tmp_path / "generated", tmp_path / "data")
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="count the text files", strategy="generate_custom", model="m"
    )
    store.save(record, script)
    store.transition(record.id, "approved", reviewer="ada")
    (tmp_path / "lib").mkdir(exist_ok=True)
    return store, record.id
