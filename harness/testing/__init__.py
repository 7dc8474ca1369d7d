"""Test helpers shipped with harness: a fake Anthropic Messages API server."""

from harness.testing.fake_anthropic import FakeAnthropic, ReceivedRequest, Reply

__all__ = ["FakeAnthropic", "ReceivedRequest", "Reply"]
