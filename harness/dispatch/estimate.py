"""Every estimate rule in one place: what a request should take, from priors, history, agents and generation.

Each rule is a pure function ``Analysis -> Analysis`` over data it is handed (history's medians,
the scaffold's agents, the generation prompt's size), so the whole chain can be tested without
a store, an LLM or an engine, and a reader sees why the number is what it is in ``basis``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from harness.records import Analysis, Decision

__all__ = [
    "AGENT_PROMPT_TOKENS",
    "GENERATION_SECONDS",
    "HISTORY_MIN_RUNS",
    "Medians",
    "for_generation",
    "from_history",
    "with_agent_calls",
    "with_budget",
]

HISTORY_MIN_RUNS = 3  # fewer past runs than this and the priors stay
AGENT_PROMPT_TOKENS = 1500  # a scaffold's agent prompt (findings, summaries) plus the role's system prompt
GENERATION_SECONDS = 30.0  # one LLM attempt at writing a script, added to the run's own time

Medians = Callable[..., tuple[int, float, int]]
"""``medians(template=..., strategy=...) -> (runs, seconds, tokens)`` over past runs like this one."""


def from_history(analysis: Analysis, decision: Decision, medians: Medians) -> Analysis:
    """With three or more past runs like this one, their medians replace the priors."""
    if decision.strategy == "use_template" and decision.template:
        n, seconds, tokens = medians(template=decision.template, strategy="use_template")
        what = f"{decision.template} runs"
    else:
        n, seconds, tokens = medians(strategy=decision.strategy)
        what = f"{decision.strategy} runs"
    if n < HISTORY_MIN_RUNS:
        return analysis
    estimate = analysis.estimate.model_copy(
        update={
            "duration_s": round(seconds, 3),
            "tokens": tokens,
            "basis": f"median of {n} past {what}",
            "from_history": True,
        }
    )
    return analysis.model_copy(update={"estimate": estimate})


def with_agent_calls(
    analysis: Analysis, decision: Decision, agents: tuple[str, ...], max_tokens: Mapping[str, int]
) -> Analysis:
    """A scaffold that asks agents spends tokens when an LLM is configured: count its calls in."""
    if not agents or analysis.estimate.from_history:  # history's medians include them
        return analysis
    tokens = sum(AGENT_PROMPT_TOKENS + max_tokens.get(a, 1024) for a in agents)
    estimate = analysis.estimate.model_copy(
        update={
            "tokens": analysis.estimate.tokens + tokens,
            "basis": f"{analysis.estimate.basis}; up to {len(agents)} agent call(s) of ~{tokens} tokens",
        }
    )
    merged = dict(analysis.role_confidence)
    for agent in agents:
        merged[agent] = max(merged.get(agent, 0.0), round(decision.confidence, 3))
    merged = dict(sorted(merged.items(), key=lambda kv: kv[1], reverse=True))
    return analysis.model_copy(update={"estimate": estimate, "roles": tuple(merged), "role_confidence": merged})


def with_budget(analysis: Analysis, token_budget: int | None) -> Analysis:
    """The estimate, marked with the request's token budget (None: no LLM, so no budget)."""
    return analysis.model_copy(update={"estimate": analysis.estimate.model_copy(update={"token_budget": token_budget})})


def for_generation(analysis: Analysis, strategy: str, tokens: int) -> Analysis:
    """An LLM-written script costs one attempt's tokens and time on top of its run (history already knows)."""
    if analysis.estimate.from_history:
        return analysis
    estimate = analysis.estimate.model_copy(
        update={
            "duration_s": analysis.estimate.duration_s + GENERATION_SECONDS,
            "tokens": tokens,
            "basis": f"the {strategy} prompt as sent plus a typical script, one attempt",
        }
    )
    return analysis.model_copy(update={"estimate": estimate})
