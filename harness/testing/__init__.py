"""Test helpers shipped with harness: a fake Anthropic Messages API server and a scripted backend."""

from harness.testing.backend import Outcome, ScriptedBackend
from harness.testing.fake_anthropic import FakeAnthropic, ReceivedRequest, Reply

__all__ = ["FakeAnthropic", "Outcome", "ReceivedRequest", "Reply", "ScriptedBackend"]
