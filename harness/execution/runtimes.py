"""OCI runtimes: which one a run gets, and what each needs from the container's configuration.

``auto`` (the default) is gVisor's ``runsc`` when the engine has it registered, else ``runc``:
registering runsc, which ``harness sandbox setup-runtime runsc`` does, is what makes the
stronger boundary the default. A runtime asked for by name must be registered; ``auto`` never
fails for lack of runsc. What a run actually got is read back from the engine (the container's
``HostConfig.Runtime``), never assumed from the request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import Fix, RuntimeMissing

__all__ = [
    "AUTO",
    "DEFAULT",
    "GVISOR",
    "RuntimeFlags",
    "describe",
    "flags_for",
    "registered",
    "resolve",
]

AUTO = "auto"
GVISOR = "runsc"
DEFAULT = "runc"
_KNOWN = {
    "runc": "runc: Linux namespaces and cgroups on the host kernel",
    "runsc": "runsc: gVisor, a user-space kernel between the script and the host kernel",
    "crun": "crun: Linux namespaces and cgroups on the host kernel",
    "kata": "kata: a lightweight virtual machine per container",
}


def registered(info: Mapping[str, Any], *, installed_only: bool = False) -> tuple[str, ...]:
    """The runtimes an engine has registered, from its ``docker info`` answer (``Runtimes``), sorted.

    ``installed_only`` drops those whose binary is named by an absolute path that does not exist
    here (Podman lists every runtime its configuration knows; its service runs on this machine).
    """
    runtimes = info.get("Runtimes") or {}
    if not isinstance(runtimes, Mapping):
        return ()
    return tuple(
        sorted(
            name
            for name, entry in runtimes.items()
            if not installed_only or not _missing(entry.get("path", "") if isinstance(entry, Mapping) else "")
        )
    )


def _missing(path: str) -> bool:
    return os.path.isabs(path) and not os.path.exists(path)


def resolve(requested: str, available: Iterable[str], *, engine_default: str = DEFAULT) -> str:
    """The runtime to ask the engine for: ``auto`` picks runsc when registered; a named one must be registered."""
    names = set(available)
    if requested == AUTO:
        if GVISOR in names:
            return GVISOR
        # An engine that registers no runtimes by name (Podman answers with its own list) keeps its default.
        return engine_default if engine_default in names or not names else DEFAULT
    if requested in names:
        return requested
    error = RuntimeMissing(
        f"the engine has no runtime {requested!r} registered (it has: {', '.join(sorted(names)) or 'none listed'})",
        hint=(
            f"register {requested} in the engine's daemon.json, or use --runtime auto"
            if requested != GVISOR
            else "as root: harness sandbox setup-runtime runsc (or use --runtime auto)"
        ),
        runtime=requested,
        available=tuple(sorted(names)),
    )
    raise error.fixed_by(Fix("setup_runtime", GVISOR)) if requested == GVISOR else error


def describe(runtime: str) -> str:
    """One line naming ``runtime`` and the boundary it puts between a script and the host."""
    return _KNOWN.get(runtime, f"{runtime}: a runtime registered in the engine")


@dataclass(frozen=True)
class RuntimeFlags:
    """What a runtime changes in a hardened container's configuration, and what the receipt says about it."""

    tmpfs: Mapping[str, str] = field(default_factory=dict)  # mounts added to the common ones
    pids_limit: int = 0  # the engine's pids limit (a cgroup on the host)
    nproc: int | None = None  # RLIMIT_NPROC inside, when the cgroup limit cannot be the process limit
    seccomp: str = "engine default"  # what filters the script's system calls
    receipt: Mapping[str, object] = field(default_factory=dict)  # how the limits were enforced, for the receipt


# Host threads gVisor's kernel (the Sentry, ptrace platform) needs per sandboxed task, and its own:
# measured with Debian's runsc 20221219, 127 sleeping processes need between 512 and 1024 host pids.
_SENTRY_PIDS_PER_TASK = 8
_SENTRY_PIDS_BASE = 256


def flags_for(runtime: str, pids: int) -> RuntimeFlags:
    """The per-runtime part of a container's configuration, for a run allowed ``pids`` processes.

    runc enforces every limit through the host kernel: the pids cgroup is the process limit.
    Under gVisor the host's pids cgroup counts the sandbox kernel's own threads, not the script's
    processes: a script that reaches it kills the whole sandbox (its output is lost). So under
    runsc the script's processes are limited inside, by RLIMIT_NPROC (gVisor enforces it for the
    script's uid), and the cgroup is a backstop sized for the Sentry. gVisor also mounts its own
    writable ``/dev/shm`` whatever ``--ipc none`` says: a read-only empty tmpfs covers it, so POSIX
    shared memory stays unavailable, as under runc.
    """
    if runtime == GVISOR:
        return RuntimeFlags(
            tmpfs={"/dev/shm": "ro,noexec,nosuid,nodev"},  # noqa: S108 - the container's own, read-only
            pids_limit=pids * _SENTRY_PIDS_PER_TASK + _SENTRY_PIDS_BASE,
            # As under runc, where the cgroup counts them too: init and the supervisor (uid 0) take two.
            nproc=max(pids - 2, 1),
            seccomp="gVisor's kernel serves every system call; its own filter confines it on the host",
            receipt={"pids_enforced_by": "RLIMIT_NPROC inside gVisor (the host cgroup is a backstop)"},
        )
    return RuntimeFlags(pids_limit=pids)
