"""The dispatch decision: which strategy serves a request, with which scaffold and parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.records import Analysis, Decision, MissingInput

__all__ = ["decide", "missing_params"]


def _open(analysis: Analysis, parameters: Mapping[str, Any], chosen: Mapping[str, object]) -> tuple[MissingInput, ...]:
    """What blocks a template run: required parameters not given, values the data does not support, unmet asks."""
    required = missing_params(parameters, chosen)
    named = {m.name for m in required}
    # A required parameter the data could not settle keeps the data's suggestions and reason.
    unbound = {m.name: m for m in analysis.unbound if m.name not in chosen}
    merged = [
        unbound[m.name].model_copy(update={"example": m.example if m.example is not None else unbound[m.name].example})
        if m.name in unbound
        else m
        for m in required
    ]
    merged += [m for name, m in unbound.items() if name not in named]
    merged += [MissingInput(kind="unsupported", name="capability", description=ask) for ask in analysis.unmet]
    return tuple(merged)


def _checked(analysis: Analysis, given: Mapping[str, object]) -> dict[str, object]:
    """The caller's values as the data checked them: columns in the data's spelling, rejected ones dropped.

    A rejected value is in ``analysis.unbound`` with the data's suggestions, so it is asked for
    again (or refused) instead of failing inside the run.
    """
    rejected = {m.name for m in analysis.unbound}
    return {k: analysis.stated_params.get(k, v) for k, v in given.items() if k not in rejected}


def _required(
    analysis: Analysis, parameters: Mapping[str, Any], chosen: Mapping[str, object]
) -> tuple[MissingInput, ...]:
    # A scaffold other than the analysed one: what the request said about the other does not apply.
    return missing_params(parameters, chosen)


def missing_params(parameters: Mapping[str, Any], given: Mapping[str, object]) -> tuple[MissingInput, ...]:
    """Required parameters (no default) that ``given`` does not supply, each with its type and an example."""
    missing = []
    for name, spec in parameters.items():
        if name in given or getattr(spec, "required", False) is False:
            continue
        missing.append(
            MissingInput(
                name=name,
                type=str(getattr(spec, "type", "value")),
                example=getattr(spec, "example", None),
                description=str(getattr(spec, "description", "")),
            )
        )
    return tuple(missing)


HYBRID_FLOOR = 0.2  # below this a scaffold is no useful starting point
LLM_MARK = "<llm>"  # in a candidate's matched terms: the LLM's analysis chose it


def decide(
    analysis: Analysis,
    scaffolds: Mapping[str, Any],
    *,
    template: str | None = None,
    params: Mapping[str, object] | None = None,
    threshold: float = 0.45,
    llm: bool = False,
    strategy: str | None = None,
) -> Decision:
    """Choose a strategy for ``analysis``; a forced ``strategy`` or ``template`` wins.

    Offline (``llm`` false) only ``use_template`` can run: below ``threshold`` the decision
    says so and names the closest scaffolds instead of guessing. With an LLM, a good match
    missing parameters is customised, a partial match is the base of a hybrid, and anything
    else is generated from scratch.
    """
    decision = _decide(analysis, scaffolds, template=template, params=params, threshold=threshold, llm=llm)
    if llm and decision.strategy == "use_template" and decision.missing and decision.template:
        decision = decision.model_copy(
            update={
                "strategy": "customise_template",
                "missing": (),
                "reasoning": decision.reasoning + "; the LLM fills the missing parameters",
            }
        )
    if strategy is not None and strategy != decision.strategy:
        base = decision.template or (analysis.candidates[0].name if analysis.candidates else None)
        needs_base = strategy in ("customise_template", "hybrid", "use_template")
        missing: tuple[MissingInput, ...] = ()
        if needs_base and base is None:
            missing = (MissingInput(kind="template", name="template", strategy=strategy),)
        elif strategy != "use_template" and not llm:
            missing = (MissingInput(kind="llm", name="llm", strategy=strategy),)
        elif strategy == "use_template" and base is not None:
            missing = missing_params(scaffolds[base].parameters, decision.params)
        decision = decision.model_copy(
            update={
                "strategy": strategy,
                "template": base if needs_base else None,
                "confidence": 1.0,
                "reasoning": f"strategy {strategy} was chosen explicitly",
                "missing": missing,
            }
        )
    return decision


def _decide(
    analysis: Analysis,
    scaffolds: Mapping[str, Any],
    *,
    template: str | None,
    params: Mapping[str, object] | None,
    threshold: float,
    llm: bool,
) -> Decision:
    given = dict(params or {})
    top = analysis.candidates[0] if analysis.candidates else None
    if template is not None:
        scaffold = scaffolds[template]
        same = top is not None and top.name == template
        stated = analysis.stated_params if same else {}
        chosen = {**stated, **(_checked(analysis, given) if same else given)}
        return Decision(
            strategy="use_template",
            template=template,
            params=chosen,
            confidence=1.0,
            reasoning=f"scaffold {template} was chosen explicitly",
            missing=_open(analysis, scaffold.parameters, chosen)
            if same
            else missing_params(scaffold.parameters, chosen),
        )
    if llm and top is not None and top.confidence >= threshold and top.name in scaffolds and analysis.unmet:
        # The scaffold is right for most of the request but cannot do all of it: the LLM writes
        # a script from it that does, told what is left (instead of a refusal offline).
        return Decision(
            strategy="hybrid",
            template=top.name,
            params=given,
            confidence=round(top.confidence, 3),
            reasoning=f"{top.name} matches but cannot do: {'; '.join(analysis.unmet)}; the LLM writes a script from it",
        )
    if top is not None and top.confidence >= threshold and top.name in scaffolds:
        chosen = {**analysis.stated_params, **_checked(analysis, given)}
        terms = ", ".join(t for t in top.matched_terms[:6] if t != LLM_MARK)
        why = (
            f"the LLM's analysis picks {top.name}"
            if LLM_MARK in top.matched_terms
            else f"{top.name} matches the request ({terms})"
        )
        return Decision(
            strategy="use_template",
            template=top.name,
            params=chosen,
            confidence=top.confidence,
            reasoning=f"{why} with confidence {top.confidence:.2f}",
            missing=_open(analysis, scaffolds[top.name].parameters, chosen),
        )
    close = ", ".join(f"{c.name} ({c.confidence:.2f})" for c in analysis.candidates[:3] if c.confidence > 0)
    if llm and top is not None and top.confidence >= HYBRID_FLOOR and top.name in scaffolds:
        return Decision(
            strategy="hybrid",
            template=top.name,
            params=given,
            confidence=round(top.confidence, 3),
            reasoning=f"{top.name} fits only partly ({top.confidence:.2f}); the LLM writes a new script from it",
        )
    if llm:
        return Decision(
            strategy="generate_custom",
            params=given,
            confidence=round(1.0 - (top.confidence if top else 0.0), 3),
            reasoning="no scaffold fits" + (f" (closest: {close})" if close else "") + ": the LLM writes a new script",
        )
    return Decision(
        strategy="generate_custom",
        template=None,
        params=given,
        confidence=round(1.0 - (top.confidence if top else 0.0), 3),
        reasoning=(
            f"no scaffold matches confidently (threshold {threshold:.2f}"
            + (f"; closest: {close}" if close else "; nothing close")
            + "): a new script is needed"
        ),
        missing=(MissingInput(kind="template_or_llm", name="template_or_llm"),),
    )
