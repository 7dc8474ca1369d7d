"""A second opinion on a request from the LLM, through a forced tool call, merged where it is surer.

The heuristic analysis (``analyse``) always runs and is what offline use and the tests rely
on. With an API key the LLM is asked for the same judgements as structured tool input; the
answer is validated field by field, names it invents (scaffolds, roles, parameters) are
dropped with a note, and each judgement replaces the heuristic's only where the LLM states
more confidence. A failed or nonsensical answer never fails the request: the heuristic
stands and the analysis says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.dispatch.analyse import ROLES, prior_estimate, stated_params
from harness.dispatch.decide import LLM_MARK
from harness.errors import HarnessError
from harness.records import Analysis, Candidate, Complexity, WorkflowType

__all__ = ["ANALYSE_TOOL", "LlmVerdict", "ask", "merge", "second_opinion", "wanted"]


ANALYSE_TOOL: dict[str, Any] = {
    "name": "analyse_request",
    "description": "Record your analysis of the user's automation request.",
    "input_schema": {
        "type": "object",
        "properties": {
            "workflow_type": {"type": "string", "enum": list(get_args(WorkflowType))},
            "workflow_confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "complexity": {"type": "string", "enum": list(get_args(Complexity))},
            "roles": {
                "type": "array",
                "description": "agent roles the work needs, from the list given",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["name", "confidence"],
                },
            },
            "scaffold": {"type": ["string", "null"], "description": "the one scaffold that serves it, or null"},
            "scaffold_confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "parameters": {
                "type": "object",
                "description": "values the request states for that scaffold's parameters, as strings",
                "additionalProperties": {"type": "string"},
            },
            "reasoning": {"type": "string", "description": "one or two sentences"},
        },
        "required": ["workflow_type", "workflow_confidence", "complexity", "scaffold", "scaffold_confidence"],
    },
}

_SYSTEM = (
    "You route automation requests for harness, which serves each request with a vetted Python script "
    "run in a sandbox: either a reviewed scaffold filled with parameters, or a newly written script. "
    "Judge the request and call analyse_request once. Choose a scaffold only when it does what is asked "
    "without changes; otherwise scaffold is null. Confidence means how likely you are to be right: be "
    "calibrated, and low when the request is vague."
)


class RoleNeed(BaseModel):
    """A role the LLM thinks the request needs."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=80)
    confidence: float = Field(ge=0, le=1)


class LlmVerdict(BaseModel):
    """The ``analyse_request`` tool's input, validated."""

    model_config = ConfigDict(extra="ignore")

    workflow_type: WorkflowType
    workflow_confidence: float = Field(ge=0, le=1)
    complexity: Complexity
    roles: list[RoleNeed] = Field(default_factory=list, max_length=20)
    scaffold: str | None = Field(None, max_length=100)
    scaffold_confidence: float = Field(0.0, ge=0, le=1)
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=50)
    reasoning: str = Field("", max_length=2000)


def wanted(mode: str, analysis: Analysis, threshold: float) -> bool:
    """Whether to ask the LLM: ``always``, never when ``off``, and under ``auto`` when the heuristic is unsure."""
    if mode == "always":
        return True
    if mode != "auto":
        return False
    top = analysis.candidates[0].confidence if analysis.candidates else 0.0
    # The heuristic was confidently wrong before: anything it could not explain (an ask the best
    # scaffold cannot meet, a value the data does not settle) is worth a second opinion too.
    unexplained = bool(analysis.unmet or analysis.unbound)
    return top < threshold or analysis.workflow_confidence < threshold or unexplained


# Past this many scaffolds, only the heuristic's best matches are described in full; the rest
# are listed by name and title, so the prompt stays small as promotion grows the library.
FULL_LISTING = 24
SHORTLIST = 12


def _prompt(request: str, scaffolds: Sequence[Any], roles: Sequence[str], shortlist: Sequence[str] = ()) -> str:
    detailed = set(shortlist[:SHORTLIST]) if len(scaffolds) > FULL_LISTING else {s.name for s in scaffolds}
    listing = []
    others = []
    for s in scaffolds:
        if s.name not in detailed:
            others.append(f"{s.name}: {s.title}")
            continue
        params = ", ".join(f"{name} ({p.type}): {p.description}" for name, p in s.parameters.items())
        listing.append(
            {
                "name": s.name,
                "workflow_type": s.workflow_type,
                "does": f"{s.title}. {s.description}",
                "parameters": params or "none",
            }
        )
    more = ("\n\nOther scaffolds (name: title):\n" + "\n".join(others)) if others else ""
    return (
        "Scaffolds:\n"
        + json.dumps(listing, indent=1)
        + more
        + f"\n\nRoles: {', '.join(roles) or 'none'}\n\n<request>\n{request}\n</request>"
    )


def ask(
    llm: Any, request: str, scaffolds: Sequence[Any], roles: Sequence[str], shortlist: Sequence[str] = ()
) -> tuple[LlmVerdict | None, str]:
    """The LLM's verdict on ``request``, or None and why there is none (never raises for a bad answer).

    ``shortlist`` (the heuristic's ranking) picks which scaffolds a large library describes in full.
    """
    try:
        payload, problem = llm.call_tool(
            system=_SYSTEM,
            prompt=_prompt(request, scaffolds, roles, shortlist),
            tool=ANALYSE_TOOL,
            purpose="analysing the request",
            max_tokens=1024,
        )
    except HarnessError as exc:
        return None, f"LLM analysis failed ({exc.message}); the heuristic analysis stands"
    if payload is None:
        return None, f"LLM analysis unusable ({problem}); the heuristic analysis stands"
    try:
        return LlmVerdict.model_validate(payload), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return None, f"LLM analysis had the wrong shape ({where}: {first['msg']}); the heuristic analysis stands"


def merge(
    analysis: Analysis,
    verdict: LlmVerdict,
    scaffolds: Mapping[str, Any],
    known_roles: Sequence[str],
    *,
    factor: Mapping[str, float] | None = None,
) -> Analysis:
    """``analysis`` with each of the verdict's judgements taken where the LLM is more confident.

    ``factor`` scales the LLM's scaffold confidence by the scaffold's track record, as history
    does for the heuristic's, so the LLM cannot bring back a scaffold that keeps failing.
    """
    taken: list[str] = []
    notes: list[str] = []
    update: dict[str, Any] = {}
    features = list(analysis.workflow_features)
    if verdict.workflow_confidence > analysis.workflow_confidence:
        update.update(
            workflow_type=verdict.workflow_type,
            workflow_confidence=round(verdict.workflow_confidence, 3),
            complexity=verdict.complexity,
            complexity_features=(*analysis.complexity_features, f"LLM: {verdict.complexity}"),
        )
        features.append(
            f"LLM: {verdict.workflow_type} ({verdict.workflow_confidence:.2f})"
            + (f": {verdict.reasoning}" if verdict.reasoning else "")
        )
        taken.append("workflow type")
    roles = dict(analysis.role_confidence)
    if "workflow type" in taken:
        # The heuristic's roles followed its workflow type; with the type replaced, so are they.
        roles = {role: round(verdict.workflow_confidence, 3) for role in ROLES[verdict.workflow_type]}
    for need in verdict.roles:
        if need.name not in known_roles:
            notes.append(f"unknown role {need.name!r} dropped")
        elif need.confidence > roles.get(need.name, 0.0):
            roles[need.name] = round(need.confidence, 3)
            taken.append(f"role {need.name}")
    if roles != analysis.role_confidence:
        ordered = dict(sorted(roles.items(), key=lambda kv: kv[1], reverse=True))
        update.update(roles=tuple(ordered), role_confidence=ordered)
    candidates = list(analysis.candidates)
    stated = dict(analysis.stated_params)
    if verdict.scaffold is not None and verdict.scaffold not in scaffolds:
        notes.append(f"unknown scaffold {verdict.scaffold!r} ignored")
    elif verdict.scaffold is not None:
        name = verdict.scaffold
        confidence = round(min(1.0, verdict.scaffold_confidence * (factor or {}).get(name, 1.0)), 3)
        current = next((c for c in candidates if c.name == name), None)
        if current is None or confidence > current.confidence:
            chosen = Candidate(
                name=name,
                workflow_type=scaffolds[name].workflow_type,
                score=current.score if current else 0.0,
                confidence=confidence,
                matched_terms=(*(current.matched_terms if current else ()), LLM_MARK),
            )
            candidates = sorted(
                [chosen, *(c for c in candidates if c.name != name)], key=lambda c: c.confidence, reverse=True
            )
            # A scaffold the heuristic had not listed counts as the LLM's reading only if it now leads.
            if current is not None or candidates[0].name == name:
                taken.append(f"scaffold {name} ({confidence:.2f})")
                features.append(f"LLM: scaffold {name} ({confidence:.2f})")
        if candidates and candidates[0].name == name:
            declared = scaffolds[name].parameters
            if not analysis.candidates or analysis.candidates[0].name != name:
                # The values read for the heuristic's scaffold mean nothing here; read them afresh.
                stated, binding = stated_params(analysis.request, scaffolds[name])
                update["estimate"] = prior_estimate(candidates[0], scaffolds)
                update["unbound"], update["unmet"] = (), binding.unmet
                update["param_notes"] = binding.notes
            for key, value in verdict.parameters.items():
                if key not in declared:
                    notes.append(f"unknown parameter {key!r} dropped")
                elif key not in stated:  # a value the request spells out plainly beats the LLM's reading
                    stated[key] = str(value)
                    taken.append(f"parameter {key}")
    summary = "LLM analysis used for " + ", ".join(taken) if taken else "LLM analysis was no more confident"
    update.update(
        workflow_features=tuple(features),
        candidates=tuple(candidates[:5]),
        stated_params=stated,
        llm="; ".join([summary, *notes]),
    )
    return analysis.model_copy(update=update)


def second_opinion(
    analysis: Analysis,
    llm: Any,
    scaffolds: Sequence[Any],
    roles: Sequence[str],
    *,
    factor: Mapping[str, float],
    mode: str,
    threshold: float,
    forced: bool,
) -> Analysis:
    """The heuristic analysis, with the LLM's judgements merged in where it is more confident.

    ``analysis.llm`` says what the LLM contributed or why it was not asked (none configured, a
    scaffold or strategy chosen explicitly, turned off, the heuristic already confident, or the
    call's problem). ``factor`` scales each scaffold's confidence by its history.
    """
    from harness.dispatch.analyse import rank_scaffolds

    if llm is None:
        return analysis.model_copy(update={"llm": "no LLM configured"})
    if forced:
        return analysis.model_copy(update={"llm": "not asked: the scaffold or strategy was chosen explicitly"})
    if not wanted(mode, analysis, threshold):
        why = "turned off (HARNESS_LLM_ANALYSIS=off)" if mode == "off" else "the heuristic analysis is confident"
        return analysis.model_copy(update={"llm": f"not asked: {why}"})
    shortlist = [c.name for c in rank_scaffolds(analysis.request, scaffolds)]
    verdict, problem = ask(llm, analysis.request, scaffolds, sorted(roles), shortlist)
    if verdict is None:
        return analysis.model_copy(update={"llm": problem})
    by_name = {s.name: s for s in scaffolds}
    return merge(analysis, verdict, by_name, sorted(roles), factor=factor)
