"""The Anthropic Messages API, as harness uses it: scripts through a tool call, agent answers, budgets.

Only the host talks to the API. Every call is charged to the request's :class:`Budget` from
the usage the API reports, and every failure becomes one clear error (``LLMError`` for a
call that failed, ``ConfigError`` for a key or model setting it refuses). ``anthropic`` is imported lazily, so the
offline template path never needs it configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from harness import pysource
from harness.errors import ConfigError, Fix, LLMError
from harness.generation.budget import Budget, Usage
from harness.settings import Settings

__all__ = ["WRITE_SCRIPT_TOOL", "Answer", "LLMError", "Llm", "ScriptDraft", "client_for", "parse_answer"]

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(?P<code>.*?)```", re.DOTALL)


class ScriptDraft(BaseModel):
    """What the ``write_script`` tool returns: the script, the parameters it expects, why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=400_000, description="the complete Python script")
    parameters: dict[str, JsonValue] = Field(default_factory=dict, description="values the script expects")
    explanation: str = Field("", max_length=4000, description="two or three sentences on how it works")


WRITE_SCRIPT_TOOL: dict[str, Any] = {
    "name": "write_script",
    "description": "Return the complete Python script for the sandbox, with a short explanation.",
    "input_schema": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the complete Python 3.11 script, standard library only"},
            "parameters": {"type": "object", "description": "names and values the script uses, if any"},
            "explanation": {"type": "string", "description": "two or three sentences on how it works"},
        },
        "required": ["code"],
    },
}


@dataclass
class Answer:
    """One model answer: the draft (if usable) or the problem with it, and what it cost."""

    draft: ScriptDraft | None
    text: str
    usage: Usage
    stop_reason: str
    problem: str = ""
    tool_input: dict[str, Any] | None = None


def parse_answer(content: Sequence[Any], stop_reason: str, usage: Usage) -> Answer:
    """Turn a Messages API answer into a draft, or say precisely what is wrong with it."""
    text = "".join(getattr(b, "text", "") for b in content if getattr(b, "type", "") == "text")
    tool = next((b for b in content if getattr(b, "type", "") == "tool_use"), None)
    if stop_reason == "max_tokens":
        return Answer(None, text, usage, stop_reason, "the answer was cut off at the token limit (truncated code)")
    draft: ScriptDraft | None = None
    tool_input: dict[str, Any] | None = None
    if tool is not None:
        tool_input = tool.input if isinstance(tool.input, dict) else {"_": tool.input}
        if tool.name != "write_script":
            return Answer(None, text, usage, stop_reason, f"called an unknown tool {tool.name!r}", tool_input)
        try:
            draft = ScriptDraft.model_validate(tool_input)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            return Answer(
                None,
                text,
                usage,
                stop_reason,
                f"the write_script call had the wrong shape ({where}: {first['msg']})",
                tool_input,
            )
    else:
        match = _FENCE.search(text)
        if match is None:
            return Answer(
                None, text, usage, stop_reason, "the answer contains no code (no write_script call, no ```python block)"
            )
        draft = ScriptDraft(code=match.group("code"))
    try:
        pysource.parse(draft.code)
    except SyntaxError as exc:
        return Answer(
            None,
            text,
            usage,
            stop_reason,
            f"the code is not valid Python (line {exc.lineno}: {exc.msg}); it may be another language",
            tool_input,
        )
    except (ValueError, RecursionError) as exc:
        return Answer(None, text, usage, stop_reason, f"the code cannot be parsed: {exc}", tool_input)
    return Answer(draft, text, usage, stop_reason, "", tool_input)


def client_for(settings: Settings) -> Any:
    """An ``anthropic.Anthropic`` client for these settings; ConfigError when there is no key."""
    if settings.anthropic_api_key is None or not settings.anthropic_api_key.get_secret_value():
        raise ConfigError(
            "no Anthropic API key is configured",
            hint="set ANTHROPIC_API_KEY, or choose a scaffold to run offline",
        ).fixed_by(Fix("give_input", "llm"))
    import anthropic

    return anthropic.Anthropic(
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        max_retries=settings.llm_retries,
        timeout=settings.llm_timeout_s,
    )


def _estimate(system: Sequence[dict[str, Any]], messages: Sequence[dict[str, Any]]) -> int:
    # About four characters a token; close enough to refuse a call that cannot fit.
    return (len(json.dumps(list(system))) + len(json.dumps(list(messages)))) // 4


class Llm:
    """Calls the Messages API for one request, under that request's budget."""

    def __init__(
        self,
        settings: Settings,
        budget: Budget,
        *,
        client: Any = None,
        on_text: Callable[[str], None] | None = None,
        on_call: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.on_text = on_text
        self.on_call = on_call
        self.calls = 0
        self._client = client

    @property
    def client(self) -> Any:
        """The SDK client (made on first use)."""
        if self._client is None:
            self._client = client_for(self.settings)
        return self._client

    def close(self) -> None:
        """Release the SDK client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def write_script(self, system: list[dict[str, Any]], messages: list[dict[str, Any]]) -> Answer:
        """Ask for a script through the ``write_script`` tool, streaming the answer."""
        self.budget.reserve(_estimate(system, messages) + self.settings.max_tokens // 4, "generating a script")
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        with self._errors():
            with self.client.messages.stream(
                model=self.settings.model,
                max_tokens=self.settings.max_tokens,
                system=system,
                messages=messages,
                tools=[WRITE_SCRIPT_TOOL],
                # This SDK no longer takes temperature as an argument; send it only when set.
                extra_body={"temperature": self.settings.temperature}
                if self.settings.temperature is not None
                else None,
            ) as stream:
                for event in stream:
                    piece = (
                        getattr(event, "text", None)
                        if event.type == "text"
                        else (getattr(event, "partial_json", None) if event.type == "input_json" else None)
                    )
                    if piece and self.on_text is not None:
                        self.on_text(piece)
                final = stream.get_final_message()
        usage = Usage.of(final.usage)
        self.budget.charge(usage)
        return parse_answer(final.content, str(final.stop_reason), usage)

    def call_tool(
        self, *, system: str, prompt: str, tool: dict[str, Any], purpose: str, max_tokens: int = 1024
    ) -> tuple[dict[str, Any] | None, str]:
        """Force one call of ``tool`` and return its input, or ``None`` and what was wrong with the answer."""
        self.budget.reserve(_estimate([{"text": system}, tool], [{"text": prompt}]) + max_tokens // 4, purpose)
        with self._errors():
            message = self.client.messages.create(
                model=self.settings.model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": prompt}],
                tools=[tool],
                tool_choice={"type": "tool", "name": tool["name"]},
            )
        self.budget.charge(Usage.of(message.usage))
        if message.stop_reason == "max_tokens":
            return None, "the answer was cut off at the token limit"
        block = next((b for b in message.content if getattr(b, "type", "") == "tool_use"), None)
        if block is None:
            return None, f"the answer did not call {tool['name']}"
        if block.name != tool["name"]:
            return None, f"the answer called an unknown tool {block.name!r}"
        if not isinstance(block.input, dict):
            return None, f"the {tool['name']} call's input is not an object"
        return block.input, ""

    def complete(self, *, system: str, prompt: str, model: str | None = None, max_tokens: int = 1024) -> str:
        """A plain text answer (agent calls); charged to the budget."""
        self.budget.reserve(_estimate([{"text": system}], [{"text": prompt}]) + max_tokens // 4, "an agent call")
        with self._errors():
            message = self.client.messages.create(
                model=model or self.settings.model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": prompt}],
            )
        self.budget.charge(Usage.of(message.usage))
        return "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")

    def _errors(self) -> _ApiErrors:
        return _ApiErrors(self.settings)


class _ApiErrors:
    """Maps the SDK's exceptions to one clear harness error each."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        import anthropic

        retries = self.settings.llm_retries
        where = self.settings.anthropic_base_url or "api.anthropic.com"
        if isinstance(exc, anthropic.AuthenticationError):
            raise ConfigError("the Anthropic API rejected the key (401)", hint="check ANTHROPIC_API_KEY") from None
        if isinstance(exc, anthropic.PermissionDeniedError):
            raise ConfigError(
                "the Anthropic API key may not use this model (403)", hint="check HARNESS_MODEL"
            ) from None
        if isinstance(exc, anthropic.RateLimitError):
            raise LLMError(
                f"rate limited by the Anthropic API (429) after {retries} retries",
                hint="wait a minute and run again",
                kind="rate_limit",
            ) from None
        if isinstance(exc, anthropic.APIStatusError) and exc.status_code == 529:
            raise LLMError(
                f"the Anthropic API is overloaded (529) after {retries} retries",
                hint="try again in a few minutes",
                kind="overloaded",
            ) from None
        if isinstance(exc, anthropic.InternalServerError):
            raise LLMError(
                f"the Anthropic API failed ({exc.status_code}) after {retries} retries",
                hint="try again later",
                kind="server",
            ) from None
        if isinstance(exc, anthropic.BadRequestError):
            raise LLMError(
                f"the Anthropic API refused the request (400): {exc.message[:200]}",
                hint="check HARNESS_MODEL and HARNESS_MAX_TOKENS",
                kind="bad_request",
            ) from None
        if isinstance(exc, anthropic.APITimeoutError):
            raise LLMError(
                f"the Anthropic API did not answer within {self.settings.llm_timeout_s:g} s",
                hint="raise HARNESS_LLM_TIMEOUT_S or try again",
                kind="timeout",
            ) from None
        if isinstance(exc, anthropic.APIConnectionError):
            raise LLMError(
                f"cannot reach the Anthropic API at {where}",
                hint="check the network or ANTHROPIC_BASE_URL",
                kind="connection",
            ) from None
        if isinstance(exc, anthropic.APIStatusError):
            raise LLMError(f"the Anthropic API answered {exc.status_code}: {exc.message[:200]}", kind="api") from None
