"""Printing lists of records as a table, JSON or YAML (``-o table|json|yaml|plain``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

FORMATS = ("table", "json", "yaml", "plain")


def _cell(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def render(
    rows: Sequence[dict[str, Any]], fmt: str = "table", *, out: TextIO | None = None
) -> None:
    """Print rows (dicts with the same keys) in the chosen format."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps([_jsonable(r) for r in rows], indent=2, default=str) + "\n")
        return
    if fmt == "yaml":
        import yaml

        out.write(yaml.safe_dump([_jsonable(r) for r in rows], sort_keys=False) if rows else "[]\n")
        return
    if not rows:
        out.write("No data found\n")
        return
    headers = list(rows[0].keys())
    cells = [[_cell(r.get(h)) for h in headers] for r in rows]
    if fmt == "plain":
        for line in cells:
            out.write(" ".join(line) + "\n")
        return
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    out.write(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("=+=".join("=" * w for w in widths) + "\n")
    for line in cells:
        out.write(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
