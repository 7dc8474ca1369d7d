"""Runtimes on the real engine: the receipt is the engine's word, the pool never crosses runtimes, set-up is idempotent.

The set-up test changes this machine's engine configuration the way ``scripts/test`` does on CI:
it registers runsc in daemon.json (merged, with a backup) and reloads dockerd with SIGHUP,
which leaves running containers alone. It needs root and a local dockerd.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.errors import RuntimeMissing
from harness.execution.docker import DockerBackend
from harness.execution.limits import Limits
from harness.execution.runtimes import registered
from harness.records import RunSpec
from harness.settings import Settings
from tests.conftest import Cli

KERNEL = "import os\nprint(os.uname().release)\n"
EVERY_RUNTIME = pytest.mark.parametrize("sandbox_runtime", ["runc", "runsc"], indirect=True)


def _needs_runsc(docker_client: Any) -> None:
    if "runsc" not in registered(docker_client.info()):
        if os.environ.get("CI") == "true":
            pytest.fail("the engine has no runsc registered on CI: scripts/test sets it up")
        pytest.skip("the engine has no runsc registered (harness sandbox setup-runtime runsc)")


@EVERY_RUNTIME
def test_the_receipt_names_the_runtime_the_engine_used(backend: DockerBackend, sandbox_runtime: str) -> None:
    result = backend.run(RunSpec(script=KERNEL))
    assert result.ok, result.stderr_tail
    assert result.policy is not None and result.policy.runtime == sandbox_runtime
    started = result.events[0]
    assert started.kind == "run_started" and started.runtime == sandbox_runtime
    # gVisor answers with its own kernel's release, not the host's.
    host = os.uname().release
    assert (result.stdout_tail.strip() == host) is (sandbox_runtime == "runc")


@EVERY_RUNTIME
def test_memory_limit_holds_and_is_reported(backend: DockerBackend, sandbox_runtime: str) -> None:
    # Under gVisor the supervisor cannot read a memory cgroup: the engine's OOM flag decides.
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))"
    result = backend.run(RunSpec(script=script, limits=Limits.build(timeout_s=30, memory="128m")))
    assert result.status == "oom_killed", (result.status, result.message)
    assert result.policy is not None and result.policy.runtime == sandbox_runtime


def test_auto_picks_runsc_and_the_pool_serves_only_its_runtime(sandbox_image: str, docker_client: Any) -> None:
    _needs_runsc(docker_client)
    settings = Settings.from_env(environ={}, pool_size=1)
    assert settings.runtime == "auto"
    with DockerBackend(settings, client=docker_client) as pooled:
        assert pooled.runtime == "runsc"
        assert pooled.wait_pool(60)
        other = pooled.run(RunSpec(script=KERNEL, runtime="runc"))
        # A runc run never gets the pool's runsc container: it starts cold, and the pool stays full.
        assert other.ok and not other.pooled and other.policy is not None and other.policy.runtime == "runc"
        assert pooled.pool_state() == (1, 1)
        same = pooled.run(RunSpec(script=KERNEL))
        assert same.ok and same.pooled and same.policy is not None and same.policy.runtime == "runsc"


def test_a_runtime_asked_for_by_name_must_be_registered(sandbox_image: str, docker_client: Any) -> None:
    with pytest.raises(RuntimeMissing, match="no runtime 'kata-none'"):
        DockerBackend(Settings.from_env(environ={}, runtime="kata-none", pool_size=0), client=docker_client)
    with DockerBackend(Settings.from_env(environ={}, runtime="runc", pool_size=0), client=docker_client) as backend:
        with pytest.raises(RuntimeMissing):
            backend.run(RunSpec(script="pass", runtime="kata-none"))


def test_cli_runtime_option_error_and_status(cli: Cli, tmp_path: Path, docker_client: Any) -> None:
    script = tmp_path / "k.py"
    script.write_text(KERNEL)
    code, out, _ = cli("exec", str(script), "--runtime", "runc", "--json")
    assert code == 0 and json.loads(out)["policy"]["runtime"] == "runc"
    code, _, err = cli("exec", str(script), "--runtime", "kata-none")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "kata-none" in err and "daemon.json" in err
    code, out, _ = cli("sandbox", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["runtime"] == "runc"  # the test session pins runc
    assert "runc" in status["engine"]["runtimes"]


@pytest.mark.skipif(os.geteuid() != 0, reason="setting up a runtime needs root")
def test_setup_runtime_is_idempotent_and_probes(cli: Cli, docker_client: Any) -> None:
    if not Path("/var/run/docker.pid").exists():
        pytest.skip("no local dockerd to reload")
    config = Path("/etc/docker/daemon.json")
    code, out, err = cli("sandbox", "setup-runtime", "runsc", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["probe"]["runtime"] == "runsc" and first["probe"]["uid"] == 10001
    assert first["probe"]["network"] is False and first["probe"]["root_writable"] is False
    assert "runsc" in registered(docker_client.info())
    before = config.read_bytes()
    code, out, err = cli("sandbox", "setup-runtime", "runsc", "--json")
    again = json.loads(out)
    assert code == 0, err
    assert again["config_changed"] is False and again["reloaded"] is False and again["installed"] is False
    assert config.read_bytes() == before
    assert json.loads(before)["runtimes"]["runsc"]["path"] == "/usr/bin/runsc"
