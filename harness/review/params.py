"""Parameters for a promoted scaffold, found in the reviewed script's own constants.

A generated script hard-codes its choices (``TOP = 5``, ``PATTERN = "**/*.csv"``). At
promotion the module-level literal constants are proposed as parameters (by the LLM when
one is configured, which picks the ones worth exposing and names and describes them; by a
plain rule otherwise), a person confirms, and each chosen constant is recorded as a
``Substitution``: the byte span of its literal in the reviewed program. The program itself is
kept verbatim and never becomes a template (so nothing in it, a comment included, can be
read as template syntax); rendering writes each value over its span as a typed literal, and
with the defaults it gives back the reviewed bytes.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness import pysource
from harness.errors import HarnessError, RunError
from harness.generation.scaffolds import Substitution, assigned_literals

__all__ = ["DECLARE_TOOL", "Proposal", "constants", "propose", "propose_with_llm", "substitutions"]

ParamKind = Literal["str", "int", "float", "bool", "list[str]", "choice"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")

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
    """A module-level literal constant and where its value sits in the source (UTF-8 byte offsets)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: JsonValue
    kind: ParamKind
    start: int
    end: int
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
    tree = pysource.parse(script)
    data = script.encode("utf-8")
    # The parser's lines (bytes.splitlines ends lines where it does; str.splitlines also at \f and more).
    lines = [line.decode("utf-8") for line in data.splitlines()]
    seen: dict[str, int] = {}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    seen[name.id] = seen.get(name.id, 0) + 1
    found: dict[str, _Found] = {}
    for site in assigned_literals(tree, data):
        try:
            literal = pysource.literal_eval(site.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        kind = _kind(literal)
        if kind is None:
            continue
        lineno = site.statement.lineno
        above = lines[lineno - 2].strip() if 2 <= lineno <= len(lines) + 1 else ""
        # What follows the value on its last line (a `#` before the value may sit inside a string).
        rest = data[site.end :].splitlines()
        tail = rest[0].decode("utf-8") if rest else ""
        comment = tail.split("#", 1)[1].strip() if "#" in tail else ""
        if not comment and above.startswith("#"):
            comment = above.lstrip("#").strip()
        found[site.constant] = _Found(
            name=site.constant, value=literal, kind=kind, start=site.start, end=site.end, comment=comment[:200]
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


def substitutions(script: str, chosen: list[Proposal]) -> list[Substitution]:
    """Where each chosen constant's literal sits in ``script`` (byte offsets of its UTF-8 encoding)."""
    found = constants(script)
    located = []
    for proposal in chosen:
        target = found.get(proposal.constant)
        if target is None:
            raise RunError(f"{proposal.constant} is not a constant of the script", hint="choose another")
        located.append(Substitution(parameter=proposal.name, constant=target.name, start=target.start, end=target.end))
    return located
