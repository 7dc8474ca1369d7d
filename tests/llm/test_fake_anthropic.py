"""The fake Messages API speaks the real wire format to the real SDK; the network guard holds."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import anthropic
import pytest

from harness.testing import FakeAnthropic, Reply

pytestmark = pytest.mark.llm
MODEL = "claude-sonnet-5-5"
TOOL = {"name": "write_script", "description": "d", "input_schema": {"type": "object", "properties": {}}}


_clients: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def client(server: FakeAnthropic, **kw: object) -> anthropic.Anthropic:
    made = anthropic.Anthropic(api_key="test-key", base_url=server.base_url, **kw)  # type: ignore[arg-type]
    _clients.append(made)
    return made


def ask(c: anthropic.Anthropic, **kw: object) -> anthropic.types.Message:
    return c.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}], **kw)  # type: ignore[arg-type]


def test_text_and_usage_with_cache_tokens() -> None:
    with FakeAnthropic([Reply.text("hello", usage={"cache_read_input_tokens": 40, "input_tokens": 7})]) as server:
        message = ask(client(server))
    assert message.content[0].type == "text" and message.content[0].text == "hello"
    assert message.usage.input_tokens == 7 and message.usage.cache_read_input_tokens == 40
    assert server.requests[0].body["model"] == MODEL


def test_streaming_tool_use_reassembles_in_the_sdk() -> None:
    payload = {"code": "print('hi')\n" * 20, "explanation": "prints"}
    with FakeAnthropic([Reply.tool_use("write_script", payload, text="Here it is.")]) as server:
        texts = []
        with client(server).messages.stream(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            tools=[TOOL],  # type: ignore[list-item]
        ) as stream:
            for text in stream.text_stream:
                texts.append(text)
            final = stream.get_final_message()
    assert "".join(texts) == "Here it is." and len(texts) > 0
    block = final.content[-1]
    assert block.type == "tool_use" and block.name == "write_script" and block.input == payload
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0


def test_rate_limit_is_retried_by_the_sdk_then_succeeds() -> None:
    with FakeAnthropic([Reply.error(429, retry_after=0), Reply.error(529, retry_after=0), Reply.text("ok")]) as server:
        message = ask(client(server, max_retries=2))
    assert message.content[0].text == "ok"  # type: ignore[union-attr]
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, anthropic.AuthenticationError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.InternalServerError),
        (400, anthropic.BadRequestError),
    ],
)
def test_error_statuses_map_to_the_sdks_exceptions(status: int, error: type[Exception]) -> None:
    with FakeAnthropic([Reply.error(status, "nope", retry_after=0)]) as server, pytest.raises(error) as info:
        ask(client(server, max_retries=0))
    assert getattr(info.value, "status_code", None) == status


def test_running_out_of_script_is_a_clear_server_error() -> None:
    with FakeAnthropic() as server, pytest.raises(anthropic.InternalServerError, match="no scripted reply"):
        ask(client(server, max_retries=0))


def test_real_api_hosts_are_unreachable_from_tests() -> None:
    c = anthropic.Anthropic(api_key="test-key", max_retries=0)
    _clients.append(c)
    with warnings.catch_warnings(), pytest.raises(anthropic.APIConnectionError) as info:
        warnings.simplefilter("ignore")
        ask(c)
    assert "never leave this machine" in repr(info.value.__cause__) or "never leave" in str(info.value.__context__)
