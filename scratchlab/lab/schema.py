"""The tables of lab.db that scratchlab owns (SQLAlchemy 2.0 ORM) and the records read from them.

    from scratchlab.lab.schema import Artifact, ArtifactRow, Job, JobRow, MetricRow
    Artifact.from_row(row)            # a plain dataclass, safe to use after the session closed

Tables (prefix `sl_`, so they never meet LangGraph's checkpointer and store tables in the same file):
`sl_artifacts` (kind, unique name, path, config/metrics JSON, parent), `sl_jobs` (status, pid,
progress, result), `sl_metrics` (run_id, step, key, value), `sl_threads` (conversation titles).
`scratchlab.lab.registry.Registry` is the only writer.

Source: SQLAlchemy 2.0 declarative mapping (`Mapped`, `mapped_column`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UNIQUE_NAME_INDEX = "uq_sl_artifacts_kind_name"


def utcnow() -> dt.datetime:
    """Now in UTC, without tzinfo (SQLite's DateTime keeps naive values)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ArtifactRow(Base):
    __tablename__ = "sl_artifacts"
    __table_args__ = (Index(UNIQUE_NAME_INDEX, "kind", "name", unique=True),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    path: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    parent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class JobRow(Base):
    __tablename__ = "sl_jobs"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    artifact_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class MetricRow(Base):
    __tablename__ = "sl_metrics"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ThreadRow(Base):
    __tablename__ = "sl_threads"
    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


@dataclass
class Artifact:
    """A registered artifact. `id` is "<kind>-<n>"; `name` is unique within its kind."""

    id: str
    kind: str
    name: str
    path: str
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    parent: str | None = None
    created_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, r: ArtifactRow) -> Artifact:
        return cls(
            r.id or "",
            r.kind,
            r.name,
            r.path,
            dict(r.config or {}),
            dict(r.metrics or {}),
            r.parent,
            r.created_at,
        )


@dataclass
class Job:
    """A background job as recorded in lab.db (see `scratchlab.lab.jobs`)."""

    id: str
    kind: str
    status: str
    pid: int | None
    config: dict
    artifact_id: str | None
    step: int
    total: int
    message: str
    result: dict
    error: str
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    heartbeat_at: dt.datetime | None

    @classmethod
    def from_row(cls, r: JobRow) -> Job:
        return cls(
            r.id or "", r.kind, r.status, r.pid, dict(r.config or {}), r.artifact_id, r.step, r.total,
            r.message, dict(r.result or {}), r.error, r.created_at, r.started_at, r.ended_at, r.heartbeat_at,
        )  # fmt: skip
