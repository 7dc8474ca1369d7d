"""Parameters for a promoted scaffold, found in the reviewed script's own constants.

A generated script hard-codes its choices (``TOP = 5``, ``PATTERN = "**/*.csv"``). At
promotion the module-level literal constants are proposed as parameters (by the LLM when
one is configured, which picks the ones worth exposing and names and describes them; by a
plain rule otherwise), a person confirms, and each chosen constant's value in the template
becomes ``{{ params.<name>|py }}``. The template rendered with the defaults is the reviewed
program (checked by comparing syntax trees), so promotion changes nothing until someone
passes another value, and every value still reaches the script as a typed literal.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness.errors import HarnessError, RunError

__all__ = ["DECLARE_TOOL", "Proposal", "constants", "parameterise", "propose", "propose_with_llm"]

ParamKind = Literal["str", "int", "float", "bool", "list[str]", "choice"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RAW_END = re.compile(r"\{%-?\s*endraw\s*-?%\}")

DECLARE_TOOL: dict[str, Any] = {
    "name": "declare_parameters",
    "description": "Choose which of the script's constants become parameters of a reusable scaffold.",
    "input_schema": {
        "type": "object",
        "properties": {
            "parameters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "constant": {"type": "string", "description": "the constant's name in the script"},
                        "name": {"type": "string", "description": "parameter name: lower_snake_case"},
                        "description": {"type": "string", "description": "what it controls, one line"},
                        "choices": {"type": "array", "items": {"type": "string"}, "description": "only if closed"},
                    },
                    "required": ["constant", "name", "description"],
                },
            }
        },
        "required": ["parameters"],
    },
}

_SYSTEM = (
    "You turn a reviewed Python script into a reusable template. From the module-level constants listed, "
    "choose those a user would plausibly change between runs (inputs, thresholds, patterns, output names, "
    "formats) and leave out internal details. Give each a lower_snake_case name and a one-line description; "
    "give choices only when the value can sensibly be one of a few words. Call declare_parameters once."
)


class Proposal(BaseModel):
    """A constant of the script proposed as a scaffold parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    constant: str
    name: str
    type: ParamKind
    default: JsonValue
    description: str
    choices: tuple[str, ...] = ()
    source: Literal["rule", "llm"] = "rule"

    def toml(self) -> list[str]:
        """The ``[parameters.<name>]`` table for scaffold.toml."""
        dump = json.dumps  # JSON scalars and string lists are valid TOML values
        lines = [
            f"[parameters.{self.name}]",
            f"type = {dump(self.type)}",
            f"description = {dump(self.description)}",
            f"default = {dump(self.default)}",
            f"example = {dump(self.default)}",
        ]
        if self.choices:
            lines.append(f"choices = {dump(list(self.choices))}")
        return [*lines, ""]


class _Found(BaseModel):
    """A module-level literal constant and where its value sits in the source."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: JsonValue
    kind: ParamKind
    start: tuple[int, int]
    end: tuple[int, int]
    comment: str = ""


def _kind(value: object) -> ParamKind | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list[str]"
    return None


def constants(script: str) -> dict[str, _Found]:
    """Module-level ``NAME = <literal>`` assignments made exactly once, by name."""
    tree = ast.parse(script)
    lines = script.splitlines()
    seen: dict[str, int] = {}
    found: dict[str, _Found] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    seen[name.id] = seen.get(name.id, 0) + 1
        if value is None or len(targets) != 1 or not isinstance(targets[0], ast.Name):
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        kind = _kind(literal)
        if kind is None or value.end_lineno is None or value.end_col_offset is None:
            continue
        row = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
        above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
        comment = row.split("#", 1)[1].strip() if "#" in row[value.end_col_offset :] else ""
        if not comment and above.startswith("#"):
            comment = above.lstrip("#").strip()
        found[targets[0].id] = _Found(
            name=targets[0].id,
            value=literal,
            kind=kind,
            start=(value.lineno, value.col_offset),
            end=(value.end_lineno, value.end_col_offset),
            comment=comment[:200],
        )
    # A name assigned again (anywhere at module level) is not a constant.
    return {name: f for name, f in found.items() if seen.get(name) == 1}


def _param_name(constant: str) -> str:
    name = constant.lower().strip("_")
    return name if _NAME.match(name) and not keyword.iskeyword(name) else ""


def propose(script: str) -> list[Proposal]:
    """The rule without an LLM: every UPPER_CASE literal constant, named in lower case."""
    proposals = []
    for found in constants(script).values():
        name = _param_name(found.name)
        if not _UPPER.match(found.name) or not name:
            continue
        proposals.append(
            Proposal(
                constant=found.name,
                name=name,
                type=found.kind,
                default=found.value,
                description=found.comment or f"{found.name} in the reviewed script",
            )
        )
    return proposals


class _Choice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    constant: str
    name: str
    description: str = Field(min_length=1, max_length=300)
    choices: list[str] = Field(default_factory=list, max_length=30)


def propose_with_llm(llm: Any, script: str, request: str) -> tuple[list[Proposal], list[str]]:
    """The LLM's choice among the script's constants, validated; falls back to the rule when it fails."""
    found = constants(script)
    if not found:
        return [], []
    listing = {name: {"value": f.value, "comment": f.comment} for name, f in found.items()}
    prompt = (
        f"The request the script was written for: {request}\n\nConstants:\n{json.dumps(listing, indent=1)}"
        f"\n\n<script>\n{script}\n</script>"
    )
    try:
        payload, problem = llm.call_tool(
            system=_SYSTEM, prompt=prompt, tool=DECLARE_TOOL, purpose="proposing parameters", max_tokens=2048
        )
    except HarnessError as exc:
        return propose(script), [f"the LLM could not propose parameters ({exc.message}); the plain rule was used"]
    items = payload.get("parameters") if payload is not None else None
    if not isinstance(items, list):
        why = problem or "declare_parameters had no parameters list"
        return propose(script), [f"the LLM's proposal was unusable ({why}); the plain rule was used"]
    proposals: list[Proposal] = []
    notes: list[str] = []
    for raw in items:
        try:
            choice = _Choice.model_validate(raw)
        except ValidationError:
            notes.append(f"dropped a malformed entry: {json.dumps(raw)[:80]}")
            continue
        target = found.get(choice.constant)
        name = _param_name(choice.name)
        if target is None:
            notes.append(f"dropped {choice.constant!r}: no such constant in the script")
        elif not name or name != choice.name or any(p.name == name for p in proposals):
            notes.append(f"dropped {choice.constant}: {choice.name!r} is not a usable, unique parameter name")
        elif any(p.constant == target.name for p in proposals):
            notes.append(f"dropped a second entry for {target.name}")
        elif choice.choices and (target.kind != "str" or target.value not in choice.choices):
            notes.append(f"dropped {target.name}: its value {target.value!r} is not one of its choices")
        else:
            proposals.append(
                Proposal(
                    constant=target.name,
                    name=name,
                    type="choice" if choice.choices else target.kind,
                    default=target.value,
                    description=choice.description.strip(),
                    choices=tuple(choice.choices),
                    source="llm",
                )
            )
    return proposals, notes


def parameterise(script: str, chosen: list[Proposal]) -> str:
    """The Jinja2 template: the script verbatim in raw blocks, each chosen constant's value a parameter."""
    if _RAW_END.search(script):
        raise RunError("the script contains a Jinja raw-block end", hint="it cannot be kept verbatim")
    found = constants(script)
    data = script.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    for proposal in chosen:
        target = found.get(proposal.constant)
        if target is None:
            raise RunError(f"{proposal.constant} is not a constant of the script", hint="choose another")
        # The AST's columns are UTF-8 byte offsets.
        begin = starts[target.start[0] - 1] + target.start[1]
        end = starts[target.end[0] - 1] + target.end[1]
        spans.append((begin, end, proposal.name))
    parts = []
    cursor = 0
    for begin, end, name in sorted(spans):
        parts.append(_raw(data[cursor:begin].decode("utf-8")))
        parts.append("{{ params." + name + "|py }}")
        cursor = end
    parts.append(_raw(data[cursor:].decode("utf-8")))
    return "".join(parts)


def _raw(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""
