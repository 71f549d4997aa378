"""Keeping secrets out of task logs.

When a try reads a secret (the value of a variable whose key looks secret, a
connection's password, secret-looking keys of a connection's extra), the value is
registered here, and every line the try logs has it replaced by ``***`` before it is
written to the database or a file. Each try runs in a process of its own, so what one
try registers never leaks into another's masking.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
MIN_LENGTH = 4  # shorter values would mask ordinary words and numbers

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def mask_secret(value: Any) -> None:
    """Register a secret (strings; dicts and lists by their string leaves)."""
    if isinstance(value, dict):
        for item in value.values():
            mask_secret(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            mask_secret(item)
        return
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    global _pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    pattern = _pattern
    return text if pattern is None else pattern.sub(MASK, text)


def reset() -> None:
    """Forget every secret (for tests, and for a process that runs several tries)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None
