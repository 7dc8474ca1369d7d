"""Runtime choice: ``auto`` prefers gVisor when registered, a named runtime must exist, each runtime's flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.hints import error_line
from harness.cli.render import RunView, exec_summary
from harness.errors import ConfigError, Fix, RuntimeMissing
from harness.execution.engines import engine_flags, engine_name
from harness.execution.runtimes import flags_for, registered, resolve
from harness.settings import Settings


@pytest.mark.parametrize(
    ("available", "chosen"),
    [(("runc", "runsc"), "runsc"), (("runc",), "runc"), (("crun", "runc"), "runc"), ((), "runc")],
)
def test_auto_is_runsc_when_registered_and_never_fails(available: tuple[str, ...], chosen: str) -> None:
    assert resolve("auto", available) == chosen


def test_auto_keeps_an_engine_default_that_is_registered() -> None:
    assert resolve("auto", ("crun", "runc"), engine_default="crun") == "crun"
    assert resolve("auto", ("crun", "runc", "runsc"), engine_default="crun") == "runsc"


def test_a_named_runtime_is_used_when_registered() -> None:
    assert resolve("runc", ("runc", "runsc")) == "runc"
    assert resolve("kata", ("kata", "runc")) == "kata"


def test_missing_runsc_is_one_line_naming_the_setup_command() -> None:
    with pytest.raises(RuntimeMissing) as caught:
        resolve("runsc", ("runc",))
    exc = caught.value
    assert exc.runtime == "runsc" and exc.available == ("runc",)
    assert exc.fix == Fix("setup_runtime", "runsc")
    line = error_line(exc)
    assert "\n" not in line
    assert "harness sandbox setup-runtime runsc" in line


def test_another_missing_runtime_says_to_register_it() -> None:
    with pytest.raises(RuntimeMissing) as caught:
        resolve("kata", ("runc", "runsc"))
    assert caught.value.fix is None
    assert "daemon.json" in error_line(caught.value)


def test_registered_reads_the_engine_info() -> None:
    info = {"Runtimes": {"runsc": {"path": "/usr/bin/runsc"}, "runc": {"path": "runc"}}, "DefaultRuntime": "runc"}
    assert registered(info) == ("runc", "runsc")
    assert registered({}) == ()


def test_runc_limits_processes_with_the_pids_cgroup() -> None:
    flags = flags_for("runc", 128)
    assert flags.pids_limit == 128 and flags.nproc is None and not flags.tmpfs


def test_runsc_limits_processes_inside_and_covers_dev_shm() -> None:
    flags = flags_for("runsc", 128)
    assert flags.nproc == 126  # init and the supervisor are not the script's uid
    # The host cgroup counts the Sentry's threads: far above the script's own limit.
    assert flags.pids_limit >= 8 * 128
    assert flags.tmpfs["/dev/shm"].startswith("ro,")
    assert "pids_enforced_by" in flags.receipt


def test_runtime_setting_defaults_to_auto_and_is_validated() -> None:
    assert Settings.from_env(environ={}).runtime == "auto"
    assert Settings.from_env(environ={"HARNESS_RUNTIME": "runsc"}).runtime == "runsc"
    with pytest.raises(ConfigError, match="runtime"):
        Settings.from_env(environ={"HARNESS_RUNTIME": "run sc; rm"})


def test_the_display_title_and_summary_name_the_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    view = RunView("main.py · run abc")
    view.on_event({"kind": "run_started", "run_id": "abc", "image": "i", "pooled": False, "runtime": "runsc"})
    assert view.title == "main.py · run abc · runsc"
    result = {
        "status": "succeeded",
        "exit_code": 0,
        "duration_s": 0.1,
        "events_count": 2,
        "pooled": True,
        "artifacts": [],
        "policy": {"runtime": "runsc"},
    }
    first = "".join(text for text, _ in exec_summary(result, "/runs/abc")[0])
    assert first.endswith("pooled container under runsc")


def test_podman_lists_uninstalled_runtimes_which_are_dropped(tmp_path: Path) -> None:
    present = tmp_path / "runsc"
    present.write_text("")
    info = {"Runtimes": {"runc": {"path": "runc"}, "runsc": {"path": str(present)}, "kata": {"path": "/nope/kata"}}}
    assert registered(info) == ("kata", "runc", "runsc")
    assert registered(info, installed_only=True) == ("runc", "runsc")


def test_the_engine_is_named_from_its_version_answer() -> None:
    podman = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}], "Version": "4.3.1"}
    docker = {"Components": [{"Name": "Engine", "Version": "20.10.24"}], "Version": "20.10.24"}
    assert engine_name(podman) == "podman" and engine_name(docker) == "docker" and engine_name({}) == "docker"


def test_podman_gets_explicit_nproc_and_no_tmpfs_options_it_refuses() -> None:
    podman, docker = engine_flags("podman"), engine_flags("docker")
    assert podman.nproc is not None and 128 <= podman.nproc <= 32768  # within conmon's hard limit
    assert not podman.inodes and not podman.tmpfs_owner
    assert docker.nproc is None and docker.inodes and docker.tmpfs_owner
