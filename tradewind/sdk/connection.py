"""`Connection`: how to reach an external system (host, login, password, extras).

Example::

    warehouse = Connection.get("warehouse")
    engine = create_engine(warehouse.get_uri())

``TRADEWIND_CONN_<ID>`` in the environment (a URI, or JSON with the fields) overrides
the database, as Airflow's ``AIRFLOW_CONN_<ID>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from tradewind.errors import ConnectionNotFound


@dataclass
class Connection:
    conn_id: str
    conn_type: str = ""
    description: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: str | None = field(default=None, repr=False)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_uri(self) -> str:
        """``type://login:password@host:port/schema?extra`` with each part quoted."""
        uri = f"{self.conn_type.replace('_', '-')}://"
        if self.login or self.password:
            uri += quote(self.login or "", safe="")
            if self.password:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        uri += self.host or ""
        if self.port:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        if self.extra_dejson:
            uri += "?" + urlencode(
                {
                    k: v if isinstance(v, str) else json.dumps(v)
                    for k, v in self.extra_dejson.items()
                }
            )
        return uri

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        parts = urlsplit(uri)
        extra = dict(parse_qsl(parts.query, keep_blank_values=True))
        return cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_"),
            host=unquote(parts.hostname) if parts.hostname else None,
            schema=unquote(parts.path.lstrip("/")) or None,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            port=parts.port,
            extra=json.dumps(extra) if extra else None,
        )

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """The connection from the environment or the database."""
        raw = os.environ.get(f"TRADEWIND_CONN_{conn_id.upper()}")
        if raw is not None:
            return _masked(cls._from_env(conn_id, raw))
        from tradewind.db import process_session_factory
        from tradewind.settings import get_settings
        from tradewind.variables import get_connection_fields

        fields = get_connection_fields(process_session_factory(), get_settings(), conn_id)
        if fields is None:
            raise ConnectionNotFound(f"connection {conn_id!r} is not defined")
        return _masked(cls(**fields))

    get_connection_from_secrets = get

    @classmethod
    def _from_env(cls, conn_id: str, raw: str) -> Connection:
        if raw.lstrip().startswith("{"):
            data = json.loads(raw)
            extra = data.pop("extra", None)
            if isinstance(extra, dict):
                extra = json.dumps(extra)
            return cls(conn_id=conn_id, extra=extra, **data)
        return cls.from_uri(conn_id, raw)


def _masked(connection: Connection) -> Connection:
    """Register the connection's secrets with the log masker before anyone logs them."""
    from tradewind.sdk.variable import looks_secret
    from tradewind.secrets_masker import mask_secret

    mask_secret(connection.password)
    try:
        extra = connection.extra_dejson
    except ValueError:
        extra = {}
    for key, value in extra.items():
        if looks_secret(str(key)):
            mask_secret(value)
    return connection
