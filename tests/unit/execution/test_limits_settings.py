"""Limits and settings: sizes, validation with one clear error, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.execution.limits import Limits, format_size, parse_size
from harness.settings import Settings


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("1GiB", 1 << 30),
        ("64k", 64 << 10),
        ("100", 100),
        (2048, 2048),
        ("1.5m", int(1.5 * (1 << 20))),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1m", "1x", "", True, -5, float("nan"), float("inf"), "nan", "1e400"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_size(bad)  # type: ignore[arg-type]


def test_format_size_round_trips() -> None:
    for size in (512 << 20, 1 << 30, 64 << 10, 1000):
        assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"memory": "1m"}, "memory"),
        ({"cpus": -1}, "cpus"),
        ({"pids": 2}, "pids"),
        ({"memory": "much"}, "memory"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_limits_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid limit {field}"):
        Limits.build(**change)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "nan", "inf"])
@pytest.mark.parametrize("field", ["timeout_s", "cpus", "fsize"])
def test_non_finite_limits_are_a_usage_error(field: str, value: object) -> None:
    # nan compares false with every bound; before, `--timeout nan` was refused only as "above 86400"
    # and memory=inf crashed with an OverflowError.
    with pytest.raises(ConfigError) as info:
        Limits.build(**{field: value})
    line = info.value.one_line()
    assert f"invalid limit {field}" in line
    # Sizes written as text must match `512m`; every number given as such must be finite.
    assert "finite" in line or (field == "fsize" and "like 512m" in line)


def test_limits_build_keeps_the_base() -> None:
    base = Limits.build(memory="256m")
    changed = Limits.build(base, timeout_s=5, cpus=None)
    assert changed.memory == 256 << 20 and changed.timeout_s == 5 and changed.cpus == base.cpus


def test_settings_precedence_argument_over_env_over_default(tmp_path: Path) -> None:
    env = {"HARNESS_POOL_SIZE": "4", "HARNESS_MEMORY": "1g", "HARNESS_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.pool_size == 4 and settings.limits.memory == 1 << 30 and settings.data_dir == tmp_path
    assert settings.runs_dir == tmp_path / "runs"
    overridden = Settings.from_env(env, pool_size=0, limits={"memory": "256m"})
    assert overridden.pool_size == 0 and overridden.limits.memory == 256 << 20
    assert Settings.from_env({}).pool_size == 2


def test_bad_setting_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"HARNESS_POOL_SIZE": "many"})
    assert "pool_size" in info.value.one_line() and "HARNESS_POOL_SIZE" in info.value.one_line()


def test_pool_idle_deadline_is_a_setting() -> None:
    assert Settings.from_env(environ={}).pool_idle_s == 600.0
    assert Settings.from_env(environ={"HARNESS_POOL_IDLE_S": "30"}).pool_idle_s == 30.0
    assert Settings.from_env(environ={"HARNESS_POOL_IDLE_S": "30"}, pool_idle_s=90).pool_idle_s == 90.0
    for bad in ("nan", "inf", "1"):
        with pytest.raises(ConfigError, match="pool_idle_s"):
            Settings.from_env(environ={"HARNESS_POOL_IDLE_S": bad})
