"""A plan phase whose scaffold fails is repaired through the LLM path (fake API, real containers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dispatch.plan import Plan, PlanPhase
from harness.execution.docker import DockerBackend
from harness.orchestrate import run_plan
from harness.pipeline import Harness
from harness.settings import Settings
from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.llm
TAMPERED = Path(__file__).resolve().parents[2] / "scaffolds/checksum_manifest/example/tampered"
FIXED = """import os
import sys
from pathlib import Path

import harness_runtime as hr


def main() -> int:
    with hr.phase("report"):
        out = Path(os.environ.get("HARNESS_OUTPUT", "/output"))
        (out / "repaired.txt").write_text("verified what could be verified\\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def test_repair_policy_regenerates_a_failed_phase(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_image: str, no_leftovers: None
) -> None:
    with FakeAnthropic([Reply.tool_use("write_script", {"code": FIXED})]) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789abcdefghij")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        harness = Harness(Settings.from_env())
        plan = Plan(
            phases=(
                PlanPhase(
                    name="check",
                    request="verify the release files",
                    template="checksum_manifest",
                    params={"mode": "verify", "manifest": "tampered/MANIFEST.sha256"},
                    on_failure="repair",
                ),
            )
        )
        with DockerBackend(harness.settings, pool_size=0) as backend:
            report = run_plan(harness, plan, "verify", inputs=(TAMPERED,), output_dir=tmp_path, backend=backend)
        assert report.status == "succeeded" and report.phases[0].attempts == 2
        assert (tmp_path / "check" / "repaired.txt").is_file()
        prompt = fake.requests[0].body["messages"][0]["content"]
        assert "checksum_manifest failed here with status failed" in prompt
