"""daemon.json merging for ``harness sandbox setup-runtime``: one key added, everything else kept, a backup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, EngineRefused
from harness.execution.engine_setup import RUNSC, daemon_config_path, merge_runtime, setup_runtime, write_merged

NOW = datetime(2026, 12, 3, 16, 0, 0, tzinfo=UTC)


def test_no_file_gets_just_the_runtime(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    changed, backup, _ = write_merged(path, RUNSC, now=NOW)
    assert changed and backup is None
    assert json.loads(path.read_text()) == {
        "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}
    }
    assert path.stat().st_mode & 0o777 == 0o644


def test_other_keys_and_runtimes_are_kept_and_a_backup_is_written(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    old = {
        "log-driver": "journald",
        "runtimes": {"kata": {"path": "/opt/kata/bin/kata-runtime"}},
        "registry-mirrors": ["https://mirror.example"],
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
    }
    original = json.dumps(old)
    path.write_text(original)
    path.chmod(0o600)
    changed, backup, note = write_merged(path, RUNSC, now=NOW)
    assert changed and "registered runsc" in note
    assert backup == tmp_path / "daemon.json.20261203T160000Z.bak"
    assert backup.read_text() == original
    new = json.loads(path.read_text())
    assert list(new) == list(old)  # same keys in the same order
    assert {k: v for k, v in new.items() if k != "runtimes"} == {k: v for k, v in old.items() if k != "runtimes"}
    assert new["runtimes"]["kata"] == old["runtimes"]["kata"]
    assert new["runtimes"]["runsc"] == RUNSC.as_json()
    assert path.stat().st_mode & 0o777 == 0o600  # the old file's mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json", "daemon.json.20261203T160000Z.bak"]


def test_running_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    write_merged(path, RUNSC, now=NOW)
    before = path.read_bytes()
    changed, backup, note = write_merged(path, RUNSC, now=NOW)
    assert (changed, backup) == (False, None)
    assert "already registered" in note
    assert path.read_bytes() == before


def test_an_existing_runsc_entry_is_kept_as_it_is() -> None:
    text = json.dumps({"runtimes": {"runsc": {"path": "/usr/local/bin/runsc"}}})
    merged, note = merge_runtime(text, RUNSC)
    assert merged is None and "kept as it is" in note


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"runtimes": []}', '{"runtimes": "runsc"}', '{"a": 1,}'])
def test_a_file_that_is_not_a_json_object_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="left as it is"):
        write_merged(path, RUNSC, now=NOW)
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]


def test_empty_file_is_an_empty_object() -> None:
    merged, _ = merge_runtime("  \n", RUNSC)
    assert merged is not None and json.loads(merged) == {"runtimes": {"runsc": RUNSC.as_json()}}


def test_daemon_config_path_follows_the_config_file_flag() -> None:
    assert daemon_config_path(["dockerd"]) == Path("/etc/docker/daemon.json")
    assert daemon_config_path(["dockerd", "--config-file", "/srv/d.json"]) == Path("/srv/d.json")
    assert daemon_config_path(["dockerd", "--debug", "--config-file=/srv/e.json"]) == Path("/srv/e.json")


class _Engine:
    """An engine stand-in whose runtime list changes when it is reloaded."""

    def __init__(self, config: Path, *, reads_config: bool = True) -> None:
        self.config = config
        self.reads_config = reads_config
        self.listed: dict[str, Any] = {"runc": {"path": "runc"}}
        self.reloads = 0

    def info(self) -> dict[str, Any]:
        return {"Runtimes": dict(self.listed), "DefaultRuntime": "runc"}

    def reload(self) -> None:
        self.reloads += 1
        if self.reads_config:
            self.listed.update(json.loads(self.config.read_text()).get("runtimes", {}))


def _present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "runsc"
    binary.write_text("")
    monkeypatch.setattr("harness.execution.engine_setup.SUPPORTED", {"runsc": RUNSC.__class__("runsc", str(binary))})


def test_setup_registers_reloads_and_probes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _present(monkeypatch, tmp_path)
    config = tmp_path / "daemon.json"
    engine = _Engine(config)
    probed: list[str] = []

    def probe(name: str) -> dict[str, Any]:
        probed.append(name)
        return {"runtime": name}

    first = setup_runtime("runsc", engine, probe, install=False, config_path=config, reload=engine.reload)
    assert first.config_changed and first.reloaded and engine.reloads == 1 and probed == ["runsc"]
    again = setup_runtime("runsc", engine, probe, install=False, config_path=config, reload=engine.reload)
    assert not again.config_changed and not again.reloaded and engine.reloads == 1
    assert probed == ["runsc", "runsc"]  # every set-up ends with a probe run


def test_setup_fails_when_the_engine_does_not_pick_it_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _present(monkeypatch, tmp_path)
    config = tmp_path / "daemon.json"
    engine = _Engine(config, reads_config=False)
    with pytest.raises(EngineRefused, match="did not list runsc"):
        setup_runtime(
            "runsc",
            engine,
            lambda name: {},
            install=False,
            config_path=config,
            reload=engine.reload,
            reload_timeout_s=0.3,
        )
