"""Registering an OCI runtime (gVisor's runsc) with a Docker engine: install, daemon.json, reload, probe.

``harness sandbox setup-runtime runsc`` runs :func:`setup_runtime` as root. It changes the
engine's configuration by adding one key under ``runtimes`` and nothing else: every other key
of ``daemon.json`` is kept as it was, a timestamped backup is written first, and a file that is
not a JSON object is refused rather than repaired. The engine is reloaded with SIGHUP (never
restarted: running containers are untouched), and the set-up is done only when the engine
lists the runtime and a hardened probe run under it succeeded. Running it again changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, EngineRefused, InvalidInput

__all__ = [
    "DAEMON_JSON",
    "RUNSC",
    "RuntimeEntry",
    "SetupOutcome",
    "daemon_config_path",
    "merge_runtime",
    "setup_runtime",
    "write_merged",
]

DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PID = Path("/var/run/docker.pid")


@dataclass(frozen=True)
class RuntimeEntry:
    """A runtime as daemon.json registers it: a name, the binary, the arguments the engine passes it."""

    name: str
    path: str
    args: tuple[str, ...] = ()
    package: str = ""  # the Debian package that provides ``path``

    def as_json(self) -> dict[str, Any]:
        """The value under ``runtimes.<name>`` in daemon.json."""
        return {"path": self.path, **({"runtimeArgs": list(self.args)} if self.args else {})}


# gVisor as Debian packages it. ``--network=none``: the sandbox kernel gets no network stack
# beyond loopback, whatever the container's network mode says (harness asks for none anyway).
RUNSC = RuntimeEntry("runsc", "/usr/bin/runsc", ("--network=none",), package="runsc")
SUPPORTED = {RUNSC.name: RUNSC}


@dataclass
class SetupOutcome:
    """What :func:`setup_runtime` found and did, step by step."""

    runtime: str
    installed: bool = False
    config_path: Path = DAEMON_JSON
    config_changed: bool = False
    backup: Path | None = None
    reloaded: bool = False
    probe: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def merge_runtime(text: str | None, entry: RuntimeEntry) -> tuple[str | None, str]:
    """daemon.json's text with ``entry`` registered: (new text or None when nothing changes, what was done).

    Only ``runtimes.<name>`` is added; an existing entry of that name is kept as it is (someone
    chose it). ConfigError when the file is not a JSON object or its ``runtimes`` is not one.
    """
    if text is None or not text.strip():
        config: dict[str, Any] = {}
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"the engine's daemon.json is not valid JSON (line {exc.lineno}, column {exc.colno}); left as it is",
                hint="fix or move the file, then run this again",
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError("the engine's daemon.json is not a JSON object; left as it is", hint="fix the file")
        config = loaded
    runtimes = config.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise ConfigError('daemon.json\'s "runtimes" is not a JSON object; left as it is', hint="fix the file")
    existing = runtimes.get(entry.name)
    if existing is not None:
        if existing == entry.as_json():
            return None, f"{entry.name} is already registered in daemon.json"
        return None, f"{entry.name} is already registered in daemon.json as {json.dumps(existing)}: kept as it is"
    # A new dict with the same key order: nothing but the one entry differs on disk.
    merged = {**config, "runtimes": {**runtimes, entry.name: entry.as_json()}}
    return json.dumps(merged, indent=2) + "\n", f"registered {entry.name} in daemon.json"


def write_merged(path: Path, entry: RuntimeEntry, *, now: datetime | None = None) -> tuple[bool, Path | None, str]:
    """Merge ``entry`` into the daemon.json at ``path``: (changed, backup written, what was done).

    The backup keeps the old bytes beside the file; the new file replaces the old in one rename,
    with the old file's mode, so a crash leaves one or the other, never half of each.
    """
    old = path.read_text(encoding="utf-8") if path.exists() else None
    merged, note = merge_runtime(old, entry)
    if merged is None:
        return False, None, note
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    if old is not None:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        shutil.copy2(path, backup)
    temporary = path.with_name(f".{path.name}.harness-{os.getpid()}")
    temporary.write_text(merged, encoding="utf-8")
    temporary.chmod(mode)
    temporary.replace(path)
    return True, backup, note


def daemon_config_path(args: Sequence[str]) -> Path:
    """The daemon.json a dockerd started with ``args`` reads: its ``--config-file`` when given, else the default."""
    for i, arg in enumerate(args):
        if arg.startswith("--config-file="):
            return Path(arg.split("=", 1)[1])
        if arg == "--config-file" and i + 1 < len(args):
            return Path(args[i + 1])
    return DAEMON_JSON


def _dockerd_args(pid: int | None) -> list[str]:
    if pid is None:
        return []
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return []


def _dockerd_pid() -> int | None:
    try:
        pid = int(DOCKER_PID.read_text().strip())
        return pid if Path(f"/proc/{pid}").exists() else None
    except (OSError, ValueError):
        return None


def _install(entry: RuntimeEntry, progress: Callable[[str], None]) -> bool:
    """Install ``entry``'s Debian package when its binary is missing: True when it was installed."""
    if Path(entry.path).exists():
        return False
    if shutil.which("apt-get") is None:
        raise InvalidInput(
            f"{entry.path} is missing and this machine has no apt-get",
            hint=f"install gVisor's {entry.name} at {entry.path} (https://gvisor.dev/docs/user_guide/install/)",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", entry.package]
    progress(f"installing Debian's {entry.package} ...")
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        # The package lists may be missing on a fresh machine: fetch them once and try again.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InvalidInput(f"installing {entry.package} failed: {tail}", hint="check the apt sources")
    return True


def _wait_listed(client: Any, name: str, timeout_s: float) -> bool:
    """Poll the engine until it lists ``name`` (a reload is asynchronous and signals nothing back)."""
    from harness.execution.runtimes import registered

    deadline = time.monotonic() + timeout_s
    while True:
        if name in registered(client.info()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def setup_runtime(
    name: str,
    client: Any,
    probe: Callable[[str], dict[str, Any]],
    *,
    install: bool = True,
    progress: Callable[[str], None] = lambda message: None,
    config_path: Path | None = None,
    reload: Callable[[], None] | None = None,
    reload_timeout_s: float = 30.0,
) -> SetupOutcome:
    """Register runtime ``name`` with the engine ``client`` talks to, reload it, and run ``probe`` under it.

    ``probe(name)`` runs one hardened container under the runtime and returns what it saw; it
    raises when the run fails. ``reload`` defaults to SIGHUP to the local dockerd.
    """
    from harness.execution.runtimes import registered

    entry = SUPPORTED.get(name)
    if entry is None:
        raise InvalidInput(
            f"harness sets up only {', '.join(SUPPORTED)}; {name!r} is not one of them",
            hint="register other runtimes in the engine's daemon.json yourself",
        )
    pid = _dockerd_pid()
    outcome = SetupOutcome(runtime=name, config_path=config_path or daemon_config_path(_dockerd_args(pid)))
    if install:
        outcome.installed = _install(entry, progress)
    elif not Path(entry.path).exists():
        raise InvalidInput(f"{entry.path} is missing", hint=f"install Debian's {entry.package}, or drop --no-install")
    listed = name in registered(client.info())
    if listed:
        outcome.notes.append(f"the engine already lists {name}")
    else:
        changed, backup, note = write_merged(outcome.config_path, entry)
        outcome.config_changed, outcome.backup = changed, backup
        outcome.notes.append(note)
        if backup is not None:
            outcome.notes.append(f"the previous file is kept as {backup}")
        progress(f"{note}; reloading the engine ...")
        if reload is None:
            if pid is None:
                raise EngineRefused(
                    "no local dockerd to reload (no /var/run/docker.pid)",
                    hint=f"reload or restart the engine yourself so it reads {outcome.config_path}",
                )
            os.kill(pid, signal.SIGHUP)
        else:
            reload()
        outcome.reloaded = True
        if not _wait_listed(client, name, reload_timeout_s):
            raise EngineRefused(
                f"the engine did not list {name} after reloading {outcome.config_path}",
                hint="see the engine's log; a dockerd started with --add-runtime or another --config-file ignores it",
            )
    progress(f"probing a hardened run under {name} ...")
    outcome.probe = probe(name)
    return outcome


# What the probe checks from inside: the script's uid, a read-only root, no network beyond
# loopback, and the kernel it talks to (gVisor answers with its own release and dmesg).
_PROBE = """
import json, os, socket
root_writable = True
try:
    open("/probe", "w")
except OSError:
    root_writable = False
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    network = True
except OSError:
    network = False
print(json.dumps({"uid": os.getuid(), "root_writable": root_writable, "network": network,
                  "kernel": os.uname().release}))
"""


def hardened_probe(settings: Any, client: Any, runtime: str) -> dict[str, Any]:
    """Run one hardened container under ``runtime``: what it saw; EngineRefused when the run or a check fails."""
    from harness.execution.docker import DockerBackend
    from harness.records import RunSpec

    with DockerBackend(settings.model_copy(update={"runtime": runtime}), client=client, pool_size=0) as backend:
        result = backend.run(RunSpec(script=_PROBE, name="probe.py"))
    policy = result.policy
    got = policy.runtime if policy is not None else "?"
    try:
        seen: dict[str, Any] = json.loads(result.stdout_tail.strip().splitlines()[-1])
    except (IndexError, ValueError):
        seen = {}
    failed = [
        what
        for what, bad in (
            (f"the run {result.status}: {result.message}", result.status != "succeeded"),
            (f"the engine ran it under {got}", got != runtime),
            ("the script ran as root", seen.get("uid", 0) == 0),
            ("the root filesystem was writable", seen.get("root_writable", True)),
            ("the network was reachable", seen.get("network", True)),
        )
        if bad
    ]
    if failed:
        raise EngineRefused(f"the probe run under {runtime} failed a check", hint="; ".join(failed))
    return {"runtime": got, "status": result.status, "duration_s": round(result.duration_s, 3), **seen}
