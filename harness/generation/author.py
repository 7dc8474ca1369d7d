"""The author stage: a script for a decision, from a scaffold (rendered) or from the LLM (generated).

``fill`` renders a scaffold with validated parameters and returns a frozen :class:`Draft`;
``write`` asks the generator (which vets and repairs as it writes) and returns a Draft plus the
``Generation`` that run repairs continue. Vetting a rendered draft is the next stage's job
(``checks.vet``): a stage never calls a later one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.generation.generate import Generation, Generator
from harness.generation.render import render, validate_params
from harness.generation.scaffolds import Scaffold
from harness.records import Analysis, Decision

__all__ = ["Draft", "fill", "write"]


class Draft(BaseModel):
    """A script and the parameters it was made with; ``generated_id`` names an LLM-written one's record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    script: str | None = Field(description="None when generation gave no usable code")
    params: dict[str, Any] = Field(default_factory=dict)
    generated_id: str | None = None
    seconds: dict[str, float] = Field(default_factory=dict, description="render_s or generate_s")


def fill(scaffold: Scaffold, params: dict[str, object]) -> Draft:
    """Render ``scaffold`` with ``params`` (validated first: a bad value fails here, named)."""
    t0 = time.monotonic()
    checked = validate_params(scaffold, params)
    script = render(scaffold, checked)
    return Draft(script=script, params=checked, seconds={"render_s": time.monotonic() - t0})


def write(
    generator: Generator, request: str, analysis: Analysis, decision: Decision, inputs: Sequence[Path]
) -> tuple[Draft, Generation]:
    """Have the LLM write (or customise) a script for ``decision``; the generation is kept for run repairs."""
    t0 = time.monotonic()
    generation = generator.generate(request, analysis, decision.strategy, base=decision.template, inputs=inputs)
    draft = Draft(
        script=generation.script,
        params=dict(generation.record.parameters),
        generated_id=generation.record.id,
        seconds={"generate_s": time.monotonic() - t0},
    )
    return draft, generation
