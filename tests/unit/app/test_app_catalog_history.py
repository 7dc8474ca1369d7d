"""app.catalog and app.history: typed models in the shapes `templates`, `history` and `stats` --json always printed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.app.catalog import list_scaffolds, show_scaffold
from harness.app.history import get_report, list_plans, list_runs, stats
from harness.cli import main
from harness.errors import NotFound
from harness.services import Services
from harness.settings import Settings


def _services() -> Services:
    return Services(Settings.from_env())


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_scaffold_is_listed_with_its_egress_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    with _services() as services:
        catalog = list_scaffolds(services)
        names = [s.name for s in catalog.scaffolds]
        assert names == [s.name for s in services.library.scaffolds] and catalog.errors == ()
        shown = show_scaffold(services, names[0])
        with pytest.raises(NotFound):
            show_scaffold(services, "no_such_scaffold")
    assert shown == catalog.scaffolds[0]
    assert shown.egress_in_force == () and shown.egress_withheld is None
    dumped = shown.model_dump(mode="json")
    # Unset optional fields stay out of the JSON, as scaffold.toml leaves them out.
    assert all(None not in p.values() for p in dumped["parameters"].values())
    assert _cli_json(capsys, "templates", "show", names[0]) == dumped
    assert _cli_json(capsys, "templates", "list") == [s.model_dump(mode="json") for s in catalog.scaffolds]


def _fill(services: Services) -> None:
    history = services.history
    for n, (status, template) in enumerate([("succeeded", "csv_summary"), ("failed", None), ("succeeded", None)]):
        history.started(
            f"r{n}",
            "summarise the sales",
            workflow_type="automation",
            strategy="use_template" if template else "generate_custom",
            template=template,
            estimated_duration_s=2.0,
            analysis=json.dumps({"workflow_type": "automation"}),
            decision="not json" if n == 1 else json.dumps({"strategy": "use_template"}),
            plan_id="plan-1" if n == 2 else None,
            phase="write" if n == 2 else None,
        )
        history.finished(f"r{n}", status, exit_code=0, duration_s=1.0 + n, tokens_used=10 * n)
    history.plan_started("plan-1", "two jobs", phases=1, stages=1, estimated_s=3.0)
    history.plan_finished("plan-1", "succeeded", wall_s=3.5, partial=0, tokens_used=20)


def test_history_rows_keep_the_store_shape_with_parsed_json(capsys: pytest.CaptureFixture[str]) -> None:
    with _services() as services:
        _fill(services)
        rows = list_runs(services, 10)
        raw = services.history.recent(10)
        plans = list_plans(services)
        found = stats(services)
        raw_stats, raw_plans = services.history.stats(), services.history.plans()
    assert [r.run_id for r in rows] == ["r2", "r1", "r0"]
    dumped = [r.model_dump(mode="json") for r in rows]
    assert [list(d) for d in dumped] == [list(r) for r in raw]  # same keys, same order
    assert rows[0].analysis == {"workflow_type": "automation"} and rows[1].decision is None
    assert _cli_json(capsys, "history") == dumped
    assert [p.model_dump(mode="json") for p in plans] == json.loads(json.dumps(raw_plans))
    assert plans[0].runs[0].run_id == "r2"
    assert _cli_json(capsys, "history", "--plans") == [p.model_dump(mode="json") for p in plans]
    assert found.model_dump(mode="json") == json.loads(json.dumps(raw_stats))
    assert {s.template for s in found.by_template} == {"csv_summary", "(none)"}
    assert _cli_json(capsys, "stats") == found.model_dump(mode="json")


def test_a_report_is_loaded_by_run_id() -> None:
    from harness.pipeline import Harness
    from harness.testing import Outcome, ScriptedBackend

    backend = ScriptedBackend([Outcome(outputs={"summary.json": b"{}", "summary.md": b"x"})])
    with Services.from_settings(Settings.from_env(), backend=backend) as services:
        harness = Harness(services=services)
        prepared = harness.prepare("summarise every CSV in ./data by region", template="csv_summary")
        report = harness.execute(prepared)
        assert get_report(services, report.run_id) == report
        with pytest.raises(NotFound):
            get_report(services, "0123456789ab")
        services.runs.create("abcdefabcdef")
        with pytest.raises(NotFound, match="has no report"):
            get_report(services, "abcdefabcdef")
