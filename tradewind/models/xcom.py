"""XCom: small JSON values that tasks hand to each other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.models.base import Base, JsonText, UtcDateTime, utcnow
from tradewind.models.dag import ID_LENGTH


class XCom(Base):
    __tablename__ = "xcom"
    __table_args__ = (
        UniqueConstraint("dag_run_id", "task_id", "map_index", "key"),
        Index("ix_xcom_dag_id_run_id_task_id", "dag_id", "run_id", "task_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_run_id: Mapped[int] = mapped_column(ForeignKey("dag_run.id", ondelete="CASCADE"))
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    key: Mapped[str] = mapped_column(String(512))
    value: Mapped[Any] = mapped_column(JsonText, nullable=True)  # NULL is JSON null
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
