"""Agent calls from a script on a worker: answered with the worker's key, under the request's shared budget."""

from __future__ import annotations

from typing import Any

import redis
from fleetkit import Fleet, Redis, Remote

from harness.generation.agents import AgentBroker, load_roles
from harness.generation.budget import Budget
from harness.generation.llm import Llm
from harness.records import RunSpec
from harness.settings import Settings
from harness.testing import FakeAnthropic, Reply

SCRIPT = """
import harness_runtime as hr
for i in range(2):
    try:
        print("answer:", hr.agent("code-reviewer", f"look at {i}"), flush=True)
    except hr.AgentError as exc:
        print("declined:", exc, flush=True)
"""


def test_agent_calls_are_answered_by_the_worker_within_the_shared_budget(
    fleet: Fleet, redis_server: Redis, remote: Remote
) -> None:
    with FakeAnthropic() as fake:
        # The first answer uses most of the budget: the second call (in this run and the next) cannot fit.
        fake.add(Reply.text("looks fine", usage={"input_tokens": 5000, "output_tokens": 800}))
        fleet.start("w1", env={"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url})
        budget = Budget(6000)
        # The submitter's own handler: it only says agent calls are wanted, and under which budget.
        broker = AgentBroker(Llm(Settings.from_env(), budget, client=_unused()), load_roles())
        backend = remote()

        first = backend.run(RunSpec(script=SCRIPT), on_agent=broker)
        assert first.ok, first.stderr_tail
        assert "answer: looks fine" in first.stdout_tail
        assert "declined: token budget exhausted before an agent call: 5800 of 6000 used" in first.stdout_tail
        assert len(fake.requests) == 1
        assert budget.used.total == 5800  # charged back to the request

        # Another phase of the same request, on whichever worker: the budget is the same one.
        second = backend.run(RunSpec(script=SCRIPT), on_agent=broker)
        assert second.stdout_tail.count("declined: token budget exhausted") == 2
        assert len(fake.requests) == 1
        conn = redis.Redis.from_url(redis_server.url)
        (key,) = conn.scan_iter("harness:budget:*")
        assert int(conn.get(key) or 0) == 5800
        conn.close()


def _unused() -> Any:
    class Client:
        """The submitter never calls the API for a remote run's agent calls."""

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the submitter's client was used ({name})")

    return Client()
