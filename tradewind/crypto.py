"""Encryption of secrets at rest (connection passwords and extras, secret variables).

The key is ``TRADEWIND_FERNET_KEY``; without it, a key is generated once into
``$TRADEWIND_HOME/fernet.key`` (readable by the owner only), which suits a single host.
Deployments with several hosts must set the variable to the same key everywhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from tradewind.settings import Settings


def fernet_for(settings: Settings) -> Fernet:
    from cryptography.fernet import Fernet

    if settings.fernet_key is not None:
        key = settings.fernet_key.get_secret_value().encode()
        source = "TRADEWIND_FERNET_KEY"
    else:
        key_file = settings.home.expanduser() / "fernet.key"
        key = _read_or_create(key_file)
        source = str(key_file)
    try:
        return Fernet(key)
    except ValueError:
        raise ConfigError(
            f"{source}: not a valid Fernet key (32 url-safe base64-encoded bytes); "
            'make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from None


def api_secret_for(settings: Settings) -> bytes:
    """The key that signs API tokens: ``TRADEWIND_SECRET_KEY``, or one generated once
    into ``$TRADEWIND_HOME/api_secret.key``. Several webservers must share it."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        if len(key) < 64:
            raise ConfigError(
                "TRADEWIND_SECRET_KEY: use at least 64 characters, e.g. "
                '`python -c "import secrets; print(secrets.token_urlsafe(64))"`'
            )
        return key
    return _read_or_create(
        settings.home.expanduser() / "api_secret.key", lambda: secrets.token_urlsafe(64).encode()
    )


def _read_or_create(path: Path, generate: Callable[[], bytes] | None = None) -> bytes:
    from cryptography.fernet import Fernet

    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate() if generate is not None else Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def encrypt(settings: Settings, value: str) -> str:
    return fernet_for(settings).encrypt(value.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return fernet_for(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ConfigError(
            "a stored secret cannot be decrypted with the configured Fernet key "
            "(was TRADEWIND_FERNET_KEY changed?)"
        ) from None
