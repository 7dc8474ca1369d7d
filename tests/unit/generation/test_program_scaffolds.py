"""Program scaffolds (promoted ones): the reviewed program kept verbatim, parameters at checked byte spans."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.generation.render import literal_differences, render, validate_params
from harness.generation.scaffolds import load_library, scaffolds_root

PROGRAM = b'# {%+ endraw %} is only text here\nLIMIT = 3\nLABEL = "x"\nprint(LABEL * LIMIT)\n'
LIMIT = (PROGRAM.index(b"3"), PROGRAM.index(b"3") + 1)
LABEL = (PROGRAM.index(b'"x"'), PROGRAM.index(b'"x"') + 3)


def meta(limit: tuple[int, int] = LIMIT, label: tuple[int, int] = LABEL, *, extra: str = "") -> str:
    """A scaffold.toml for PROGRAM with the given spans."""
    return f"""name = "tiny"
title = "Tiny"
description = "Prints a label."
workflow_type = "automation"
keywords = ["tiny"]
{extra}
[parameters.limit]
type = "int"
description = "how many"
default = 3
example = 3

[parameters.label]
type = "str"
description = "what"
default = "x"
example = "x"

[[substitutions]]
parameter = "limit"
constant = "LIMIT"
start = {limit[0]}
end = {limit[1]}

[[substitutions]]
parameter = "label"
constant = "LABEL"
start = {label[0]}
end = {label[1]}

[[examples]]
request = "print a label"
"""


def library_with(tmp_path: Path, toml: str, program: bytes = PROGRAM) -> Path:
    """A library root holding one program scaffold, ``tiny``."""
    folder = tmp_path / "lib" / "tiny"
    folder.mkdir(parents=True)
    (folder / "scaffold.toml").write_text(toml)
    (folder / "program.py").write_bytes(program)
    return tmp_path / "lib"


def test_a_program_scaffold_loads_and_renders_values_at_its_spans(tmp_path: Path) -> None:
    root = library_with(tmp_path, meta())
    library = load_library(root)
    assert library.errors == []
    scaffold = library.get("tiny")
    assert scaffold.kind == "program"
    assert scaffold.files == (root / "tiny" / "scaffold.toml", root / "tiny" / "program.py")
    digest = hashlib.sha256((root / "tiny" / "scaffold.toml").read_bytes() + PROGRAM).hexdigest()[:16]
    assert scaffold.version == digest
    assert render(scaffold, validate_params(scaffold, {})).encode() == PROGRAM
    values = validate_params(scaffold, {"limit": "12", "label": "'; import os #\n"})
    rendered = render(scaffold, values)
    assert rendered == PROGRAM.decode().replace("LIMIT = 3", "LIMIT = 12").replace(
        'LABEL = "x"', 'LABEL = "\'; import os #\\n"'
    )
    assert literal_differences(PROGRAM, rendered, scaffold.substitutions, values) == []


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        (meta(limit=(len(PROGRAM) + 1, len(PROGRAM) + 5)), "limit at bytes .* is not the value assigned to LIMIT"),
        (meta(limit=(LIMIT[0] - 1, LIMIT[1])), "limit at bytes .* is not the value assigned to LIMIT"),
        (meta(limit=LABEL, label=LIMIT), "is not the value assigned to"),
        (meta().replace("default = 3", "default = 4"), "limit at bytes .* is 3, its default is 4"),
        (meta().replace('default = "x"', "default = 1"), 'label at bytes .* is "x", its default is 1'),
        (meta(label=(LIMIT[0], LABEL[1])), "overlap|is not the value"),
        (meta().split("[[substitutions]]")[0] + "[[examples]]\nrequest = 'r'\n", "need exactly one per parameter"),
        (meta(extra='kind = "jinja"'), "kind: set by the loader"),
    ],
)
def test_a_program_and_metadata_that_disagree_do_not_load(tmp_path: Path, toml: str, error: str) -> None:
    library = load_library(library_with(tmp_path, toml))
    assert "tiny" not in library
    assert len(library.errors) == 1 and library.errors[0].startswith("tiny/scaffold.toml: ")
    assert re.search(error, library.errors[0]), library.errors[0]


def test_a_shifted_program_does_not_load(tmp_path: Path) -> None:
    # One byte added before the literals moves them: the recorded spans no longer fit.
    library = load_library(library_with(tmp_path, meta(), b"#" + PROGRAM))
    assert library.names() == [] and "is not the value assigned to LIMIT" in library.errors[0]


def test_a_program_scaffold_cannot_also_be_a_template(tmp_path: Path) -> None:
    root = library_with(tmp_path, meta())
    (root / "tiny" / "template.py.j2").write_text("print({{ params.limit|py }})\n")
    library = load_library(root)
    assert library.names() == [] and "both template.py.j2 and program.py" in library.errors[0]


def test_a_template_scaffold_cannot_name_substitutions(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    shutil.copytree(scaffolds_root() / "csv_summary", root / "csv_summary")
    toml = root / "csv_summary" / "scaffold.toml"
    toml.write_text(
        toml.read_text() + '\n[[substitutions]]\nparameter = "pattern"\nconstant = "PATTERN"\nstart = 0\nend = 1\n'
    )
    library = load_library(root)
    assert library.names() == [] and "only a promoted scaffold (program.py) has them" in library.errors[0]


def test_a_program_changed_after_loading_does_not_render(tmp_path: Path) -> None:
    root = library_with(tmp_path, meta())
    scaffold = load_library(root).get("tiny")
    (root / "tiny" / "program.py").write_bytes(PROGRAM.replace(b"LIMIT = 3", b"LIMIT=(3)"))
    with pytest.raises(ConfigError, match="no longer matches its recorded parameters"):
        render(scaffold, validate_params(scaffold, {"limit": "4"}))


def test_the_built_in_scaffolds_stay_templates() -> None:
    library = load_library()
    assert library.errors == [] and len(library) >= 12
    for scaffold in library.scaffolds:
        assert scaffold.kind == "jinja" and not scaffold.substitutions
        assert scaffold.files == (scaffold.folder / "scaffold.toml", scaffold.folder / "template.py.j2")
        assert not scaffold.provenance  # none in the repository was promoted
