"""Services: the composition root builds each resource once, on first use, and closes what it made."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.generation.scaffolds import load_library, scaffolds_root
from harness.pipeline import Harness
from harness.services import Services
from harness.settings import Settings
from harness.testing import Outcome, ScriptedBackend

SUMMARY = {"group_by": "region", "files": ["a.csv"], "rows": 1, "groups": {"north": {}}}
OUTPUTS = {"summary.json": json.dumps(SUMMARY).encode(), "summary.md": b"| north |\n"}


def _library(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "lib" / "scaffolds"
    root.mkdir(parents=True)
    for name in names:
        shutil.copytree(scaffolds_root() / name, root / name)
    return root


def test_resources_are_built_once_and_the_backend_only_when_asked(tmp_path: Path) -> None:
    made: list[ScriptedBackend] = []

    def factory(settings: Settings) -> ScriptedBackend:
        made.append(ScriptedBackend([]))
        return made[-1]

    with Services(Settings.from_env(), backend_factory=factory) as services:
        assert services.library is services.library
        assert "csv_summary" in services.library
        assert services.roles is services.roles and services.roles
        assert services.history is services.history
        assert services.generated is services.generated
        assert services.runs.root == services.settings.runs_dir
        assert made == []  # nothing above needs an engine
        assert services.backend is services.backend
        assert len(made) == 1 and not made[0].closed
    assert made[0].closed
    with pytest.raises(RuntimeError, match="closed"):
        _ = services.backend


def test_a_given_backend_is_the_callers_to_close() -> None:
    backend = ScriptedBackend([])
    with Services.from_settings(Settings.from_env(), backend=backend) as services:
        assert services.backend is backend
    assert not backend.closed


def test_the_library_and_roles_come_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _library(tmp_path, "csv_summary")
    roles = tmp_path / "roles.toml"
    roles.write_text('[tester]\nsystem = "You test."\n')
    monkeypatch.setenv("HARNESS_SCAFFOLDS_DIR", str(root))
    monkeypatch.setenv("HARNESS_ROLES_FILE", str(roles))
    monkeypatch.delenv("HARNESS_GENERATED_DIR")
    settings = Settings.from_env()
    assert settings.scaffolds_dir == root
    assert settings.generated_dir == root.parent / "generated"  # beside the library, as before
    services = Services.from_settings(settings)
    assert [s.name for s in services.library.scaffolds] == ["csv_summary"]
    assert list(services.roles) == ["tester"]
    # An injected environment is the whole environment: os.environ's library is not read.
    assert Settings.from_env(environ={}).scaffolds_dir == scaffolds_root(environ={})
    assert Settings.from_env(environ={}, scaffolds_dir=str(root)).scaffolds_dir == root


def test_harness_runs_on_given_services_and_keeps_their_backend_open(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda spec: Outcome(outputs=OUTPUTS))
    settings = Settings.from_env(scaffolds_dir=str(_library(tmp_path, "csv_summary")))
    data = tmp_path / "a.csv"
    data.write_text("region\nnorth\n")
    with Services.from_settings(settings, backend=backend) as services:
        harness = Harness(services=services)
        assert harness.settings is settings and harness.history is services.history
        assert [s.name for s in harness.library.scaffolds] == ["csv_summary"]
        for _ in range(2):
            report = harness.run_request(
                "summarise every CSV by region", template="csv_summary", params={"group_by": "region"}, inputs=[data]
            )
            assert report.execution_result.status == "succeeded", report.execution_result.message
            assert (services.runs.root / report.run_id / "report.json").is_file()
        assert len(backend.specs) == 2 and not backend.closed
        assert [row["status"] for row in services.history.recent()] == ["succeeded", "succeeded"]


def test_the_old_constructor_still_builds_its_own_services(tmp_path: Path) -> None:
    library = load_library(_library(tmp_path, "csv_summary"))
    made: list[ScriptedBackend] = []

    def factory(settings: Settings) -> ScriptedBackend:
        made.append(ScriptedBackend([Outcome(outputs=OUTPUTS)]))
        return made[-1]

    harness = Harness(Settings.from_env(), library=library, backend_factory=factory)
    assert harness.library is library and harness.services.library is library
    report = harness.run_request("summarise by region", template="csv_summary", params={"group_by": "region"})
    assert report.execution_result.status == "succeeded"
    assert len(made) == 1 and made[0].closed  # one backend per execute, closed after it, as before
    with pytest.raises(TypeError):
        Harness(Settings.from_env(), services=harness.services)


def test_a_scaffold_promoted_by_another_process_is_seen_without_a_restart(tmp_path: Path) -> None:

    root = Path(__file__).resolve().parents[2] / "scaffolds"
    library = tmp_path / "scaffolds"
    library.mkdir()
    shutil.copytree(root / "csv_summary", library / "csv_summary")
    with Services(Settings.from_env(environ={"HARNESS_SCAFFOLDS_DIR": str(library)})) as services:
        first = services.library
        assert "csv_summary" in first and "log_analysis" not in first
        assert services.library is first  # unchanged folder: the same library, not read again
        shutil.copytree(root / "log_analysis", library / "log_analysis")  # what a promotion does
        assert "log_analysis" in services.library
