"""Token accounting: usage from the API's own fields, a budget per request, and a price table.

Every LLM call (generation, repair, agent calls from inside the sandbox) is charged here,
so a request can stop cleanly before the next call would exceed its budget.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.errors import BudgetExhausted, Fix

__all__ = ["PRICES", "Budget", "BudgetExhausted", "Usage", "cost_usd"]

# USD per million tokens: input, output, cache write (5 min), cache read. The one place prices live.
PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-opus": (15.0, 75.0, 18.75, 1.50),
    "claude-sonnet": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku": (1.0, 5.0, 1.25, 0.10),
}
_FALLBACK_PRICE = PRICES["claude-sonnet"]


class Usage(BaseModel):
    """Tokens one or more calls used, as the API reported them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    calls: int = 0

    @classmethod
    def of(cls, usage: Any) -> Usage:
        """Read an SDK usage object (missing cache fields count as zero)."""
        return cls(
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            cache_creation_input_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
            cache_read_input_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
            calls=1,
        )

    @property
    def total(self) -> int:
        """All tokens, cache reads and writes included: what the budget counts."""
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            calls=self.calls + other.calls,
        )


def cost_usd(usage: Usage, model: str) -> float:
    """An estimate of what ``usage`` cost on ``model``, from :data:`PRICES`."""
    price = next((p for prefix, p in PRICES.items() if model.startswith(prefix)), _FALLBACK_PRICE)
    per_token = [p / 1_000_000 for p in price]
    return round(
        usage.input_tokens * per_token[0]
        + usage.output_tokens * per_token[1]
        + usage.cache_creation_input_tokens * per_token[2]
        + usage.cache_read_input_tokens * per_token[3],
        6,
    )


class Budget:
    """A request's token budget, shared by every call made for it (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = Usage()
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Tokens left."""
        return max(0, self.limit - self.used.total)

    def reserve(self, estimate: int, what: str) -> None:
        """Refuse a call whose estimated size no longer fits; nothing is charged yet."""
        with self._lock:
            if self.used.total + estimate > self.limit:
                raise BudgetExhausted(
                    f"token budget exhausted before {what}: {self.used.total} of {self.limit} used, "
                    f"about {estimate} more needed",
                    hint="raise the request's token budget; what was made so far is kept",
                ).fixed_by(Fix("give_input", "budget"))

    def charge(self, usage: Usage) -> None:
        """Record what a call used."""
        with self._lock:
            self.used = self.used + usage
