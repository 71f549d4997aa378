"""Triggers that deferred task instances wait on, and the triggerer running each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow


class Trigger(Base):
    """One deferral's wait: the trigger's class path and encoded kwargs, and the
    triggerer job that runs it (None until one claims it, or after its triggerer died)."""

    __tablename__ = "trigger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    classpath: Mapped[str] = mapped_column(String(1000))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JsonText)
    created_date: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    triggerer_id: Mapped[int | None] = mapped_column(Integer, index=True)


__all__ = ["Trigger"]
