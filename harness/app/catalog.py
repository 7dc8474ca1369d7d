"""The scaffold library as front-ends show it: ``list_scaffolds`` and ``show_scaffold`` -> ``ScaffoldInfo``.

A scaffold's egress is listed twice on purpose: what it declares, and what its runs actually
get (only while a verified promotion seals it), with the reason when the two differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_serializer

from harness.assertions import Assertion
from harness.generation.scaffolds import Example, FileSpec, Parameter, Scaffold

if TYPE_CHECKING:
    from harness.services import Services

__all__ = ["Catalog", "ScaffoldInfo", "describe", "list_scaffolds", "show_scaffold"]


class ScaffoldInfo(BaseModel):
    """One scaffold as listed and shown (``harness templates show --json`` prints exactly this)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    workflow_type: str
    description: str
    keywords: tuple[str, ...]
    parameters: dict[str, Parameter]
    inputs: tuple[FileSpec, ...]
    outputs: tuple[FileSpec, ...]
    expected_runtime_s: float
    assertions: tuple[Assertion, ...]
    examples: tuple[Example, ...]
    egress: tuple[str, ...] = Field(description="the hosts the scaffold declares")
    egress_in_force: tuple[str, ...] = Field(description="the hosts its runs get: sealed by a verified promotion")
    egress_withheld: str | None = Field(description="why declared egress is not in force, when it is not")
    version: str
    provenance: dict[str, str]

    # Unset optional fields are left out, as scaffold.toml leaves them out.
    @field_serializer("parameters")
    def _parameters(self, value: dict[str, Parameter]) -> dict[str, dict[str, JsonValue]]:
        return {name: p.model_dump(mode="json", exclude_none=True) for name, p in value.items()}

    @field_serializer("assertions")
    def _assertions(self, value: tuple[Assertion, ...]) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json", exclude_defaults=True) for a in value]

    @field_serializer("examples")
    def _examples(self, value: tuple[Example, ...]) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json", exclude_none=True) for e in value]


class Catalog(BaseModel):
    """The library: the scaffolds that loaded, and why any did not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scaffolds: tuple[ScaffoldInfo, ...]
    errors: tuple[str, ...] = Field((), description="one line per scaffold that failed to load")


def describe(services: Services, scaffold: Scaffold) -> ScaffoldInfo:
    """``scaffold`` with the egress its runs get now."""
    from harness.review.policy import scaffold_egress

    in_force, why = scaffold_egress(services.generated.trust, scaffold) if scaffold.egress else ((), None)
    return ScaffoldInfo(
        name=scaffold.name,
        title=scaffold.title,
        workflow_type=scaffold.workflow_type,
        description=scaffold.description,
        keywords=scaffold.keywords,
        parameters=scaffold.parameters,
        inputs=scaffold.inputs,
        outputs=scaffold.outputs,
        expected_runtime_s=scaffold.expected_runtime_s,
        assertions=scaffold.assertions,
        examples=scaffold.examples,
        egress=scaffold.egress,
        egress_in_force=in_force,
        egress_withheld=why,
        version=scaffold.version,
        provenance=scaffold.provenance,
    )


def list_scaffolds(services: Services) -> Catalog:
    """Every scaffold in the library, in the library's order, and the load errors."""
    library = services.library
    return Catalog(
        scaffolds=tuple(describe(services, s) for s in library.scaffolds),
        errors=tuple(str(error) for error in library.errors),
    )


def show_scaffold(services: Services, name: str) -> ScaffoldInfo:
    """One scaffold by name; NotFound (with close matches) when there is none."""
    return describe(services, services.library.get(name))
