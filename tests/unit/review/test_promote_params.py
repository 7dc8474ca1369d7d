"""Parameters at promotion: the script's constants proposed, confirmed, and recorded without changing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.errors import Tampered
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import load_library
from harness.review.params import constants, propose, substitutions
from harness.review.promote import promote, promoted_files
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


def test_constants_record_the_byte_span_of_their_literal() -> None:
    data = SCRIPT.encode("utf-8")
    for found in constants(SCRIPT).values():
        # The spans are bytes of the UTF-8 text: the non-ASCII docstring above them shifts them.
        assert ast.literal_eval(data[found.start : found.end].decode("utf-8")) == found.value
    located = {s.parameter: s for s in substitutions(SCRIPT, propose(SCRIPT))}
    assert data[located["top"].start : located["top"].end] == b"5"
    assert data[located["pattern"].start : located["pattern"].end] == b'"**/*.txt"'
    assert located["skip"].constant == "SKIP"


def test_the_reviewed_program_is_kept_verbatim_and_the_defaults_render_it(tmp_path: Path) -> None:
    store, record_id = approved(tmp_path, SCRIPT)
    folder = promote(
        store, record_id, "file_counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(SCRIPT)
    )
    assert sorted(p.name for p in folder.iterdir()) == ["program.py", "scaffold.toml"]
    assert promoted_files(folder) == (folder / "scaffold.toml", folder / "program.py")
    assert (folder / "program.py").read_bytes() == SCRIPT.encode("utf-8")
    scaffold = load_library(tmp_path / "lib").get("file_counter")
    assert scaffold.kind == "program" and scaffold.files == promoted_files(folder)
    assert set(scaffold.parameters) == {"pattern", "ratio", "skip", "top", "verbose"}
    assert scaffold.parameters["top"].default == 5 and not scaffold.parameters["top"].required
    assert render(scaffold, validate_params(scaffold, {})) == SCRIPT
    changed = render(scaffold, validate_params(scaffold, {"top": "2", "pattern": "*.md", "verbose": "yes"}))
    expected = (
        SCRIPT.replace('PATTERN = "**/*.txt"', "PATTERN = '*.md'")
        .replace("TOP = 5  #", "TOP = 2  #")
        .replace("VERBOSE = False", "VERBOSE = True")
    )
    assert changed == expected
    meta = (folder / "scaffold.toml").read_text()
    assert 'parameters = "PATTERN as pattern (rule)' in meta and "[[substitutions]]" in meta


def test_windows_line_ends_are_kept_byte_for_byte(tmp_path: Path) -> None:
    script = SCRIPT.replace("\n", "\r\n")
    store, record_id = approved(tmp_path, script)
    folder = promote(
        store, record_id, "crlf", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(script)
    )
    assert (folder / "program.py").read_bytes() == script.encode("utf-8")
    scaffold = load_library(tmp_path / "lib").get("crlf")
    rendered = render(scaffold, validate_params(scaffold, {"top": "12"}))
    assert rendered == script.replace("TOP = 5  #", "TOP = 12  #")


def test_hostile_values_stay_literals(tmp_path: Path) -> None:
    store, record_id = approved(tmp_path, SCRIPT)
    promote(store, record_id, "file_counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(SCRIPT))
    scaffold = load_library(tmp_path / "lib").get("file_counter")
    hostile = '"; import os; os.system("id") #'
    rendered = render(scaffold, validate_params(scaffold, {"pattern": hostile}))
    assert ast.literal_eval(rendered.split("PATTERN = ", 1)[1].splitlines()[0]) == hostile


@pytest.mark.parametrize(
    ("script", "values", "expected"),
    [
        # A lone carriage return ends a line for the parser (and for the byte offsets).
        ('A = "é"\rX = 5\rprint(A, X)\r', {"x": "6"}, 'A = "é"\rX = 6\rprint(A, X)\r'),
        # A form feed does not (str.splitlines would have counted it).
        ("# \x0c note\nX = 5\nprint(X)\n", {"x": "7"}, "# \x0c note\nX = 7\nprint(X)\n"),
        # A literal over several lines, and two statements on one line.
        (
            'X = [\n  "a",  # c\n]\nS = "☃"; N = 7  # n\nprint(X, S, N)\n',
            {"x": "b,c", "n": "8"},
            "X = ['b', 'c']\nS = \"☃\"; N = 8  # n\nprint(X, S, N)\n",
        ),
    ],
)
def test_odd_layouts_keep_every_other_byte(tmp_path: Path, script: str, values: dict[str, str], expected: str) -> None:
    store, record_id = approved(tmp_path, script)
    chosen = [p for p in propose(script) if p.name in values]
    promote(store, record_id, "odd", library_root=tmp_path / "lib", reviewer="ada", parameters=chosen)
    scaffold = load_library(tmp_path / "lib").get("odd")
    assert render(scaffold, validate_params(scaffold, {})) == script
    assert render(scaffold, validate_params(scaffold, values)) == expected


def test_template_syntax_in_the_script_is_just_text(tmp_path: Path) -> None:
    # Once refused (a raw-block end would have closed the template's raw block); now the program
    # is never a template, so it is kept and rendered as it is.
    script = 'X = 1\nprint("{%- endraw %}{{ params.x }}{% raw %}")\n'
    store, record_id = approved(tmp_path, script)
    promote(store, record_id, "raw_end", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(script))
    scaffold = load_library(tmp_path / "lib").get("raw_end")
    assert render(scaffold, validate_params(scaffold, {"x": "2"})) == script.replace("X = 1", "X = 2")


def test_a_script_changed_after_approval_is_not_promoted(tmp_path: Path) -> None:
    store, record_id = approved(tmp_path, SCRIPT)
    (store.folder(record_id) / "script.py").write_text(SCRIPT + "import os\n")
    with pytest.raises(Tampered, match="changed after it was approved"):
        promote(store, record_id, "changed", library_root=tmp_path / "lib", reviewer="ada")
    assert not (tmp_path / "lib" / "changed").exists()


def approved(tmp_path: Path, script: str) -> tuple[GeneratedStore, str]:
    store = GeneratedStore(tmp_path / "generated", tmp_path / "data")
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="count the text files", strategy="generate_custom", model="m"
    )
    store.save(record, script)
    store.transition(record.id, "approved", reviewer="ada")
    (tmp_path / "lib").mkdir(exist_ok=True)
    return store, record.id
