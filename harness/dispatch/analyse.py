"""Request analysis: workflow type, complexity, matching scaffolds (BM25), and stated parameters.

Everything here is heuristic, explained, and offline: each number comes with the features
that produced it, so a user (and a test) can see why a request went where it did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from harness.dispatch.inputs import InputFacts
from harness.dispatch.text import STOPWORDS, stem, tokens
from harness.dispatch.understand import Binding, bind, read_request
from harness.records import Analysis, Candidate, Complexity, Estimate, MissingInput, WorkflowType

__all__ = [
    "ScaffoldLike",
    "analyse",
    "extract_params",
    "prior_estimate",
    "rank_scaffolds",
    "stated_params",
    "workflow_scores",
]

# Keyword families, after the seed's dispatcher, extended with everyday automation.
FAMILIES: dict[WorkflowType, tuple[str, ...]] = {
    "project_management": (
        "plan",
        "project",
        "milestone",
        "roadmap",
        "task",
        "schedule",
        "deliverable",
        "timeline",
        "phase",
        "dependency",
        "estimate",
        "sprint",
        "backlog",
        "feature",
        "implement",
        "coordinate",
        "system",
        "application",
    ),
    "research": (
        "research",
        "analyze",
        "investigate",
        "study",
        "compare",
        "competitive",
        "market",
        "corpus",
        "document",
        "literature",
        "digest",
        "term",
        "topic",
        "paper",
        "article",
        "insight",
        "theme",
        "keyphrase",
    ),
    "security_audit": (
        "security",
        "audit",
        "vulnerability",
        "compliance",
        "penetration",
        "secure",
        "secret",
        "credential",
        "cve",
        "leak",
        "token",
        "password",
        "dangerous",
        "unpinned",
        "injection",
        "threat",
    ),
    "development": (
        "code",
        "api",
        "backend",
        "frontend",
        "database",
        "service",
        "package",
        "skeleton",
        "library",
        "cli",
        "unittest",
        "module",
        "rust",
        "python",
        "typescript",
        "refactor",
        "boilerplate",
        "develop",
        "build",
    ),
    "automation": (
        "csv",
        "json",
        "log",
        "folder",
        "directory",
        "organize",
        "checksum",
        "hash",
        "sha256",
        "archive",
        "zip",
        "tar",
        "duplicate",
        "dedupe",
        "convert",
        "transform",
        "rename",
        "summarize",
        "backup",
        "aggregate",
        "group",
        "manifest",
        "report",
        "extension",
        "record",
        "filter",
    ),
}
_FAMILY_STEMS = {family: {stem(w) for w in words} for family, words in FAMILIES.items()}
ROLES: dict[WorkflowType, tuple[str, ...]] = {
    "security_audit": ("security-specialist",),
    "research": ("research-analyst",),
    "development": ("backend-architect", "code-reviewer"),
    "project_management": ("project-manager",),
    "automation": (),
    "custom": ("orchestrator",),
}
_SEQUENCE = re.compile(r"\b(then|after that|afterwards|finally|followed by|next)\b|;|\d\)", re.IGNORECASE)
_HARD = (
    "comprehensive",
    "end-to-end",
    "pipeline",
    "real-time",
    "distributed",
    "integrat",
    "monitor",
    "rollback",
    "deploy",
    "orchestrat",
    "scal",
    "migrat",
    "concurren",
    "multi",
)
CONTAINER_OVERHEAD_S = 1.0
ROLE_FLOOR = 0.15  # a stray keyword from another family ("hard-coded") does not call in its roles
PRIOR_CUSTOM_TOKENS = 8000


class ScaffoldLike(Protocol):
    """What analysis reads from a scaffold's metadata."""

    name: str
    title: str
    description: str
    workflow_type: str
    keywords: Sequence[str]


def _scaffold_text(scaffold: Any) -> list[str]:
    parts = [scaffold.name.replace("_", " "), scaffold.title, scaffold.description]
    # Keywords and example requests say what users ask for; count them twice.
    extra = [*scaffold.keywords, *[getattr(e, "request", "") for e in getattr(scaffold, "examples", ())]]
    return tokens(" ".join(parts)) + 2 * tokens(" ".join(extra))


def rank_scaffolds(request: str, scaffolds: Sequence[Any]) -> list[Candidate]:
    """Scaffolds ordered by how well their metadata matches the request (BM25), with a confidence."""
    query = list(dict.fromkeys(tokens(request)))
    if not scaffolds or not query:
        return []
    from rank_bm25 import BM25Okapi

    docs = [_scaffold_text(s) for s in scaffolds]
    scores = [float(x) for x in BM25Okapi(docs).get_scores(query)]
    order = sorted(range(len(scaffolds)), key=lambda i: scores[i], reverse=True)
    best = scores[order[0]]
    second = scores[order[1]] if len(order) > 1 else 0.0
    candidates = []
    for rank, i in enumerate(order):
        vocab = set(docs[i])
        matched = tuple(t for t in query if t in vocab)
        coverage = len(matched) / len(query)
        if scores[i] <= 0 or not matched:
            confidence = 0.0
        else:
            # How much of the request the scaffold explains, and how clearly it beats its best rival.
            rival = second if rank == 0 else best
            margin = max(0.0, (scores[i] - rival) / scores[i])
            # A request mostly unexplained by the scaffold cannot be a confident match, however
            # far ahead of the others it is.
            confidence = min(1.0, math.sqrt(coverage) * (0.6 + 0.4 * margin))
        candidates.append(
            Candidate(
                name=scaffolds[i].name,
                workflow_type=scaffolds[i].workflow_type,
                score=round(scores[i], 4),
                confidence=round(confidence, 3),
                matched_terms=matched,
            )
        )
    return candidates


def workflow_scores(request: str) -> tuple[dict[WorkflowType, float], list[str]]:
    """Keyword-family scores for a request, and the features behind them."""
    words = tokens(request)
    seen = set(words)
    scores: dict[WorkflowType, float] = {}
    features = []
    for family, stems in _FAMILY_STEMS.items():
        hits = sorted(seen & stems)
        if hits:
            scores[family] = float(len(hits))
            features.append(f"{family}: {', '.join(hits)}")
    return scores, features


def _complexity(request: str, families: int) -> tuple[Complexity, list[str]]:
    words = [w for w in re.findall(r"[A-Za-z0-9']+", request)]
    steps = len(_SEQUENCE.findall(request))
    hard = sorted({h for h in _HARD if h in request.lower()})
    features = [f"{len(words)} words", f"{families} workflow famil{'y' if families == 1 else 'ies'}"]
    if steps:
        features.append(f"{steps} sequencing cue(s)")
    if hard:
        features.append(f"demanding terms: {', '.join(hard)}")
    points = (len(words) > 25) + (len(words) > 60) + min(steps, 2) + (families >= 2) + (families >= 3) + len(hard)
    level: Complexity = "simple" if points <= 1 else "moderate" if points <= 3 else "complex"
    return level, features


def extract_params(request: str, parameters: Mapping[str, Any]) -> dict[str, str]:
    """Parameter values a request states plainly (``name=value``, a choice word, ``by X``, ``top N``)."""
    found: dict[str, str] = {}
    text = request.strip()
    lowered = text.lower()
    # "a package called inventory": the name goes to the first required text parameter.
    called = re.search(r"\b(?:called|named)\s+[\"']?([\w.-]+)", text, re.IGNORECASE)
    if called:
        for name, spec in parameters.items():
            if getattr(spec, "type", "") == "str" and getattr(spec, "required", False):
                found[name] = called.group(1)
                break
    for name, spec in parameters.items():
        if name in found:
            continue
        spoken = name.replace("_", " ")
        explicit = re.search(
            rf"\b(?:{re.escape(name)}|{re.escape(spoken)})\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s,;]+)", text, re.IGNORECASE
        )
        if explicit:
            found[name] = explicit.group(1).strip("\"'")
            continue
        choices = [str(c) for c in (getattr(spec, "choices", None) or ())]
        hits = [c for c in choices if re.search(rf"\b{re.escape(c.lower())}\b", lowered)]
        if len(hits) == 1:
            found[name] = hits[0]
            continue
        kind = str(getattr(spec, "type", ""))
        if name.endswith("_by") or name == "by":
            verb = name[: -len("_by")].replace("_", " ") if name != "by" else ""
            pattern = rf"\b{re.escape(verb)}\s+by\s+([\w.-]+)" if verb else r"\bby\s+([\w.-]+)"
            match = re.search(pattern, text, re.IGNORECASE) or re.search(r"\bby\s+([\w.-]+)", text, re.IGNORECASE)
            if match and match.group(1).lower() not in STOPWORDS:
                found[name] = match.group(1)
                continue
        if kind in ("int", "float"):
            for word in {name, *name.split("_")} - {"n", "max", "min"}:
                match = re.search(rf"\b{re.escape(word)}\s+(\d+(?:\.\d+)?)\b", lowered) or re.search(
                    rf"\b(\d+(?:\.\d+)?)\s+{re.escape(word)}", lowered
                )
                if match:
                    found[name] = match.group(1)
                    break
    return found


def _steer(
    candidates: list[Candidate], outcomes: Mapping[str, tuple[float, float]], features: list[str]
) -> list[Candidate]:
    """Scale each candidate's confidence by its scaffold's track record, and re-rank."""
    from harness.history.store import success_factor

    steered = []
    for candidate in candidates:
        ok, bad = outcomes.get(candidate.name, (0, 0))
        if ok + bad:
            factor = success_factor(ok, bad)
            if candidate.confidence > 0:
                features.append(
                    f"history: {candidate.name} {ok:g} succeeded / {bad:g} failed (recent runs weigh most), "
                    f"confidence x{factor:.2f}"
                )
            candidate = candidate.model_copy(update={"confidence": round(min(1.0, candidate.confidence * factor), 3)})
        steered.append(candidate)
    return sorted(steered, key=lambda c: c.confidence, reverse=True)


SOURCE_SUFFIXES = frozenset(
    ".py .js .ts .tsx .jsx .go .rs .c .h .cc .cpp .java .kt .rb .php .sh .cs .swift .sql .lua .scala".split()
)
MISFIT = 0.3  # a scaffold whose kind of input is absent keeps this share of its confidence


def _holds(facts: InputFacts, kind: str) -> bool:
    """True when the inputs hold the kind of data a scaffold's input declares."""
    if kind == "table":
        return facts.has_tables
    if kind == "log":
        return bool(facts.log_formats)
    if kind == "source":
        return any(ext in SOURCE_SUFFIXES for ext in facts.extensions)
    return True  # text and files: any input will do


def fit_inputs(
    request: str,
    candidates: list[Candidate],
    scaffolds: Mapping[str, Any],
    facts: InputFacts,
    features: list[str],
) -> list[Candidate]:
    """Re-weigh candidates by the inputs: words naming columns count for table scaffolds; a missing kind of data costs.

    "average unit price by product" matches little of any scaffold's description, but every
    word of it names a column of the CSV given: a table scaffold explains it. A log scaffold
    given a folder with no log line in it cannot produce an answer, however well it matched.
    """
    query = list(dict.fromkeys(tokens(request)))
    data_words = set()
    for name in facts.columns:
        data_words.update(tokens(name.replace(".", " ")))
    for table in facts.tables:
        for values in table.values.values():
            for value in values[:20]:
                data_words.update(tokens(value))
    explained = [t for t in query if t in data_words]
    fitted = []
    for candidate in candidates:
        scaffold = scaffolds.get(candidate.name)
        kinds = [i.kind for i in getattr(scaffold, "inputs", ()) if getattr(i, "kind", None)]
        confidence = candidate.confidence
        if kinds and not any(_holds(facts, kind) for kind in kinds):
            confidence = round(confidence * MISFIT, 3)
            if candidate.confidence > 0:
                features.append(f"inputs: no {'/'.join(kinds)} data for {candidate.name}, confidence x{MISFIT}")
        elif "table" in kinds and explained and query:
            matched = set(candidate.matched_terms) | set(explained)
            coverage = len([t for t in query if t in matched]) / len(query)
            lifted = round(min(1.0, math.sqrt(coverage) * 0.75), 3)
            if lifted > confidence:
                features.append(
                    f"inputs: {', '.join(explained)} name columns or values of the data for {candidate.name}"
                )
                confidence = lifted
        fitted.append(candidate.model_copy(update={"confidence": confidence}))
    return sorted(fitted, key=lambda c: c.confidence, reverse=True)


def prior_estimate(top: Candidate | None, scaffolds: Mapping[str, Any]) -> Estimate:
    """The estimate before history: the best scaffold's run time, or a generated script's prior."""
    if top is not None and top.confidence > 0 and top.name in scaffolds:
        runtime = float(getattr(scaffolds[top.name], "expected_runtime_s", 5.0))
        return Estimate(
            duration_s=runtime + CONTAINER_OVERHEAD_S,
            coordination_s=CONTAINER_OVERHEAD_S,
            tokens=0,
            basis=f"{top.name}'s expected run time plus container start; a filled scaffold needs no LLM tokens",
        )
    # History, when there is some, replaces this prior in the pipeline (dispatch/estimate.py: from_history).
    return Estimate(
        duration_s=30.0 + CONTAINER_OVERHEAD_S,
        coordination_s=CONTAINER_OVERHEAD_S,
        tokens=PRIOR_CUSTOM_TOKENS,
        basis="prior for a generated script",
    )


def _role_confidence(
    workflow: WorkflowType, confidence: float, scores: Mapping[WorkflowType, float]
) -> dict[str, float]:
    """Roles of the chosen workflow type, and of any other family with evidence, most likely first."""
    found: dict[str, float] = {role: round(max(confidence, 0.3), 3) for role in ROLES[workflow]}
    total = sum(scores.values()) or 1.0
    for family, score in scores.items():
        # "build the API, then audit it": a secondary family's roles are needed too, less surely.
        share = round(score / total * min(1.0, score / 2.0), 3)
        for role in ROLES[family] if score >= 1.0 and share >= ROLE_FLOOR else ():
            found[role] = max(found.get(role, 0.0), share)
    return dict(sorted(found.items(), key=lambda kv: kv[1], reverse=True))


def analyse(
    request: str,
    scaffolds: Sequence[Any],
    *,
    outcomes: Mapping[str, tuple[float, float]] | None = None,
    facts: InputFacts | None = None,
    given: Mapping[str, str] | None = None,
) -> Analysis:
    """Analyse a request against the scaffold library; ``outcomes`` (from history) steer the ranking.

    ``facts`` (what the inputs hold) let parameters come from the data as well as the request;
    ``given`` values (from the caller) are checked against the data like the request's own.
    """
    request = request.strip()
    candidates = rank_scaffolds(request, scaffolds)
    scores, features = workflow_scores(request)
    if facts is not None and facts.files:
        candidates = fit_inputs(request, candidates, {s.name: s for s in scaffolds}, facts, features)
    if outcomes:
        candidates = _steer(candidates, outcomes, features)
    top = candidates[0] if candidates else None
    if top is not None and top.confidence > 0 and top.workflow_type in ROLES:
        # The best-matching scaffold is evidence for its own workflow type.
        boost = 3.0 * top.confidence**2  # a weak match is weak evidence
        family = top.workflow_type
        scores[family] = scores.get(family, 0.0) + boost
        features.append(f"best scaffold {top.name} ({top.workflow_type}) adds {boost:.1f}")
    workflow: WorkflowType = "custom"
    confidence = 0.0
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    if ranked and len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        # An even mix of families is the seed's "unique combination": a custom workflow.
        features.append(f"families tie: {ranked[0][0]} and {ranked[1][0]}")
    elif ranked and ranked[0][1] >= 1.0:  # at least one keyword's worth of evidence
        workflow = ranked[0][0]
        total = sum(scores.values())
        confidence = round(scores[workflow] / total * min(1.0, scores[workflow] / 2.0), 3)
    else:
        features.append("no workflow keywords matched")
    complexity, complexity_features = _complexity(request, len([s for s in scores.values() if s >= 1]))
    role_confidence = _role_confidence(workflow, confidence, scores)
    by_name = {s.name: s for s in scaffolds}
    stated: dict[str, str | list[str]] = {}
    binding = None
    if top is not None and top.name in by_name:
        stated, binding = stated_params(request, by_name[top.name], facts, given)
    return Analysis(
        request=request,
        workflow_type=workflow,
        workflow_confidence=min(1.0, confidence),
        workflow_features=tuple(features),
        complexity=complexity,
        complexity_features=tuple(complexity_features),
        roles=tuple(role_confidence),
        role_confidence=role_confidence,
        candidates=tuple(candidates[:5]),
        stated_params=stated,
        unbound=_unbound(binding),
        unmet=binding.unmet if binding else (),
        param_notes=binding.notes if binding else (),
        estimate=prior_estimate(top, by_name),
    )


def stated_params(
    request: str, scaffold: Any, facts: InputFacts | None = None, given: Mapping[str, str] | None = None
) -> tuple[dict[str, str | list[str]], Binding]:
    """The parameter values for ``scaffold`` that the request states, checked against the inputs.

    The request reader and the data decide first (``understand.bind``); the older plain-text
    forms (``name=value``, a choice word) fill what it left alone. A parameter the binding
    found no support for is never filled from the plain text: ``by colour`` is not a choice.
    """
    declared = getattr(scaffold, "parameters", {}) or {}
    binding = bind(read_request(request), scaffold, facts, given)
    stated = {k: v for k, v in binding.params.items() if given is None or k not in given or v != given[k]}
    open_names = {m.name for m in binding.missing}
    for name, value in extract_params(request, declared).items():
        if name not in stated and name not in open_names and name not in (given or {}):
            stated[name] = value
    return stated, binding


def _unbound(binding: Binding | None) -> tuple[MissingInput, ...]:
    if binding is None:
        return ()
    return tuple(
        MissingInput(
            name=m.name,
            type=m.type,
            description=m.description,
            example=m.suggestions[0] if m.suggestions else None,
            suggestions=m.suggestions,
            reason=m.reason,
            sole=m.sole,
        )
        for m in binding.missing
    )
