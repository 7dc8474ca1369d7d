"""Issue 9, item 3, end to end: a promoted script's comments cannot hide code that runs for another value.

On main, a comment holding ``{%+ endraw %}`` closed the template's raw block, and template
logic after it emitted the commented-out line as code whenever the parameter was not its
default. Here the same approved script is promoted and run in the sandbox with another
value: the run sees the new value and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.review.store import GeneratedRecord, GeneratedStore

SCRIPT = """import harness_runtime as hr

X = 5  # how many
hr.result({"x": X})
print("x is", X)
# {%+ endraw %}{% if params.x != 5 %}{% filter replace("#~", "") %}
#~hr.result({"pwned": True})
# {% endfilter %}{% endif %}{% raw %}
"""


@pytest.mark.integration
def test_a_promoted_scaffold_runs_only_its_reviewed_code(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_image: str
) -> None:
    library = tmp_path / "scaffolds"
    library.mkdir()
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="print how many", strategy="generate_custom", model="m"
    )
    store.save(record, SCRIPT)
    assert cli("review", "approve", record.id)[0] == 0
    code, _, err = cli("promote", record.id, "--name", "counter", "--yes")
    assert code == 0, err
    assert (library / "counter" / "program.py").read_text() == SCRIPT
    code, out, err = cli("run", "print how many", "--template", "counter", "--param", "x=6", "--json", "--yes")
    assert code == 0, err
    report = json.loads(out)
    # The payload would have sent the last result; the script run is the reviewed one but for X.
    assert report["execution_result"]["result"] == {"x": 6}
    assert Path(report["script_path"]).read_text() == SCRIPT.replace("X = 5  #", "X = 6  #")
