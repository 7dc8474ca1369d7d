"""Per-run resource limits: parsing of human sizes, validation, and the defaults."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ConfigError

__all__ = ["Limits", "format_size", "parse_size"]

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)

KiB = 1024
MiB = 1024 * KiB


def parse_size(value: str | int | float) -> int:
    """Parse ``512m``, ``1GiB``, ``65536`` (bytes) into a byte count; raise ConfigError."""
    if isinstance(value, bool):
        raise ConfigError(f"invalid size {value!r}", hint="use a number of bytes or a size like 512m or 1g")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"invalid size {value!r}", hint="a size must be a finite number")
        if value < 0:
            raise ConfigError(f"invalid size {value!r}", hint="sizes cannot be negative")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f"invalid size {value!r}", hint="use a number of bytes or a size like 512m or 1g")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_size(size: int) -> str:
    """Format a byte count the way Docker and people write it (``512m``)."""
    for unit, factor in (("g", 1024**3), ("m", MiB), ("k", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


class Limits(BaseModel):
    """What one run may use. Every field is enforced by the engine or the host, never the script."""

    # nan fails every bound check only by accident, with a misleading message; say what is wrong.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    timeout_s: float = Field(60.0, gt=0, le=24 * 3600, description="wall clock, then the container is killed")
    memory: int = Field(512 * MiB, ge=16 * MiB, description="memory limit in bytes; swap is not added")
    cpus: float = Field(1.0, gt=0, le=64, description="CPU quota in cores")
    pids: int = Field(128, ge=8, le=65536, description="process and thread limit")
    tmp_size: int = Field(64 * MiB, ge=MiB, description="tmpfs size for /tmp")
    work_size: int = Field(64 * MiB, ge=MiB, description="tmpfs size for the working directory /work")
    output_size: int = Field(128 * MiB, ge=MiB, description="tmpfs size for /output, also the collection cap")
    output_files: int = Field(
        10_000, ge=1, le=1_000_000, description="most files and folders collected from /output, then partial"
    )
    input_size: int = Field(64 * MiB, ge=MiB, description="largest inputs that travel by copy (pooled runs)")
    inodes: int = Field(32768, ge=256, le=1 << 22, description="files and folders per tmpfs (nr_inodes)")
    stdout_cap: int = Field(16 * MiB, ge=64 * KiB, description="total stdout+stderr bytes, then output_limit")
    nofile: int = Field(1024, ge=64, le=1 << 20, description="open files ulimit")
    fsize: int = Field(256 * MiB, ge=MiB, description="largest file a process may write (ulimit)")

    @field_validator(
        "memory",
        "tmp_size",
        "work_size",
        "output_size",
        "input_size",
        "stdout_cap",
        "fsize",
        mode="before",
    )
    @classmethod
    def _sizes(cls, value: Any) -> int:
        try:
            return parse_size(value)
        except ConfigError as exc:
            raise ValueError(exc.hint) from None

    @classmethod
    def build(cls, base: Limits | None = None, **changes: Any) -> Limits:
        """Return ``base`` (or the defaults) with ``changes`` applied; ConfigError on bad values."""
        data = (base or cls()).model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "limits"
            raise ConfigError(
                f"invalid limit {field}={first.get('input')!r}",
                hint=str(first["msg"]).removeprefix("Value error, ").lower(),
            ) from None

    def receipt(self) -> dict[str, Any]:
        """The limits as people read them, for policy receipts."""
        return {
            "timeout_s": self.timeout_s,
            "memory": format_size(self.memory),
            "memory_swap": "none",
            "cpus": self.cpus,
            "pids": self.pids,
            "tmp_size": format_size(self.tmp_size),
            "work_size": format_size(self.work_size),
            "output_size": format_size(self.output_size),
            "output_files": self.output_files,
            "inodes": self.inodes,
            "stdout_cap": format_size(self.stdout_cap),
            "nofile": self.nofile,
            "fsize": format_size(self.fsize),
        }
