"""Filling a scaffold: validate parameters against its schema, render it safely.

Parameters reach the script only as Python literals (the ``py`` filter writes ``repr`` of a
validated value), never as raw text, so a value like ``"); import os; os.system("id") #``
stays a string. Templates render in Jinja2's sandboxed environment with StrictUndefined, and
every ``{{ }}`` must go through ``py`` (code) or ``text`` (docstrings, comments): a template
that forgets the filter does not render.

A promoted scaffold (``program.py``) is not a template: its reviewed bytes are kept as they
are and each parameter's literal is written over its recorded span, last span first so the
earlier offsets stay valid. Every render is then compared with the reviewed program: the
same bytes outside the spans, the same syntax tree with the parameters' values masked, and
each span holding the value given (``literal_differences``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness import pysource
from harness.errors import ConfigError, Fix
from harness.generation.scaffolds import Parameter, Scaffold, Substitution, assigned_literals, check_program

__all__ = ["literal_differences", "py_literal", "render", "validate_params"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def py_literal(value: Any) -> str:
    """A Python literal for a plain data value; anything else is refused."""
    if isinstance(value, float) and not math.isfinite(value):
        # repr() gives `nan` or `inf`, a name rather than a literal: it would not even parse back.
        raise ConfigError(f"cannot put {value!r} into a script", hint="use a finite number")
    if value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(py_literal(v) for v in value) + "]"
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        text = "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    else:
        raise ConfigError(f"cannot put a {type(value).__name__} into a script", hint="use plain data values")
    # repr() escapes everything that could end the literal; prove it parses back to the value.
    if pysource.literal_eval(text) != (list(value) if isinstance(value, tuple) else value):
        raise ConfigError("a parameter value did not survive quoting", hint="use plain text")
    return text


def _coerce(name: str, spec: Parameter, raw: object) -> object:
    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"invalid value {raw!r} for parameter {name}",
            hint=f"{why} (e.g. {name}={spec.example})",
            name=name,
        )

    kind = spec.type
    value: object
    if kind == "bool":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            value = raw.strip().lower() in _TRUE
        else:
            raise bad("expected true or false")
    elif kind in ("int", "float"):
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = int(str(raw)) if kind == "int" else float(str(raw))
        except ValueError:
            raise bad(f"expected {'a whole number' if kind == 'int' else 'a number'}") from None
        # float() accepts nan and inf, and nan compares false with every bound: refuse them outright.
        if isinstance(value, float) and not math.isfinite(value):
            raise bad("expected a finite number")
        if spec.min is not None and value < spec.min:
            raise bad(f"must be at least {spec.min:g}")
        if spec.max is not None and value > spec.max:
            raise bad(f"must be at most {spec.max:g}")
    elif kind == "list[str]":
        if isinstance(raw, str):
            value = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, (list, tuple)) and all(isinstance(v, str) for v in raw):
            value = list(raw)
        else:
            raise bad("expected a comma-separated list")
    else:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise bad("expected text")
        value = str(raw)
        if kind == "choice" and value not in spec.choices:
            raise bad(f"must be one of {', '.join(spec.choices)}")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise bad(f"must match {spec.pattern}")
    return value


def validate_params(scaffold: Scaffold, raw: Mapping[str, object]) -> dict[str, object]:
    """Check and coerce parameters (CLI strings welcome) against the schema; apply defaults."""
    unknown = sorted(set(raw) - set(scaffold.parameters))
    if unknown:
        known = ", ".join(sorted(scaffold.parameters)) or "none"
        raise ConfigError(
            f"{scaffold.name} has no parameter {unknown[0]!r}", hint=f"its parameters: {known}", name=unknown[0]
        )
    values: dict[str, object] = {}
    for name, spec in scaffold.parameters.items():
        if name in raw:
            values[name] = _coerce(name, spec, raw[name])
        elif spec.required:
            raise ConfigError(
                f"{scaffold.name} needs parameter {name}",
                hint=f"give {name} (a {spec.type}, e.g. {spec.example!r}): {spec.description}",
                name=name,
            ).fixed_by(Fix("give_input", f"param:{name}", (spec.type, repr(spec.example), spec.description)))
        else:
            values[name] = spec.default
    return values


class _Vetted(str):
    """Text a filter made safe to put into the script (``py`` or ``text``)."""


def _text(value: object) -> _Vetted:
    """Plain words for a docstring or a comment: one line, no quotes that could close it, no escapes."""
    cleaned = "".join(c for c in str(value) if c.isprintable()).replace("\\", "/")
    cleaned = cleaned.replace('"', "'")
    while "'''" in cleaned:
        cleaned = cleaned.replace("'''", "'")
    return _Vetted(cleaned)


def _only_vetted(value: object) -> object:
    # Jinja2 calls this on every {{ }} output: anything not passed through |py or |text is refused,
    # so a template that forgets the filter fails to render instead of pasting raw text into code.
    if isinstance(value, _Vetted):
        return value
    raise _Unfiltered(f"{value!r}"[:80])


class _Unfiltered(Exception):
    """A template printed a value without |py or |text."""


def _masked(tree: ast.Module, statements: Sequence[ast.Assign | ast.AnnAssign]) -> str:
    # The parameters' values become one placeholder; every other node must match exactly.
    for statement in statements:
        statement.value = ast.Name(id="__parameter__", ctx=ast.Load())
    return ast.dump(tree)


def literal_differences(
    reviewed: bytes, rendered: str, substitutions: Sequence[Substitution], values: Mapping[str, object]
) -> list[str]:
    """How ``rendered`` differs from ``reviewed`` other than in the substituted literals (empty: it does not)."""
    try:
        old_tree = pysource.parse(reviewed.decode("utf-8"))
        data = rendered.encode("utf-8")
        new_tree = pysource.parse(rendered)
    except (UnicodeError, SyntaxError) as exc:
        return [f"does not parse: {exc}"]
    old_sites, new_sites = assigned_literals(old_tree, reviewed), assigned_literals(new_tree, data)
    if [s.constant for s in old_sites] != [s.constant for s in new_sites]:
        return ["its module-level assignments differ"]
    index = {(s.constant, s.start, s.end): i for i, s in enumerate(old_sites)}
    problems: list[str] = []
    chosen: list[int] = []
    for sub in substitutions:
        where = index.get((sub.constant, sub.start, sub.end))
        if where is None:
            return [f"{sub.constant} at bytes {sub.start}-{sub.end} is not an assignment's value"]
        chosen.append(where)
        try:
            value = pysource.literal_eval(new_sites[where].value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            problems.append(f"{sub.constant} is not a literal")
            continue
        expected = values.get(sub.parameter)
        if not _same(value, expected):
            problems.append(f"{sub.constant} is {json.dumps(value)[:60]}, not {json.dumps(expected)[:60]}")
    # Outside the spans the parser finds in each program, the bytes are the reviewed bytes.
    chosen.sort()
    old_cuts = [(old_sites[i].start, old_sites[i].end) for i in chosen]
    new_cuts = [(new_sites[i].start, new_sites[i].end) for i in chosen]
    if _outside(reviewed, old_cuts) != _outside(data, new_cuts):
        problems.append("its text outside the parameters' literals differs")
    masked_old = _masked(old_tree, [old_sites[i].statement for i in chosen])
    if masked_old != _masked(new_tree, [new_sites[i].statement for i in chosen]):
        problems.append("its syntax tree differs outside the parameters' literals")
    return problems


def _same(a: object, b: object) -> bool:
    # JSON tells True from 1 and 1 from 1.0, which == does not; a tuple is the list it renders as.
    return json.dumps(list(a) if isinstance(a, tuple) else a) == json.dumps(list(b) if isinstance(b, tuple) else b)


def _outside(data: bytes, spans: Sequence[tuple[int, int]]) -> list[bytes]:
    pieces, cursor = [], 0
    for start, end in spans:
        pieces.append(data[cursor:start])
        cursor = end
    return [*pieces, data[cursor:]]


def _render_program(scaffold: Scaffold, params: Mapping[str, object]) -> str:
    data = scaffold.program_path.read_bytes()
    try:
        check_program(scaffold, data)
    except ValueError as exc:
        raise ConfigError(
            f"scaffold {scaffold.name} no longer matches its recorded parameters: {exc}",
            hint="promote the reviewed script again",
        ) from None
    source = data
    for sub in sorted(scaffold.substitutions, key=lambda s: s.start, reverse=True):
        value = params[sub.parameter]
        if _same(value, scaffold.parameters[sub.parameter].default):
            continue  # the reviewed spelling stays (`"a"` is not repr's `'a'`): defaults give back the exact bytes
        source = source[: sub.start] + py_literal(value).encode("utf-8") + source[sub.end :]
    text = source.decode("utf-8")
    problems = literal_differences(data, text, scaffold.substitutions, params)
    if problems:
        raise ConfigError(
            f"scaffold {scaffold.name} rendered more than its parameters: {problems[0]}",
            hint="report this: promoted scaffolds only ever change their parameters' literals",
        )
    return text


def render(scaffold: Scaffold, params: Mapping[str, object]) -> str:
    """Render the scaffold (its template, or its reviewed program) with validated ``params``; returns source."""
    # Jinja's lexer and the literal checks parse Python: one thread at a time (harness.pysource).
    with pysource.exclusive():
        return _render(scaffold, params)


def _render(scaffold: Scaffold, params: Mapping[str, object]) -> str:
    if scaffold.kind == "program":
        return _render_program(scaffold, params)
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_only_vetted
    )
    env.filters["py"] = lambda value: _Vetted(py_literal(value))
    env.filters["text"] = _text
    try:
        template = env.from_string(scaffold.template_path.read_text(encoding="utf-8"))
        source = template.render(params=dict(params), scaffold={"name": scaffold.name, "title": scaffold.title})
    except TemplateError as exc:
        raise ConfigError(f"scaffold {scaffold.name} failed to render: {exc}", hint="fix the template") from None
    except _Unfiltered as exc:
        raise ConfigError(
            f"scaffold {scaffold.name} prints {exc} without a filter",
            hint="write {{ value | py }} for code and {{ value | text }} in docstrings or comments",
        ) from None
    try:
        pysource.parse(source)
    except SyntaxError as exc:
        raise ConfigError(
            f"scaffold {scaffold.name} rendered invalid Python (line {exc.lineno}): {exc.msg}", hint="fix the template"
        ) from None
    return source
