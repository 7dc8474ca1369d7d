"""The sandbox image: a content-derived tag, a build, and an offline base when nothing can be pulled.

The tag hashes ``Dockerfile.sandbox``, every file under ``sandbox/`` and the base image's
name, so any change rebuilds and an unchanged tree reuses what is there. Where the base
image cannot be pulled (no registry), a Debian base is made with debootstrap from the
mirror in this machine's apt sources (read at run time) and ``docker import``-ed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import EngineRefused, ImageError
from harness.settings import Settings

__all__ = ["ImageBuilder", "apt_mirror", "context_dir", "image_tag"]

Progress = Callable[[str], None]
IMAGE_REPO = "harness-sandbox"
BASE_REPO = "harness-base"
BASE_PACKAGES = ("python3",)
# Docs, manuals and package caches are dead weight in a sandbox that never installs anything.
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")


def context_dir() -> Path:
    """The folder holding Dockerfile.sandbox and sandbox/ (package data first, then the source tree)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_data", here.parent):
        if (candidate / "Dockerfile.sandbox").is_file() and (candidate / "sandbox").is_dir():
            return candidate
    raise ImageError("cannot find Dockerfile.sandbox and sandbox/", hint="reinstall harness from its source tree")


def _context_files(root: Path) -> dict[str, bytes]:
    files = {"Dockerfile.sandbox": (root / "Dockerfile.sandbox").read_bytes()}
    for path in sorted((root / "sandbox").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def image_tag(base_image: str, root: Path | None = None) -> str:
    """The sandbox image tag for this tree built on ``base_image``."""
    digest = hashlib.sha256(base_image.encode())
    for name, data in _context_files(root or context_dir()).items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return f"{IMAGE_REPO}:{digest.hexdigest()[:16]}"


def apt_mirror(root: Path = Path("/")) -> tuple[str, str]:
    """The main Debian/Ubuntu mirror and suite from this machine's apt sources."""
    suite = ""
    os_release = root / "etc/os-release"
    if os_release.is_file():
        match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", os_release.read_text(), re.MULTILINE)
        suite = match.group(1) if match else ""
    entries: list[tuple[str, str]] = []
    for path in sorted((root / "etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                key, _, value = line.partition(":")
                if not line.startswith("#") and value.strip():
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    for s in fields.get("suites", "").split():
                        entries.append((uri, s))
    for path in [root / "etc/apt/sources.list", *sorted((root / "etc/apt/sources.list.d").glob("*.list"))]:
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    entries.append((parts[1], parts[2]))
    for uri, s in entries:
        if "security" in uri or s.endswith(("-security", "-updates", "-backports")):
            continue
        if not suite or s == suite:
            return uri.rstrip("/"), s
    raise ImageError(
        "no Debian or Ubuntu mirror found in the apt sources",
        hint="set HARNESS_BASE_IMAGE to a local image with python3, or configure apt",
    )


class ImageBuilder:
    """Finds or builds the sandbox image on one engine."""

    def __init__(self, client: Any, settings: Settings, progress: Progress | None = None) -> None:
        self.client = client
        self.settings = settings
        self.progress = progress or (lambda _msg: None)

    # -- queries ------------------------------------------------------------------------------
    def exists(self, ref: str) -> bool:
        """True when the engine has an image called ``ref``."""
        import docker.errors

        try:
            self.client.api.inspect_image(ref)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise EngineRefused(f"the engine refused to inspect image {ref}", hint=str(exc)) from None

    def offline_base_tag(self) -> str:
        """The tag of the debootstrap base for this machine's mirror and suite."""
        mirror, suite = apt_mirror()
        key = hashlib.sha256("\n".join([mirror, suite, *BASE_PACKAGES]).encode()).hexdigest()[:10]
        return f"{BASE_REPO}:{suite}-{key}"

    def current(self) -> str | None:
        """The sandbox image tag this tree would use, if it is already built."""
        if self.settings.image:
            return self.settings.image if self.exists(self.settings.image) else None
        candidates = [self.settings.base_image]
        try:
            candidates.append(self.offline_base_tag())
        except ImageError:
            pass
        for base in candidates:
            tag = image_tag(base)
            if self.exists(tag):
                return tag
        return None

    # -- building -----------------------------------------------------------------------------
    def ensure(self) -> str:
        """Return a usable sandbox image tag, building it (and its base) if needed."""
        found = self.current()
        if found:
            return found
        if self.settings.image:
            raise ImageError(
                f"sandbox image {self.settings.image} is not on this engine",
                hint="build it, or unset HARNESS_IMAGE to let harness build its own",
            )
        return self.build()

    def build(self, *, force: bool = False) -> str:
        """Build the sandbox image on the best available base; return its tag."""
        base = self._base()
        tag = image_tag(base)
        if self.exists(tag) and not force:
            self.progress(f"image {tag} is up to date")
            return tag
        self.progress(f"building {tag} from {base}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in _context_files(context_dir()).items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        import docker.errors

        try:
            for chunk in self.client.api.build(
                fileobj=buf,
                custom_context=True,
                dockerfile="Dockerfile.sandbox",
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                labels={"harness.managed": "1"},
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                if "error" in chunk:
                    raise ImageError("the sandbox image build failed", hint=str(chunk["error"]).strip())
                line = str(chunk.get("stream", "")).strip()
                if line.startswith("Step "):
                    self.progress(line if len(line) <= 100 else line[:99] + "…")
        except docker.errors.APIError as exc:
            raise ImageError("the sandbox image build failed", hint=str(exc)) from None
        return tag

    def _base(self) -> str:
        base = self.settings.base_image
        if self.exists(base):
            return base
        self.progress(f"pulling {base}")
        import docker.errors

        try:
            self.client.api.pull(base)
            return base
        except docker.errors.DockerException as exc:
            self.progress(f"cannot pull {base} ({str(exc).splitlines()[0][:120]}); making an offline base")
        return self.offline_base()

    def offline_base(self) -> str:
        """Make (or reuse) a Debian base image with python3 from this machine's apt mirror."""
        tag = self.offline_base_tag()
        if self.exists(tag):
            self.progress(f"offline base {tag} is ready")
            return tag
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            debootstrap = self._install_debootstrap()
        if os.geteuid() != 0:
            raise ImageError(
                "making the offline base image needs root (debootstrap)",
                hint="run `sudo harness sandbox build`, or set HARNESS_BASE_IMAGE to a local image with python3",
            )
        mirror, suite = apt_mirror()
        self.progress(f"debootstrap {suite} from {mirror}")
        with tempfile.TemporaryDirectory(prefix="harness-base-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            cmd = [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(rootfs),
                mirror,
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            tail: list[str] = []
            assert proc.stdout is not None
            for line in proc.stdout:
                tail = [*tail[-20:], line.rstrip()]
                if line.startswith(("I: Retrieving", "I: Configuring", "I: Base system")):
                    self.progress(line[3:].strip())
            if proc.wait() != 0:
                raise ImageError("debootstrap failed", hint=" | ".join(tail[-3:]))
            self.progress("packing the base filesystem")
            archive = Path(tmp) / "rootfs.tar"
            with tarfile.open(archive, "w") as tar:
                for entry in sorted(rootfs.iterdir()):
                    tar.add(entry, arcname=entry.name, filter=_trim)
            self.progress(f"importing {tag}")
            repo, _, version = tag.partition(":")
            try:
                self.client.api.import_image_from_file(
                    str(archive), repository=repo, tag=version, changes=['CMD ["python3"]']
                )
            except Exception as exc:  # noqa: BLE001 - any engine failure here means no image
                raise ImageError("importing the offline base image failed", hint=str(exc)) from None
        return tag

    def _install_debootstrap(self) -> str:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            self.progress("installing debootstrap")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            done = subprocess.run(
                ["apt-get", "install", "-y", "-q", "debootstrap"], env=env, capture_output=True, text=True
            )
            if done.returncode == 0 and shutil.which("debootstrap"):
                return str(shutil.which("debootstrap"))
        raise ImageError(
            "the base image cannot be pulled and debootstrap is not installed",
            hint="install it (apt-get install debootstrap) or set HARNESS_BASE_IMAGE to a local image with python3",
        )


def _trim(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = info.name.lstrip("./")
    return None if any(name == p or name.startswith(p + "/") for p in _TRIM) else info
