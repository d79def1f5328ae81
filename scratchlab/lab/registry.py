"""The lab registry: artifacts, jobs and metrics in `lab.db` (SQLAlchemy 2.0 ORM, SQLite in WAL mode).

Shaped like LangGraph's `SqliteSaver`: the engine is injected (`Registry(engine)`), there is a
`from_url` / `from_workspace` constructor, `setup()` is lazy and safe to repeat, and every query is
parameterized. The same file also holds LangGraph's checkpointer and store tables (see
`scratchlab.agent.memory`); their tables and ours never overlap.

    reg = Registry.from_workspace(get_workspace())
    art = reg.add_artifact("tokenizer", "shakes512", path, config={...}, metrics={...})  # NameTaken if it exists
    reg.get_artifact("shakes512", kind="tokenizer")      # by name, id ("tokenizer-3") or "last"
    job = reg.create_job("gpt", config={...}); reg.update_job(job.id, status="running")
    reg.log_metrics("run-7", step=100, train_loss=2.1, val_loss=2.2)

Artifact kinds used by the engines: tokenizer, dataset, run, index, adapter, base, plot, file.
The tables and records are in `scratchlab.lab.schema`; the SQLite set-up in `scratchlab.lab.sqlite`.

Names are identities: within a kind a name belongs to one artifact for good. `add_artifact` refuses
a taken name (`NameTaken`, enforced by a unique index, so of several processes creating one name
at once exactly one wins); an artifact changes through `update_artifact`, never by re-adding it.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from scratchlab.lab.dbcheck import LabDatabaseError, check_sqlite_file, describe_db_error
from scratchlab.lab.schema import (
    UNIQUE_NAME_INDEX,
    Artifact,
    ArtifactRow,
    Base,
    Job,
    JobRow,
    MetricRow,
    ThreadRow,
    utcnow,
)
from scratchlab.lab.sqlite import SYNC_NORMAL, sqlite_engine

__all__ = ["DEFAULT_NAME_STEMS", "Artifact", "ArtifactNotFound", "Job", "LabDatabaseError", "NameTaken", "Registry", "check_sqlite_file",
           "describe_db_error", "make_engine"]  # fmt: skip

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
# the stem of the name a tool gives a new record of a kind when the user gives none ("gpt-3", "sweep-2")
DEFAULT_NAME_STEMS = {"run": "gpt", "sweep": "sweep", "research": "research"}
LATEST_REFS = ("last", "latest", "newest", "recent")
NAME_AND_ID_RE = re.compile(
    r"^.+? \(([a-z]+-\d+)\)(?:\s+\S.*)?$"
)  # "gpt-1-lora-1 (adapter-2)" [+ " on gpt-1"]
NAME_TAKEN_HELP = (
    "{article} {kind} named {name!r} already exists ({id}); names are never reused, so choose another name"
)
SETUP_ATTEMPTS = 3  # processes creating the tables of a new lab.db at once race on CREATE TABLE


class ArtifactNotFound(LookupError):
    """No artifact matches the reference; the message lists what exists."""


class NameTaken(ValueError):
    """An artifact of this kind already has this name (names are identities and never reused)."""

    def __init__(self, kind: str, name: str, existing_id: str):
        article = "an" if kind[:1] in "aeiou" else "a"
        super().__init__(NAME_TAKEN_HELP.format(article=article, kind=kind, name=name, id=existing_id))
        self.kind, self.name, self.existing_id = kind, name, existing_id


def make_engine(url: str) -> Engine:
    """The lab.db engine: `scratchlab.lab.sqlite` set-up (WAL, 30 s busy timeout, foreign keys,
    synchronous=NORMAL), and errors that are not about our SQL (a full disk, a locked or damaged
    file) raised as `LabDatabaseError` with a diagnosis from `describe_db_error`.
    """
    engine = sqlite_engine(url, synchronous=SYNC_NORMAL)

    @event.listens_for(engine, "handle_error")
    def _diagnose(ctx):
        orig = ctx.original_exception
        if isinstance(orig, sqlite3.OperationalError) and engine.url.database:
            text = str(orig).lower()
            if "full" in text or "disk i/o" in text or "locked" in text or "busy" in text:
                raise LabDatabaseError(describe_db_error(engine.url.database, orig)) from orig

    return engine


class Registry:
    """Artifacts, jobs and metrics. Thread-safe for one process; many processes share it through WAL."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._is_setup = False

    @classmethod
    def from_url(cls, url: str) -> Registry:
        return cls(make_engine(url))

    @classmethod
    def from_workspace(cls, workspace) -> Registry:
        check_sqlite_file(workspace.db_path)
        return cls.from_url(workspace.db_url)

    def setup(self) -> None:
        """Create our tables if missing. Safe to call repeatedly."""
        if self._is_setup:
            return
        for attempt in range(SETUP_ATTEMPTS):
            try:
                Base.metadata.create_all(self.engine)
                self._ensure_unique_names()
                break
            except (OperationalError, DatabaseError) as e:
                if "already exists" in str(e.orig) and attempt + 1 < SETUP_ATTEMPTS:
                    continue  # another process created it between our check and our CREATE
                raise LabDatabaseError(describe_db_error(self.engine.url.database, e)) from e
        self._is_setup = True

    def _ensure_unique_names(self) -> None:
        """Add the (kind, name) unique index to a lab.db made before it existed.

        Rows that an older version let share a name (concurrent creation) keep the name on the newest
        row; older ones are renamed "<name>~<id>" so that every artifact stays reachable.
        """
        index = next(i for i in ArtifactRow.__table__.indexes if i.name == UNIQUE_NAME_INDEX)
        with self.engine.begin() as conn:
            if conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?", (UNIQUE_NAME_INDEX,)
            ).first():
                return
            seen: set[tuple[str, str]] = set()
            rows = conn.execute(select(ArtifactRow.pk, ArtifactRow.id, ArtifactRow.kind, ArtifactRow.name)
                                .order_by(ArtifactRow.pk.desc())).all()  # fmt: skip
            for pk, aid, kind, name in rows:
                if (kind, name) in seen:
                    conn.execute(
                        ArtifactRow.__table__.update()
                        .where(ArtifactRow.pk == pk)
                        .values(name=f"{name}~{aid or pk}")
                    )
                seen.add((kind, name))
            index.create(conn, checkfirst=True)

    def _session(self) -> Session:
        self.setup()
        return Session(self.engine, expire_on_commit=False)

    # ---- artifacts -------------------------------------------------------------------------------
    def add_artifact(
        self,
        kind: str,
        name: str,
        path: str | Path = "",
        config: dict | None = None,
        metrics: dict | None = None,
        parent: str | None = None,
    ) -> Artifact:
        """Register a new artifact and return it (its id is "<kind>-<n>").

        Raises:
            NameTaken: `kind` already has an artifact called `name`. Atomic: of several threads or
                processes adding one name at once, exactly one succeeds.
        """
        try:
            with self._session() as s, s.begin():
                row = ArtifactRow(kind=kind, name=name, path=str(path), config=config or {},
                                  metrics=metrics or {}, parent=parent, updated_at=utcnow())  # fmt: skip
                s.add(row)
                s.flush()
                row.id = f"{kind}-{row.pk}"
                s.flush()
                return Artifact.from_row(row)
        except IntegrityError as e:
            existing = self.find_artifact(name, kind)
            raise NameTaken(kind, name, existing.id if existing else "just created") from e

    def find_artifact(self, name: str, kind: str) -> Artifact | None:
        """The artifact of `kind` called exactly `name` (no id or "last" lookup), or None."""
        with self._session() as s:
            row = s.scalar(select(ArtifactRow).where(ArtifactRow.kind == kind, ArtifactRow.name == name))
            return Artifact.from_row(row) if row is not None else None

    def check_name_free(self, kind: str, name: str) -> None:
        """Raise `NameTaken` if `kind` has an artifact called `name` (a quick check before long work;
        `add_artifact` is the atomic one)."""
        existing = self.find_artifact(name, kind)
        if existing is not None:
            raise NameTaken(kind, name, existing.id)

    def free_name(self, kind: str, stem: str, folder: Path | None = None) -> str:
        """`stem`, or else `stem-2`, `stem-3`, ...: the first name `kind` does not have (and, when
        `folder` is given, for which `folder / name` does not exist). For names the user did not give."""
        with self._session() as s:
            taken = set(s.scalars(select(ArtifactRow.name).where(ArtifactRow.kind == kind)))
        n, name = 1, stem
        while name in taken or (folder is not None and (Path(folder) / name).exists()):
            n += 1
            name = f"{stem}-{n}"
        return name

    def update_artifact(self, artifact_id: str, *, metrics: dict | None = None, config: dict | None = None,
                        path: str | None = None) -> Artifact:  # fmt: skip
        """Merge `metrics`/`config` into an artifact's (by id or name). Raises ArtifactNotFound."""
        art = self.get_artifact(artifact_id)
        with self._session() as s, s.begin():
            row = s.scalar(select(ArtifactRow).where(ArtifactRow.id == art.id))
            if metrics:
                row.metrics = {**(row.metrics or {}), **metrics}
            if config:
                row.config = {**(row.config or {}), **config}
            if path is not None:
                row.path = path
            row.updated_at = utcnow()
            s.flush()
            return Artifact.from_row(row)

    def get_artifact(self, ref: str, kind: str | None = None) -> Artifact:
        """Find an artifact by id ("run-7"), by name, as "name (id)", or "last"/"latest" (newest of `kind`).

        Raises:
            ArtifactNotFound: nothing matches; the message lists the closest existing names.
        """
        ref = str(ref).strip()
        shown = NAME_AND_ID_RE.match(ref)
        if shown:  # "gpt-1-lora-1 (adapter-2)": the form tool results and error messages show
            ref = shown.group(1)
        with self._session() as s:
            q = select(ArtifactRow)
            if kind:
                q = q.where(ArtifactRow.kind == kind)
            if ref.lower() in LATEST_REFS:
                row = s.scalar(q.order_by(ArtifactRow.updated_at.desc(), ArtifactRow.pk.desc()).limit(1))
            else:
                row = s.scalar(q.where(ArtifactRow.id == ref)) or s.scalar(
                    q.where(ArtifactRow.name == ref).order_by(ArtifactRow.pk.desc()).limit(1)
                )
            if row is None:
                names = [f"{r.name} ({r.id})" for r in s.scalars(q.order_by(ArtifactRow.pk.desc()).limit(10))]
                what = f"{kind} " if kind else ""
                have = ", ".join(names) if names else "none yet"
                raise ArtifactNotFound(f"no {what}artifact named {ref!r}; existing: {have}")
            return Artifact.from_row(row)

    def list_artifacts(self, kind: str | None = None, limit: int | None = None) -> list[Artifact]:
        """Artifacts, newest first, optionally of one kind."""
        with self._session() as s:
            q = select(ArtifactRow).order_by(ArtifactRow.updated_at.desc(), ArtifactRow.pk.desc())
            if kind:
                q = q.where(ArtifactRow.kind == kind)
            if limit:
                q = q.limit(limit)
            return [Artifact.from_row(r) for r in s.scalars(q)]

    def remove_artifact(self, ref: str, kind: str | None = None) -> Artifact:
        """Delete an artifact's row (not its files) and return what it was. Raises ArtifactNotFound."""
        art = self.get_artifact(ref, kind)
        with self._session() as s, s.begin():
            row = s.scalar(select(ArtifactRow).where(ArtifactRow.id == art.id))
            s.delete(row)
        return art

    # ---- jobs ------------------------------------------------------------------------------------
    def create_job(self, kind: str, config: dict | None = None, total: int = 0) -> Job:
        with self._session() as s, s.begin():
            row = JobRow(kind=kind, config=config or {}, total=total, status="queued")
            s.add(row)
            s.flush()
            row.id = f"job-{row.pk}"
            s.flush()
            return Job.from_row(row)

    def update_job(self, job_id: str, **fields: Any) -> Job:
        """Set job columns (status, pid, step, total, message, result, error, artifact_id, ...)."""
        if "status" in fields and fields["status"] not in JOB_STATUSES:
            raise ValueError(f"invalid job status {fields['status']!r}; expected one of {JOB_STATUSES}")
        with self._session() as s, s.begin():
            row = s.scalar(select(JobRow).where(JobRow.id == job_id))
            if row is None:
                raise LookupError(f"no job {job_id!r}")
            for k, v in fields.items():
                if not hasattr(JobRow, k) or k in ("pk", "id"):
                    raise ValueError(f"unknown job field {k!r}")
                setattr(row, k, v)
            row.heartbeat_at = utcnow()
            if fields.get("status") == "running" and row.started_at is None:
                row.started_at = utcnow()
            if fields.get("status") in ("done", "failed", "cancelled"):
                row.ended_at = utcnow()
            s.flush()
            return Job.from_row(row)

    def get_job(self, job_id: str) -> Job:
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.id == job_id))
            if row is None:
                raise LookupError(f"no job {job_id!r}")
            return Job.from_row(row)

    def list_jobs(self, status: str | None = None, limit: int | None = 50) -> list[Job]:
        with self._session() as s:
            q = select(JobRow).order_by(JobRow.pk.desc())
            if status:
                q = q.where(JobRow.status == status)
            if limit:
                q = q.limit(limit)
            return [Job.from_row(r) for r in s.scalars(q)]

    # ---- conversation threads (titles; the messages live in LangGraph's checkpointer) ------------
    def touch_thread(self, thread_id: str, title: str = "") -> None:
        """Record that `thread_id` was used now; the first non-empty `title` sticks."""
        with self._session() as s, s.begin():
            row = s.get(ThreadRow, thread_id)
            if row is None:
                s.add(ThreadRow(thread_id=thread_id, title=title[:120]))
            else:
                row.updated_at = utcnow()
                if not row.title and title:
                    row.title = title[:120]

    def list_threads(self, limit: int = 20) -> list[tuple[str, str, dt.datetime]]:
        """(thread_id, title, updated_at), most recent first."""
        with self._session() as s:
            q = select(ThreadRow).order_by(ThreadRow.updated_at.desc()).limit(limit)
            return [(r.thread_id, r.title, r.updated_at) for r in s.scalars(q)]

    # ---- metrics ---------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, step: int, **values: float) -> None:
        """Append one row per value: (run_id, step, key, value)."""
        with self._session() as s, s.begin():
            s.add_all(
                MetricRow(run_id=run_id, step=int(step), key=k, value=float(v)) for k, v in values.items()
            )

    def metrics(self, run_id: str, key: str | None = None) -> list[tuple[int, str, float]]:
        """All (step, key, value) rows of a run, in step order."""
        with self._session() as s:
            q = select(MetricRow.step, MetricRow.key, MetricRow.value).where(MetricRow.run_id == run_id)
            if key:
                q = q.where(MetricRow.key == key)
            return [tuple(r) for r in s.execute(q.order_by(MetricRow.step, MetricRow.pk))]
