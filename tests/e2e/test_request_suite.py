"""The labelled request suite, end to end: right or an honest refusal, never a wrong success."""

from __future__ import annotations

from pathlib import Path

import pytest
from cases import CASES
from runner import run_case, summary

pytestmark = pytest.mark.integration


def test_right_or_refused_never_wrong(tmp_path: Path) -> None:
    scored = [run_case(case, tmp_path) for case in CASES]
    table = summary(scored)
    card = "\n".join(f"{key}: {row}" for key, row in sorted(table.items()))
    wrong = [f"{s.case.id}: {s.detail}" for s in scored if s.outcome == "wrong"]
    assert not wrong, "wrong successes:\n" + "\n".join(wrong) + f"\n{card}"
    covered = [s for s in scored if s.case.covered]
    right = sum(s.outcome == "right" for s in covered)
    assert right >= 0.9 * len(covered), f"{right}/{len(covered)} right on covered requests\n{card}"
    # An uncovered request is refused or fails; a refusal names what is missing.
    for item in scored:
        if item.outcome == "refused":
            assert "missing" in item.detail or "invalid" in item.detail, item.detail
