"""Structured errors and missing inputs, worded by the CLI exactly as the library once worded them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.app.scripts import ScriptRun, exec_script
from harness.cli import main
from harness.cli.hints import error_line, missing_text
from harness.errors import ConfigError, Fix, InputError, MissingInputs, NotReviewed
from harness.records import MissingInput
from harness.review.store import GeneratedRecord
from harness.services import Services
from harness.settings import Settings
from harness.testing import ScriptedBackend


def test_each_missing_kind_has_its_flag() -> None:
    param = MissingInput(name="group_by", type="str", example="region", description="column to group by")
    assert missing_text(param) == "--param group_by=<str> (e.g. 'region'): column to group by"
    assert param.summary() == "parameter group_by (str, e.g. 'region'): column to group by"
    assert "--" not in param.summary()  # the library's own words name no front-end's flags
    template = MissingInput(kind="template", name="template", strategy="hybrid")
    assert missing_text(template) == "a scaffold for --strategy hybrid: pass --template NAME"
    llm = MissingInput(kind="llm", name="llm", strategy="generate_custom")
    assert missing_text(llm) == "an LLM for --strategy generate_custom: export ANTHROPIC_API_KEY=sk-ant-..."
    either = MissingInput(kind="template_or_llm", name="template_or_llm")
    assert missing_text(either).startswith("a scaffold: pass --template NAME (see `harness templates list`)")


def test_missing_inputs_carry_the_first_name_and_a_fix() -> None:
    exc = MissingInputs("cannot run", missing=(MissingInput(name="group_by", type="str"),))
    assert exc.name == "group_by" and exc.fix == Fix("give_input", "group_by")
    assert error_line(exc) == "cannot run this request yet: missing --param group_by=<str>: "


def test_a_review_fix_is_worded_as_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with Services.from_settings(Settings.from_env(), backend=ScriptedBackend([])) as services:
        store = services.generated
        record = GeneratedRecord(id=store.new_id(), created_at=store.now(), request="r", strategy="s", model="m")
        store.save(record, "print(1)\n")
        with pytest.raises(NotReviewed) as caught:
            exec_script(services, ScriptRun(generated_id=record.id, allow_hosts=("example.com",)))
    exc = caught.value
    assert exc.fix == Fix("approve_egress", record.id, ("example.com",))
    assert "harness" not in exc.hint
    assert error_line(exc) == (
        f"{record.id} is pending_review: an unreviewed script gets no network: approve it with the egress it "
        f"needs: harness review approve {record.id} --allow-host example.com"
    )
    assert main(["exec", "--generated", record.id, "--allow-host", "example.com"]) == 2
    assert capsys.readouterr().err.replace("\n", "") == f"Error: {error_line(exc)}"


def test_inputs_the_use_cases_ask_for_are_worded_as_flags(tmp_path: Path) -> None:
    from harness.app import review

    with Services.from_settings(Settings.from_env(), backend=ScriptedBackend([])) as services:
        with pytest.raises(InputError) as missing_input:
            exec_script(services, ScriptRun(source="print(1)\n", inputs=(tmp_path / "nope",)))
        with pytest.raises(InputError) as no_script:
            exec_script(services, ScriptRun())
        with pytest.raises(ConfigError) as no_host:
            review.grant(services, "g-0123456789ab", [], reviewer="ann")
    assert "--" not in missing_input.value.hint + no_script.value.hint + no_host.value.hint
    assert (
        error_line(missing_input.value)
        == f"input path {tmp_path / 'nope'} does not exist: check the path given with --input"
    )
    assert error_line(no_script.value) == "no script given: give the path of a Python file, or --generated ID"
    assert error_line(no_host.value) == "no host given: pass --allow-host HOST, or --replace alone to revoke the grant"
