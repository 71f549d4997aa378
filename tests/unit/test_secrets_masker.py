"""Registered secrets never reach a log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradewind import secrets_masker
from tradewind.secrets_masker import mask_secret, redact


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    secrets_masker.reset()
    yield
    secrets_masker.reset()


def test_registered_values_are_masked_wherever_they_appear() -> None:
    mask_secret("hunter2-pass")
    assert redact("login with hunter2-pass, then hunter2-pass again") == (
        "login with ***, then *** again"
    )


def test_nested_values_and_the_longest_secret_first() -> None:
    mask_secret({"token": "abcd", "nested": ["abcdef-long"]})
    assert redact("abcdef-long and abcd") == "*** and ***"


def test_short_and_non_string_values_are_not_masked() -> None:
    mask_secret("ab")
    mask_secret(12345)
    mask_secret(None)
    assert redact("ab 12345 None") == "ab 12345 None"


def test_regex_characters_in_a_secret_are_literal() -> None:
    mask_secret("p@ss.w*rd+")
    assert redact("x p@ss.w*rd+ y pXssXwwrd") == "x *** y pXssXwwrd"
