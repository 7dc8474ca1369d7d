"""Every scaffold's examples run in a real container on their fixture data and produce what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.assertions import check_outputs
from harness.execution.docker import DockerBackend
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import load_library
from harness.records import RunSpec

LIBRARY = load_library()
CASES = [(s.name, i) for s in LIBRARY.scaffolds for i in range(len(s.examples))]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_scaffold_example_runs_in_the_sandbox(backend: DockerBackend, tmp_path: Path, name: str, index: int) -> None:
    scaffold = LIBRARY.get(name)
    example = scaffold.examples[index]
    script = render(scaffold, validate_params(scaffold, example.params))
    inputs = (scaffold.folder / example.input,) if example.input else ()
    phases: list[str] = []
    result = backend.run(
        RunSpec(script=script, inputs=inputs, output_dir=tmp_path),
        on_event=lambda e: phases.append(e.name) if e.kind == "phase" and e.status == "end" else None,  # type: ignore[union-attr]
    )
    assert result.exit_code == example.expect.exit_code, (result.message, result.stderr_tail)
    assert len(phases) >= 2, "scaffolds report their phases"
    for relative in example.expect.files:
        assert (tmp_path / relative).is_file(), f"{relative} missing; got {[a.path for a in result.artifacts]}"
    for relative, needles in example.expect.contains.items():
        text = (tmp_path / relative).read_text(encoding="utf-8")
        for needle in needles:
            assert needle in text, f"{needle!r} not in {relative}"
    if result.exit_code == 0:
        outcomes = check_outputs(scaffold.assertions, tmp_path, validate_params(scaffold, example.params))
        assert outcomes and all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]
