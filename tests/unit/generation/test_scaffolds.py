"""The scaffold library: loading, validation errors, parameters, and hostile values."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from harness.checks import gate, run_checks
from harness.errors import ConfigError, UserError
from harness.generation.render import py_literal, render, validate_params
from harness.generation.scaffolds import load_library, scaffolds_root

LIBRARY = load_library()
# project_skeleton writes a package, then imports it to run its tests in the sandbox.
LOADS_CODE_IT_WROTE = {"project_skeleton"}
NAMES = LIBRARY.names()


def test_library_loads_completely() -> None:
    assert LIBRARY.errors == []
    assert len(LIBRARY) >= 12
    kinds = {s.workflow_type for s in LIBRARY.scaffolds}
    assert kinds == {"automation", "security_audit", "research", "development", "project_management"}


@pytest.mark.parametrize("name", NAMES)
def test_every_scaffold_renders_and_passes_the_gate(name: str) -> None:
    scaffold = LIBRARY.get(name)
    assert scaffold.examples and scaffold.description and scaffold.keywords
    for example in scaffold.examples:
        source = render(scaffold, validate_params(scaffold, example.params))
        ast.parse(source)
        report = run_checks(source, "standard")
        assert gate(report, "standard").passed, [f for f in report.findings if f.severity == "error"]
        strict = gate(run_checks(source, "strict"), "strict")
        if name in LOADS_CODE_IT_WROTE:
            # Reviewed scaffolds may import what they wrote (standard); LLM code may not (strict).
            assert strict.blocking and all(f.code == "HP103" for f in strict.blocking), strict.blocking
        else:
            assert strict.passed, strict.blocking
        assert "import harness_runtime" in source and "hr.phase(" in source and "hr.progress(" in source


def test_broken_scaffold_is_one_clear_error_and_the_rest_still_load(tmp_path: Path) -> None:
    root = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "csv_summary", root / "csv_summary")
    shutil.copytree(scaffolds_root() / "log_analysis", root / "broken")
    meta = root / "broken" / "scaffold.toml"
    meta.write_text(
        meta.read_text()
        .replace('name = "log_analysis"', 'name = "broken"')
        .replace('type = "choice"', 'type = "colour"')
    )
    (root / "bad_toml").mkdir()
    (root / "bad_toml" / "scaffold.toml").write_text("name = \n")
    library = load_library(root)
    assert library.names() == ["csv_summary"]
    assert len(library.errors) == 2
    assert any(e.startswith("broken/scaffold.toml: parameters.bucket.type:") for e in library.errors)
    assert any(e.startswith("bad_toml/scaffold.toml: not valid TOML") for e in library.errors)


def test_assertions_may_only_name_declared_parameters(tmp_path: Path) -> None:
    root = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "csv_summary", root / "csv_summary")
    meta = root / "csv_summary" / "scaffold.toml"
    meta.write_text(
        meta.read_text() + '\n[[assertions]]\ndescription = "x"\nfile = "{colour}.json"\nwhen = { size = 1 }\n'
    )
    library = load_library(root)
    assert library.names() == []
    assert "names unknown parameters: colour, size" in library.errors[0]


def test_every_scaffold_asserts_something_about_its_outputs() -> None:
    for scaffold in LIBRARY.scaffolds:
        assert scaffold.assertions, f"{scaffold.name} declares no assertions"


def test_unknown_scaffold_suggests_close_names() -> None:
    with pytest.raises(UserError, match="no scaffold called 'csv_sumary'") as info:
        LIBRARY.get("csv_sumary")
    assert "csv_summary" in info.value.hint


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("log_analysis", {"top": "7", "bucket": "day"}, {"top": 7, "bucket": "day", "pattern": "**/*"}),
        (
            "csv_summary",
            {"group_by": "region", "columns": "units, unit_price"},
            {"group_by": "region", "columns": ["units", "unit_price"], "pattern": "**/*.csv"},
        ),
        ("checksum_manifest", {"fail_on_mismatch": "no"}, {"fail_on_mismatch": False}),
        ("project_plan", {"hours_per_day": "7.5"}, {"hours_per_day": 7.5}),
    ],
)
def test_parameters_are_coerced_from_cli_strings(name: str, raw: dict, expected: dict) -> None:
    values = validate_params(LIBRARY.get(name), raw)
    assert {k: values[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("name", "raw", "needle"),
    [
        ("log_analysis", {"top": "ten"}, "invalid value 'ten' for parameter top"),
        ("log_analysis", {"top": "0"}, "at least 1"),
        ("log_analysis", {"bucket": "week"}, "one of minute, hour, day"),
        ("log_analysis", {"colour": "red"}, "no parameter 'colour'"),
        ("csv_summary", {}, "needs parameter group_by"),
        ("checksum_manifest", {"fail_on_mismatch": "maybe"}, "true or false"),
        ("project_skeleton", {"package": "Not-Valid"}, "must match"),
    ],
)
def test_bad_parameters_are_one_clear_error(name: str, raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_params(LIBRARY.get(name), raw)
    assert needle in info.value.one_line()


HOSTILE = [
    '"); import os; os.system("id") #',
    "'''",
    '"""',
    "line\nbreak\r\nand\\backslash",
    "{{ 7*7 }}",
    "{% raw %}{% endraw %}",
    "\x00nul",
    "\u2028separator\u2029",
    "x" * 10_000,
    "\\N{BULLET}",
    "']; __import__('os').system('id'); x=['",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_data(value: str) -> None:
    scaffold = LIBRARY.get("csv_summary")
    source = render(scaffold, validate_params(scaffold, {"group_by": value, "pattern": value}))
    tree = ast.parse(source)
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("GROUP_BY", "PATTERN")
    }
    assert assigned == {"GROUP_BY": value, "PATTERN": value}
    clean = render(scaffold, validate_params(scaffold, {"group_by": "region"}))
    count = lambda src, kind: sum(isinstance(n, kind) for n in ast.walk(ast.parse(src)))  # noqa: E731
    assert count(source, ast.Call) == count(clean, ast.Call)
    assert count(source, ast.Import) == count(clean, ast.Import)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400", float("nan")])
def test_non_finite_numbers_are_a_usage_error(value: object) -> None:
    # nan passed `min = 0` (every comparison with nan is false) and then crashed rendering.
    scaffold = LIBRARY.get("project_plan")
    with pytest.raises(ConfigError) as info:
        validate_params(scaffold, {"default_estimate_days": value})
    assert "expected a finite number" in info.value.one_line()


def test_py_literal_refuses_objects() -> None:
    assert py_literal(["a", 1, None, True, {"k": 2.5}]) == "['a', 1, None, True, {'k': 2.5}]"
    with pytest.raises(ConfigError):
        py_literal(object())
    for value in (float("nan"), float("inf"), [1.0, float("-inf")]):
        with pytest.raises(ConfigError, match=r"cannot put .*inf|cannot put nan"):
            py_literal(value)


def test_template_output_must_go_through_a_filter(tmp_path: Path) -> None:
    root = tmp_path / "scaffolds"
    shutil.copytree(scaffolds_root() / "csv_summary", root / "csv_summary")
    plain = render(LIBRARY.get("csv_summary"), validate_params(LIBRARY.get("csv_summary"), {"group_by": "region"}))
    meta = root / "csv_summary" / "scaffold.toml"
    hostile = "Sums\\\\\\\"\\\"\\\"; import os; os.system(1) #\\n ''' "
    meta.write_text(meta.read_text().replace('title = "', 'title = "' + hostile, 1))
    scaffold = load_library(root).get("csv_summary")
    source = render(scaffold, validate_params(scaffold, {"group_by": "region"}))
    # The title stays inside the docstring: the program is the same as with a plain title.
    body, expected = ast.parse(source).body[1:], ast.parse(plain).body[1:]
    assert [ast.dump(n) for n in body] == [ast.dump(n) for n in expected]
    assert ast.get_docstring(ast.parse(source), clean=False).startswith("Sums/'")  # type: ignore[union-attr]
    template = root / "csv_summary" / "template.py.j2"
    template.write_text(template.read_text().replace("{{ params.group_by | py }}", "{{ params.group_by }}"))
    with pytest.raises(ConfigError, match="prints 'region' without a filter"):
        render(scaffold, validate_params(scaffold, {"group_by": "region"}))


def test_scaffold_agents_are_known_roles() -> None:
    from harness.generation.agents import load_roles

    roles = load_roles()
    assert {a for s in LIBRARY.scaffolds for a in s.agents} <= set(roles)
    assert LIBRARY.get("security_audit").agents == ("security-specialist",)
