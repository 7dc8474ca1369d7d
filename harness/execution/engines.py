"""Container engines that speak the Docker API: Docker itself, and Podman's ``podman system service``.

The same SDK drives both; what differs is handled here, where it is measured (Podman 4.3.1,
Debian 12, rootful):

- Podman refuses the tmpfs option ``nr_inodes`` ("invalid mount option"): the inode cap is
  left out there and the receipt says so (the tmpfs size caps still hold).
- Podman refuses the tmpfs options ``uid`` and ``gid`` and gives a tmpfs over an image folder
  that folder's mode, owned by root: the supervisor gets CAP_CHOWN, gives /work and /output to
  the script's uid before any job arrives, and drops CHOWN from every set it keeps.
- Podman applies its own default ``nproc`` and ``nofile`` rlimits unless a run gives them,
  and with its defaults every run fails ("error setting rlimit type 6/7"): harness gives both.
  ``nproc`` is per uid on the host kernel under runc, shared by every container's uid 10001,
  so it is set high (the pids cgroup is the process limit) rather than to the run's limit.
- Podman's Docker-compatible API ignores the ``Runtime`` a container asks for: only its
  configured default runtime (``containers.conf``) can be had, and the receipt reads the one
  used from Podman's own API.
- Images: Podman's store is its own. :func:`copy_image` streams ``docker save`` from the
  local Docker engine into Podman's load endpoint, so the image is built once, offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EngineFlags", "copy_image", "engine_flags", "engine_name", "selectable_runtimes"]

# Under runc with Podman RLIMIT_NPROC counts every process of uid 10001 on the host, in every
# container: high enough for many runs at once (the pids cgroup limits each), and within the
# hard limit Podman's service and conmon run with (32768 measured; more fails like the default).
PODMAN_NPROC = 4096


@dataclass(frozen=True)
class EngineFlags:
    """What an engine needs beyond the common hardening."""

    inodes: bool = True  # the engine accepts the tmpfs ``nr_inodes`` option
    tmpfs_owner: bool = True  # the engine accepts the tmpfs ``uid`` and ``gid`` options
    cap_add: tuple[str, ...] = ()  # granted to the supervisor beyond its own, dropped before any job
    nproc: int | None = None  # an explicit RLIMIT_NPROC, when the engine's default breaks runs


def engine_name(version: dict[str, Any]) -> str:
    """``docker`` or ``podman``, from the engine's ``/version`` answer (Podman names its component)."""
    components = version.get("Components") or []
    names = " ".join(str(c.get("Name", "")) for c in components if isinstance(c, dict))
    return "podman" if "podman" in names.lower() else "docker"


def selectable_runtimes(engine: str, info: dict[str, Any]) -> tuple[str, ...]:
    """The runtimes a run can ask this engine for, from its ``/info`` answer.

    Podman's Docker-compatible API ignores a container's ``Runtime`` (measured: asked for
    runsc, the container ran under runc), so there only its configured default can be had;
    its ``Runtimes`` list names every runtime its configuration knows, installed or not.
    """
    from harness.execution.runtimes import registered

    if engine == "podman":
        return (str(info.get("DefaultRuntime") or "runc"),)
    return registered(info)


def engine_flags(engine: str) -> EngineFlags:
    """The per-engine part of a container's configuration."""
    if engine == "podman":
        # No tmpfs uid option: the supervisor chowns /work and /output itself, then drops CHOWN.
        return EngineFlags(inodes=False, tmpfs_owner=False, nproc=PODMAN_NPROC, cap_add=("CHOWN",))
    return EngineFlags()


def copy_image(source: Any, target: Any, tag: str) -> None:
    """Load image ``tag`` from engine ``source`` (``docker save``) into engine ``target`` (``podman load``)."""
    api = source.api
    saved = api._get(api._url("/images/{0}/get", tag), stream=True)
    try:
        api._raise_for_status(saved)
        replies = target.api.load_image(saved.iter_content(chunk_size=1 << 20))
        for _ in replies or ():
            pass  # the load finishes when its progress stream ends
    finally:
        saved.close()
