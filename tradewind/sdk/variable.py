"""`Variable`: named configuration values stored in Tradewind, read by DAGs at run time.

Example::

    bucket = Variable.get("feature_bucket", default_var="s3://features")
    thresholds = Variable.get("thresholds", deserialize_json=True)

``TRADEWIND_VAR_<KEY>`` in the environment overrides the database (as Airflow's
``AIRFLOW_VAR_<KEY>``). Values of keys that look secret are encrypted at rest.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tradewind.errors import VariableNotFound
from tradewind.sdk.params import NOTSET

SECRET_KEY_WORDS = (
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "credential",
)


def looks_secret(key: str) -> bool:
    """Whether a variable or field name suggests its value is a secret."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_KEY_WORDS)


class Variable:
    """Read and write variables (``Variable.get``, ``Variable.set``, ``Variable.delete``)."""

    @staticmethod
    def get(key: str, default_var: Any = NOTSET, deserialize_json: bool = False) -> Any:
        raw = os.environ.get(f"TRADEWIND_VAR_{key.upper()}")
        if raw is None:
            raw = _store().get(key)
        if raw is None:
            if default_var is NOTSET:
                raise VariableNotFound(f"variable {key!r} does not exist")
            return default_var
        value = json.loads(raw) if deserialize_json else raw
        if looks_secret(key):
            from tradewind.secrets_masker import mask_secret

            mask_secret(raw)
            mask_secret(value)
        return value

    @staticmethod
    def set(
        key: str, value: Any, description: str | None = None, serialize_json: bool = False
    ) -> None:
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        _store().set(key, text, description)

    @staticmethod
    def delete(key: str) -> int:
        deleted: int = _store().delete(key)
        return deleted


def _store() -> Any:
    from tradewind.variables import VariableStore

    return VariableStore.for_process()
