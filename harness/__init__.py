"""harness: plain-language requests become vetted Python scripts, run in hardened throwaway containers."""

from __future__ import annotations

__version__ = "0.1.0"
