"""The scaffold library: script templates with validated metadata.

A scaffold is a folder ``scaffolds/<name>/`` holding ``scaffold.toml`` (what it does, its
typed parameters, inputs, outputs, examples), ``example/`` (small input data for its
examples) and its script in one of two kinds:

- ``template.py.j2``: a Jinja2 template, for the scaffolds the team writes by hand;
- ``program.py``: a reviewed program kept byte for byte, for scaffolds promoted from an
  approved generated script. Jinja never reads it: scaffold.toml's ``[[substitutions]]``
  record, for each parameter, the byte span of the literal assigned to one module-level
  constant, and rendering writes the value there as a Python literal. The spans are
  checked against the program's syntax tree at load, so a scaffold whose program and
  metadata disagree does not load.

A broken scaffold is reported with the file and field at fault; the rest of the library
still loads.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator, model_validator

from harness import pysource
from harness.assertions import Assertion
from harness.errors import NotFound, UserError

__all__ = [
    "Example",
    "Library",
    "LiteralSite",
    "Parameter",
    "Scaffold",
    "Substitution",
    "assigned_literals",
    "check_program",
    "load_library",
    "scaffolds_root",
]

ParamType = Literal["str", "int", "float", "bool", "list[str]", "choice"]
WorkflowKind = Literal["automation", "security_audit", "research", "development", "project_management"]


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Meta):
    """One typed parameter of a scaffold."""

    type: ParamType
    description: str
    default: JsonValue = None
    required: bool = Field(False, description="true when there is no default")
    choices: tuple[str, ...] = ()
    example: JsonValue
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    aliases: dict[str, str] = Field(
        default_factory=dict, description="words a request may use for a choice, e.g. type -> extension"
    )

    @model_validator(mode="before")
    @classmethod
    def _required_without_default(cls, data: object) -> object:
        if isinstance(data, dict) and "default" not in data:
            data = {**data, "required": True}
        return data

    @model_validator(mode="after")
    def _choices_for_choice(self) -> Parameter:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice parameter needs choices")
        if any(target not in self.choices for target in self.aliases.values()):
            raise ValueError("every alias must name one of the choices")
        return self


InputKind = Literal["table", "log", "source", "text", "files"]


class FileSpec(_Meta):
    """A file or pattern the scaffold reads or writes."""

    path: str
    description: str
    kind: InputKind | None = Field(
        None, description="what an input must hold for the scaffold to work on it (dispatch checks the inputs)"
    )


class Expectation(_Meta):
    """What an example run must produce (checked by the tests)."""

    files: tuple[str, ...] = ()
    contains: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    exit_code: int = 0


class Example(_Meta):
    """A plain-language request this scaffold serves, with parameters and fixture input."""

    request: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    input: str | None = Field(None, description="folder under the scaffold, mounted as /input/<name>")
    expect: Expectation = Field(default_factory=Expectation)


class Substitution(_Meta):
    """Where a promoted scaffold's parameter goes: the value of ``constant``, bytes [start, end) of program.py."""

    parameter: str
    constant: str
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class Scaffold(_Meta):
    """A scaffold's metadata plus where its template (or reviewed program) lives."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")]
    title: str
    description: str
    workflow_type: WorkflowKind
    keywords: tuple[str, ...]
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    inputs: tuple[FileSpec, ...] = ()
    outputs: tuple[FileSpec, ...] = ()
    expected_runtime_s: float = Field(5.0, gt=0)
    assertions: tuple[Assertion, ...] = Field((), description="checked on the outputs of every run")
    examples: Annotated[tuple[Example, ...], Field(min_length=1)]
    egress: tuple[str, ...] = Field((), description="hosts its runs may fetch from through the host (reviewed)")
    agents: tuple[str, ...] = Field((), description="agent roles it may ask for with hr.agent (one call each)")
    provenance: dict[str, str] = Field(default_factory=dict, description="where a promoted scaffold came from")
    substitutions: tuple[Substitution, ...] = Field((), description="a program scaffold's parameter literals")
    kind: Literal["jinja", "program"] = Field("jinja", description="set by the loader from the file present")
    folder: Path

    @field_validator("egress")
    @classmethod
    def _egress_entries(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        from harness.execution.egress import parse_allow

        try:
            return parse_allow(hosts)
        except UserError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _assertions_name_parameters(self) -> Scaffold:
        for assertion in self.assertions:
            named = {*assertion.when, *re.findall(r"\{(\w+)\}", assertion.file)}
            unknown = sorted(named - set(self.parameters))
            if unknown:
                raise ValueError(f"assertion {assertion.description!r} names unknown parameters: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _substitutions_cover_parameters(self) -> Scaffold:
        if self.kind == "jinja":
            if self.substitutions:
                raise ValueError("substitutions: only a promoted scaffold (program.py) has them")
            return self
        named = sorted(s.parameter for s in self.substitutions)
        if named != sorted(self.parameters):
            # One literal per parameter, no more: every value the program can take is listed here.
            raise ValueError(
                f"substitutions: need exactly one per parameter ({', '.join(sorted(self.parameters)) or 'none'}),"
                f" found {', '.join(named) or 'none'}"
            )
        spans = sorted((s.start, s.end, s.parameter) for s in self.substitutions)
        for start, end, parameter in spans:
            if end <= start:
                raise ValueError(f"substitutions: {parameter} has an empty span {start}-{end}")
        for (_, end, first), (start, _, second) in pairwise(spans):
            if start < end:
                raise ValueError(f"substitutions: {first} and {second} overlap")
        return self

    @cached_property
    def version(self) -> str:
        """A short hash of the template and its metadata: history tells versions of a scaffold apart (read once)."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.read_bytes() if path.is_file() else b"")
        return digest.hexdigest()[:16]

    @property
    def files(self) -> tuple[Path, ...]:
        """The files the script is made from, metadata first: what the version hash (and an approval) covers."""
        source = self.program_path if self.kind == "program" else self.template_path
        return (self.folder / "scaffold.toml", source)

    @property
    def template_path(self) -> Path:
        """The Jinja2 source of the script (a hand-written scaffold)."""
        return self.folder / "template.py.j2"

    @property
    def program_path(self) -> Path:
        """The reviewed program, verbatim (a promoted scaffold)."""
        return self.folder / "program.py"


class Library:
    """The scaffolds that loaded, and one line for each that did not."""

    def __init__(self, root: Path, scaffolds: list[Scaffold], errors: list[str]) -> None:
        self.root = root
        self.scaffolds = scaffolds
        self.errors = errors
        self._by_name = {s.name: s for s in scaffolds}

    def names(self) -> list[str]:
        """Scaffold names, sorted."""
        return sorted(self._by_name)

    def get(self, name: str) -> Scaffold:
        """The scaffold called ``name``; NotFound naming close matches when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see `harness templates list`"
            raise NotFound(f"no scaffold called {name!r}", hint=hint, id=name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.scaffolds)


def scaffolds_root(environ: Mapping[str, str] | None = None) -> Path:
    """``HARNESS_SCAFFOLDS_DIR``, else the package's data, else the source tree's ``scaffolds/``."""
    env = os.environ if environ is None else environ
    if env.get("HARNESS_SCAFFOLDS_DIR"):
        return Path(env["HARNESS_SCAFFOLDS_DIR"])
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_data" / "scaffolds"
    return packaged if packaged.is_dir() else here.parent / "scaffolds"


class LiteralSite(NamedTuple):
    """A module-level ``NAME = value`` (or ``NAME: T = value``) and its value's UTF-8 byte span."""

    constant: str
    start: int
    end: int
    value: ast.expr
    statement: ast.Assign | ast.AnnAssign


def _line_starts(data: bytes) -> list[int]:
    # The parser ends lines at \n, \r\n and a lone \r, exactly the separators bytes.splitlines knows.
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def assigned_literals(tree: ast.Module, data: bytes) -> list[LiteralSite]:
    """Each module-level assignment of a value to one plain name in ``tree`` (parsed from ``data``), in order."""
    starts = _line_starts(data)
    sites = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        else:
            continue
        value = node.value
        if not isinstance(target, ast.Name) or value is None or value.end_lineno is None:
            continue
        # The syntax tree's columns are UTF-8 byte offsets within the line.
        start = starts[value.lineno - 1] + value.col_offset
        end = starts[value.end_lineno - 1] + (value.end_col_offset or 0)
        sites.append(LiteralSite(target.id, start, end, value, node))
    return sites


def _same_value(a: object, b: object) -> bool:
    # JSON tells True from 1 and 1 from 1.0, which == does not.
    return json.dumps(a) == json.dumps(b)


def check_program(scaffold: Scaffold, data: bytes) -> tuple[ast.Module, list[LiteralSite]]:
    """Check a program scaffold's bytes against its substitutions; ValueError naming the first mismatch."""
    try:
        tree = pysource.parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("program.py is not UTF-8") from None
    except SyntaxError as exc:
        raise ValueError(f"program.py does not parse (line {exc.lineno}): {exc.msg}") from None
    sites = assigned_literals(tree, data)
    by_span = {(site.constant, site.start, site.end): site for site in sites}
    for sub in scaffold.substitutions:
        where = f"substitutions: {sub.parameter} at bytes {sub.start}-{sub.end}"
        site = by_span.get((sub.constant, sub.start, sub.end))
        if site is None:
            raise ValueError(f"{where} is not the value assigned to {sub.constant} in program.py")
        try:
            literal = pysource.literal_eval(site.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"{where} is not a literal") from None
        default = scaffold.parameters[sub.parameter].default
        if not _same_value(literal, default):
            raise ValueError(f"{where} is {json.dumps(literal)[:60]}, its default is {json.dumps(default)[:60]}")
    return tree, sites


def _load_one(folder: Path) -> Scaffold:
    meta_path = folder / "scaffold.toml"
    with meta_path.open("rb") as fh:
        data = tomllib.load(fh)
    for key in ("kind", "folder"):
        if key in data:
            raise ValueError(f"{key}: set by the loader from the folder, not in scaffold.toml")
    template, program = (folder / "template.py.j2").is_file(), (folder / "program.py").is_file()
    if template and program:
        raise ValueError("has both template.py.j2 and program.py: keep one")
    if not template and not program:
        raise ValueError("template.py.j2 is missing")
    scaffold = Scaffold.model_validate({**data, "folder": folder, "kind": "program" if program else "jinja"})
    if scaffold.name != folder.name:
        raise ValueError(f"name: {scaffold.name!r} must match its folder {folder.name!r}")
    if scaffold.kind == "program":
        check_program(scaffold, scaffold.program_path.read_bytes())
    for example in scaffold.examples:
        if example.input and not (folder / example.input).exists():
            raise ValueError(f"examples.input: {example.input!r} does not exist in the scaffold folder")
    return scaffold


def load_library(root: Path | None = None) -> Library:
    """Load every scaffold under ``root``; broken ones become one error line each."""
    root = root or scaffolds_root()
    scaffolds: list[Scaffold] = []
    errors: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if not (folder / "scaffold.toml").is_file():
            continue
        where = f"{folder.name}/scaffold.toml"
        try:
            scaffolds.append(_load_one(folder))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(top level)"
            errors.append(f"{where}: {field}: {first['msg']}")
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{where}: not valid TOML: {exc}")
        except (OSError, ValueError) as exc:
            errors.append(f"{where}: {exc}")
    return Library(root, scaffolds, errors)
