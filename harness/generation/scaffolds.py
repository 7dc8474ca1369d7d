"""The scaffold library: Jinja2 script templates with validated metadata.

A scaffold is a folder ``scaffolds/<name>/`` holding ``template.py.j2`` (the script),
``scaffold.toml`` (what it does, its typed parameters, inputs, outputs, examples) and
``example/`` (small input data for its examples). A broken scaffold is reported with the
file and field at fault; the rest of the library still loads.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator, model_validator

from harness.assertions import Assertion
from harness.errors import UserError

__all__ = ["Example", "Library", "Parameter", "Scaffold", "load_library", "scaffolds_root"]

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
        return self


class FileSpec(_Meta):
    """A file or pattern the scaffold reads or writes."""

    path: str
    description: str


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


class Scaffold(_Meta):
    """A scaffold's metadata plus where its template lives."""

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

    @cached_property
    def version(self) -> str:
        """A short hash of the template and its metadata: history tells versions of a scaffold apart (read once)."""
        digest = hashlib.sha256()
        for path in (self.folder / "scaffold.toml", self.template_path):
            digest.update(path.read_bytes() if path.is_file() else b"")
        return digest.hexdigest()[:16]

    @property
    def template_path(self) -> Path:
        """The Jinja2 source of the script."""
        return self.folder / "template.py.j2"


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
        """The scaffold called ``name``; UserError naming close matches when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see `harness templates list`"
            raise UserError(f"no scaffold called {name!r}", hint=hint) from None

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


def _load_one(folder: Path) -> Scaffold:
    meta_path = folder / "scaffold.toml"
    with meta_path.open("rb") as fh:
        data = tomllib.load(fh)
    scaffold = Scaffold.model_validate({**data, "folder": folder})
    if scaffold.name != folder.name:
        raise ValueError(f"name: {scaffold.name!r} must match its folder {folder.name!r}")
    if not scaffold.template_path.is_file():
        raise ValueError("template.py.j2 is missing")
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
