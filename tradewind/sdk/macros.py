"""``macros`` in templates: ``{{ macros.ds_add(ds, 7) }}``, ``{{ macros.datetime }}``..."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import date, datetime, timedelta

__all__ = ["date", "datetime", "ds_add", "ds_format", "json", "random", "time", "timedelta", "uuid"]


def ds_add(ds: str, days: int) -> str:
    """Add (or subtract) days to a ``YYYY-MM-DD`` date: ``ds_add("2024-01-01", 5)``."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string: ``ds_format("2024-01-05", "%Y-%m-%d", "%m-%d-%y")``."""
    return datetime.strptime(ds, input_format).strftime(output_format)
