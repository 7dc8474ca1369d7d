"""Code hidden in string literals: format templates, doctest examples and string annotations.

The container, not these checks, is the security boundary. Strings are not code to the
parser, but three kinds become code (or attribute access) at run time, so the AST policy
looks inside them:

* format templates: ``'{0.__class__.__mro__}'.format(x)`` reads attributes without a dot in
  the source. A template can be applied far from where it is written, so it is judged where
  it is written; only reads of Python's internals are refused.
* doctest examples: ``doctest.testmod()`` runs every ``>>>`` line of the script's docstrings.
* string annotations: ``typing.get_type_hints`` and ``functools.singledispatch`` evaluate them.
"""

from __future__ import annotations

import ast
import doctest
import re
import string

from harness import pysource
from harness.checks.rules import INTROSPECTION_ATTRS, SAFE_DUNDER_READS

__all__ = [
    "ANNOTATION_NODES",
    "annotation_expression",
    "doctest_examples",
    "is_dunder",
    "is_internal",
    "unsafe_format_field",
]

_FORMAT_SUSPECT = re.compile(r"\{[^{}]*[.\[]")
_FIELD_PART = re.compile(r"\.([^.\[]*)|\[([^\]]*)\]")
# What a type expression is made of: names, attributes, subscripts, literals, `|`, `-1`, `*Ts`.
ANNOTATION_NODES = (
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Starred,
    ast.expr_context,
    ast.BinOp,
    ast.BitOr,
    ast.UnaryOp,
    ast.unaryop,
)


def is_dunder(name: str) -> bool:
    """``__name__``-shaped."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_internal(name: str) -> bool:
    """A dunder outside the harmless set, or a frame/code attribute."""
    return (is_dunder(name) and name not in SAFE_DUNDER_READS) or name in INTROSPECTION_ATTRS


def unsafe_format_field(template: str, depth: int = 0) -> str | None:
    """The first format field that reads an internal attribute or item (``{0.__class__}``, ``{0[__globals__]}``)."""
    if "{" not in template or not _FORMAT_SUSPECT.search(template):
        return None
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None  # str.format would refuse this template too
    for _, field, spec, _ in parsed:
        if field:
            for attr, key in _FIELD_PART.findall(field):
                if is_internal(attr) or is_internal(key):
                    return field
        if spec and "{" in spec and depth < 2:
            nested = unsafe_format_field(spec, depth + 1)
            if nested:
                return nested
    return None


def doctest_examples(text: str) -> list[tuple[int, ast.Module]]:
    """The doctest examples in ``text`` that parse, with their 0-based line within it."""
    if ">>>" not in text:
        return []
    try:
        examples = doctest.DocTestParser().get_examples(text)
    except ValueError:
        return []  # doctest refuses the string too
    parsed = []
    for example in examples:
        try:
            parsed.append((example.lineno, pysource.parse(example.source)))
        except (SyntaxError, ValueError):
            continue  # doctest reports it; it never runs
    return parsed


def annotation_expression(text: str) -> ast.expr | None:
    """The expression a string annotation holds, if it is one (typing cannot evaluate anything else)."""
    try:
        return pysource.parse_expression(text.strip()).body
    except (SyntaxError, ValueError):
        return None
