"""Password hashes are salted, slow, and verify only the right password."""

from __future__ import annotations

from tradewind.auth.passwords import generate_password, hash_password, verify_password


def test_hash_verifies_only_the_password() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse", stored)
    assert not verify_password("Correct horse", stored)


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_garbage_hashes_do_not_verify() -> None:
    assert not verify_password("x", "not-a-hash")
    assert not verify_password("x", "md5$1$2$3$abc$def")


def test_generated_passwords_are_long_and_distinct() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= 16 for p in passwords)
