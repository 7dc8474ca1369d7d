"""Issue 9, item 3: template syntax in an approved script's comments cannot hide code in a promoted scaffold.

The attack: promotion used to wrap the reviewed script in Jinja ``{% raw %}`` blocks, guarded by
a pattern that missed the whitespace-control forms of ``endraw``. A comment could close the raw
block and hold template logic that emits code only when a parameter differs from its default,
while the check "the defaults render the reviewed program" still passed (comments are not in
the syntax tree). Now the program is kept verbatim and never read as a template.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import Refused
from harness.generation.render import literal_differences, render, validate_params
from harness.generation.scaffolds import load_library
from harness.review.params import propose
from harness.review.promote import EDGE_TEXT, probes, promote
from harness.review.store import GeneratedRecord, GeneratedStore

# Every whitespace-control spelling of the raw-block end; the old guard caught only some.
ENDRAW = [
    "{% endraw %}",
    "{%+ endraw %}",
    "{% endraw +%}",
    "{%+ endraw +%}",
    "{%- endraw %}",
    "{% endraw -%}",
    "{%- endraw -%}",
    "{%- endraw +%}",
    "{%+ endraw -%}",
]


def attack(endraw: str) -> str:
    """An approved script whose comments hide a payload for any X but 5 (it worked on main for the `+` forms)."""
    return (
        "X = 5  # how many\n"
        # The shape: the payload appears in the comment only for another value.
        f'# {endraw}{{% if params.x != 5 %}}import os; os.system("touch /tmp/pwned"){{% endif %}}{{% raw %}}\n'
        # A variant that makes it code: a filter block deletes the `#~` that comments it out.
        f'# {endraw}{{% if params.x != 5 %}}{{% filter replace("#~", "") %}}\n'
        '#~import os; os.system("touch /tmp/pwned")\n'
        "# {% endfilter %}{% endif %}{% raw %}\n"
        "print(X)\n"
    )


def runs_code_from(source: str) -> set[str]:
    """The modules a program imports and the functions it calls by attribute."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.add(node.func.attr)
    return names


@pytest.mark.parametrize("endraw", ENDRAW)
def test_endraw_in_a_comment_cannot_hide_a_payload(tmp_path: Path, endraw: str) -> None:
    script = attack(endraw)
    store, record_id = approved(tmp_path, script)
    folder = promote(
        store, record_id, "counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(script)
    )
    assert not (folder / "template.py.j2").exists()
    assert (folder / "program.py").read_bytes() == script.encode("utf-8")
    scaffold = load_library(tmp_path / "lib").get("counter")
    for value in (6, 0, -1, 10**30):
        rendered = render(scaffold, validate_params(scaffold, {"x": str(value)}))
        # The payload's text stays in its comments, exactly as reviewed; it never becomes code.
        assert runs_code_from(rendered) == runs_code_from(script) == set()
        assert rendered == script.replace("X = 5  #", f"X = {value}  #", 1)
        assert literal_differences(script.encode("utf-8"), rendered, scaffold.substitutions, {"x": value}) == []


def test_every_probe_value_changes_only_the_literal(tmp_path: Path) -> None:
    script = (
        '"""Names — with a non-ASCII docstring."""\n'
        "# {%+ endraw %}{{ params.pattern }}}}\n"
        'PATTERN = "*.txt"  # {% endraw +%}\n'
        "TOP = 5\n"
        "RATIO = 0.5\n"
        "VERBOSE = False\n"
        'SKIP = ["a"]\n'
        "print(PATTERN, TOP, RATIO, VERBOSE, SKIP)\n"
    )
    store, record_id = approved(tmp_path, script)
    promote(store, record_id, "edge", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(script))
    scaffold = load_library(tmp_path / "lib").get("edge")
    originals = {"pattern": '"*.txt"', "top": "5", "ratio": "0.5", "verbose": "False", "skip": '["a"]'}
    constants = {"pattern": "PATTERN", "top": "TOP", "ratio": "RATIO", "verbose": "VERBOSE", "skip": "SKIP"}
    tried = probes(scaffold)
    assert {"pattern": "{% endraw %}"} in tried and {"pattern": "two\nlines\r\nand a \\ backslash\\"} in tried
    assert {"top": 6} in tried and {"verbose": True} in tried and {"skip": list(EDGE_TEXT)} in tried
    for probe in tried:
        values = validate_params(scaffold, probe)
        rendered = render(scaffold, values)
        expected = script
        for name, value in values.items():
            if value != scaffold.parameters[name].default:
                old = f"{constants[name]} = {originals[name]}"
                expected = expected.replace(old, f"{constants[name]} = {value!r}", 1)
        assert rendered == expected, probe
        module = {
            n.targets[0].id: ast.literal_eval(n.value)  # type: ignore[attr-defined]
            for n in ast.parse(rendered).body
            if isinstance(n, ast.Assign)
        }
        assert module == {constants[k]: v for k, v in values.items()}, probe


def approved(tmp_path: Path, script: str) -> tuple[GeneratedStore, str]:
    store = GeneratedStore(tmp_path / "generated", tmp_path / "data")
    record = GeneratedRecord(
        id=store.new_id(), created_at=store.now(), request="count the files", strategy="generate_custom", model="m"
    )
    store.save(record, script)
    store.transition(record.id, "approved", reviewer="ada")
    (tmp_path / "lib").mkdir(exist_ok=True)
    return store, record.id


def test_a_rendering_that_changes_more_than_the_literal_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand in for a quoting bug: values reach the program with code after them.
    import harness.generation.render as render_module

    quoted = render_module.py_literal
    monkeypatch.setattr(render_module, "py_literal", lambda value: quoted(value) + "; import os")
    script = attack("{%+ endraw %}")
    store, record_id = approved(tmp_path, script)
    with pytest.raises(
        Refused,
        match=r"rendered more than its parameters: its text outside .* \(another value of x\); nothing was kept",
    ):
        promote(store, record_id, "counter", library_root=tmp_path / "lib", reviewer="ada", parameters=propose(script))
    assert not (tmp_path / "lib" / "counter").exists()
    assert store.load(record_id)[0].status == "approved"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.replace("# how many", "# how much"), "text outside the parameters' literals differs"),
        (lambda s: s.replace("X = 6", "X = 6; import os"), "syntax tree differs"),
        (lambda s: s.replace("X = 6", "X = 7"), "X is 7, not 6"),
        (lambda s: s.replace("X = 6", "X = int('6')"), "X is not a literal"),
        (lambda s: s.replace("X = 6", "X = 6\nY = 1"), "module-level assignments differ"),
    ],
)
def test_literal_differences_sees_any_other_change(change: Callable[[str], str], problem: str) -> None:
    from harness.generation.scaffolds import Substitution

    script = attack("{%+ endraw %}")
    start = script.index("5")
    subs = [Substitution(parameter="x", constant="X", start=start, end=start + 1)]
    rendered = script.replace("X = 5", "X = 6", 1)
    assert literal_differences(script.encode(), rendered, subs, {"x": 6}) == []
    found = literal_differences(script.encode(), change(rendered), subs, {"x": 6})
    assert any(problem in p for p in found), found
