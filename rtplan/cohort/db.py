"""The cohort database: SQLite by default (stdlib ``sqlite3``, one file, no server), or
PostgreSQL through SQLAlchemy for a ``postgresql://`` URL (extra ``rtplan[cohort-db]``).

Schema (version 1; ``meta`` holds ``schema_version``):

``patients(patient_id PK, status, issues)``
    One row per PatientID of the last index; ``issues`` is a JSON list of strings.
``plans(patient_id, plan_uid, plan_label, plan_path, dose_path, structure_path,
ct_series_uid, ct_files, ct_referenced, fractions, prescription_gy, status, issues)``
    Primary key ``(patient_id, plan_uid)``; see :class:`~rtplan.cohort.models.PlanEntry`.
``bad_files(path PK, reason)``
    Files of the tree that could not be read.
``results(patient_id PK, input_hash, status, error_kind, error, warnings, seconds,
computed_at)``
    The last computation of each patient (``status`` ``ok`` or ``error``).
``metrics(patient_id, plan_uid, plan_label, roi, metric, quantity, value, unit,
alpha_beta_gy, alpha_beta_source, fractions, fraction_category, dose_per_fraction_class)``
    Primary key ``(patient_id, plan_uid, roi, metric, quantity)``; tidy: one value a row.

Columns are TEXT, INTEGER or DOUBLE PRECISION (64-bit floats in both databases). A
patient's result and metrics are replaced in one transaction (:func:`store_result`), so
a killed run leaves every patient either fully stored or not at all. Re-indexing
replaces patients, plans and bad files, and drops the results of patients no longer in
the index. The SQL is written once, with named parameters, for both databases.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rtplan.cohort.models import (
    BadFile,
    CohortIndex,
    MetricRecord,
    PatientEntry,
    PatientResult,
    PlanEntry,
)
from rtplan.errors import InputError

__all__ = [
    "SCHEMA_VERSION",
    "CohortDB",
    "connect",
    "load_index",
    "load_metrics",
    "load_results",
    "store_index",
    "store_result",
]

SCHEMA_VERSION = "1"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS patients (
    patient_id TEXT PRIMARY KEY, status TEXT NOT NULL, issues TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS plans (
    patient_id TEXT NOT NULL, plan_uid TEXT NOT NULL, plan_label TEXT NOT NULL,
    plan_path TEXT NOT NULL, dose_path TEXT, structure_path TEXT, ct_series_uid TEXT,
    ct_files INTEGER NOT NULL, ct_referenced INTEGER NOT NULL, fractions INTEGER,
    prescription_gy DOUBLE PRECISION, status TEXT NOT NULL, issues TEXT NOT NULL,
    PRIMARY KEY (patient_id, plan_uid))""",
    "CREATE TABLE IF NOT EXISTS bad_files (path TEXT PRIMARY KEY, reason TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS results (
    patient_id TEXT PRIMARY KEY, input_hash TEXT NOT NULL, status TEXT NOT NULL,
    error_kind TEXT NOT NULL, error TEXT NOT NULL, warnings TEXT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL, computed_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS metrics (
    patient_id TEXT NOT NULL, plan_uid TEXT NOT NULL, plan_label TEXT NOT NULL,
    roi TEXT NOT NULL, metric TEXT NOT NULL, quantity TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, unit TEXT NOT NULL, alpha_beta_gy DOUBLE PRECISION,
    alpha_beta_source TEXT NOT NULL, fractions INTEGER NOT NULL,
    fraction_category TEXT NOT NULL, dose_per_fraction_class TEXT NOT NULL,
    PRIMARY KEY (patient_id, plan_uid, roi, metric, quantity))""",
)

_METRIC_COLUMNS = ("patient_id", "plan_uid", "plan_label", "roi", "metric", "quantity",
                   "value", "unit", "alpha_beta_gy", "alpha_beta_source", "fractions",
                   "fraction_category", "dose_per_fraction_class")
_PLAN_COLUMNS = ("patient_id", "plan_uid", "plan_label", "plan_path", "dose_path",
                 "structure_path", "ct_series_uid", "ct_files", "ct_referenced",
                 "fractions", "prescription_gy", "status", "issues")
_RESULT_COLUMNS = ("patient_id", "input_hash", "status", "error_kind", "error", "warnings",
                   "seconds", "computed_at")

Params = Mapping[str, Any]


def _insert(table: str, columns: Sequence[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join(':' + c for c in columns)})")


class CohortDB:
    """An open cohort database: SQL with ``:name`` parameters on SQLite or PostgreSQL.

    ``execute`` returns the rows (tuples) of a query, ``[]`` otherwise; statements run
    in autocommit unless inside ``with db.transaction():``.
    """

    def __init__(self, kind: str, handle: Any, where: str) -> None:
        self.kind = kind
        self.where = where
        self._h = handle
        self._in_tx = False

    def execute(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; its rows."""
        if self.kind == "sqlite":
            cur = self._h.execute(sql, dict(params or {}))
            rows = cur.fetchall()
            if not self._in_tx and self._h.in_transaction:
                self._h.commit()
            return [tuple(r) for r in rows]
        from sqlalchemy import text

        res = self._h.execute(text(sql), dict(params or {}))
        rows = [tuple(r) for r in res.fetchall()] if res.returns_rows else []
        if not self._in_tx:
            self._h.commit()
        return rows

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for each parameter set."""
        if not rows:
            return
        if self.kind == "sqlite":
            self._h.executemany(sql, [dict(r) for r in rows])
            if not self._in_tx and self._h.in_transaction:
                self._h.commit()
            return
        from sqlalchemy import text

        self._h.execute(text(sql), [dict(r) for r in rows])
        if not self._in_tx:
            self._h.commit()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is committed together, or rolled back on an exception."""
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._h.rollback()
            raise
        else:
            self._h.commit()
        finally:
            self._in_tx = False


def _is_url(text: str) -> bool:
    return "://" in text


@contextmanager
def _open_sqlite(path: Path, create: bool) -> Iterator[CohortDB]:
    if not create and not path.is_file():
        raise InputError(f"no cohort database '{path}': run 'rtplan cohort index' first")
    try:
        con = sqlite3.connect(path, timeout=30.0, isolation_level="DEFERRED")
    except sqlite3.Error as exc:
        raise InputError(f"cannot open the cohort database '{path}' ({exc}): check that its "
                         "folder exists and is writable") from exc
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        yield CohortDB("sqlite", con, str(path))
    except sqlite3.DatabaseError as exc:
        raise InputError(f"'{path}' is not a usable SQLite cohort database ({exc})") from exc
    finally:
        con.close()


@contextmanager
def _open_sqlalchemy(url: str) -> Iterator[CohortDB]:
    from rtplan._shared.optional import import_optional

    sa = import_optional("sqlalchemy", feature="PostgreSQL cohort databases")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # unknown dialect or missing driver
        raise InputError(f"cannot use the database URL {url!r}: {exc} (PostgreSQL needs "
                         "pip install 'rtplan[cohort-db]')") from exc
    try:
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise InputError(f"cannot connect to {engine.url!r}: "
                             f"{str(exc).splitlines()[0]}") from exc
        try:
            yield CohortDB("sqlalchemy", conn, str(engine.url))
        except sa.exc.SQLAlchemyError as exc:
            raise InputError(f"database error on {engine.url!r}: "
                             f"{str(exc).splitlines()[0]}") from exc
        finally:
            conn.close()
    finally:
        engine.dispose()


@contextmanager
def connect(db: str | os.PathLike[str], *, create: bool = False) -> Iterator[CohortDB]:
    """Open the cohort database, creating the schema if needed.

    Parameters
    ----------
    db
        A SQLite file path, or a ``postgresql://user@host/dbname`` URL (SQLAlchemy and
        psycopg, ``pip install 'rtplan[cohort-db]'``).
    create
        Create a missing SQLite file (a PostgreSQL database must exist; its tables are
        created when missing).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.sqlite")
    >>> with connect(p, create=True) as con:
    ...     con.execute("SELECT value FROM meta WHERE key='schema_version'")[0][0]
    '1'
    """
    text = os.fspath(db)
    if _is_url(text):
        scheme = text.split("://", 1)[0].split("+", 1)[0]
        if scheme != "postgresql":
            raise InputError(f"database {text!r}: use a SQLite file path or a "
                             f"postgresql:// URL ({scheme}:// is not supported)")
        opener = _open_sqlalchemy(text)
    else:
        opener = _open_sqlite(Path(text), create)
    with opener as con:
        with con.transaction():
            for ddl in _TABLES:
                con.execute(ddl)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            if not row:
                con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', :v)",
                            {"v": SCHEMA_VERSION})
            elif row[0][0] != SCHEMA_VERSION:
                raise InputError(
                    f"'{con.where}' has cohort schema version {row[0][0]}, this rtplan "
                    f"writes {SCHEMA_VERSION}: index into a new database"
                )
        yield con


def _set_meta(con: CohortDB, key: str, value: str) -> None:
    con.execute("DELETE FROM meta WHERE key = :k", {"k": key})
    con.execute("INSERT INTO meta (key, value) VALUES (:k, :v)", {"k": key, "v": value})


def store_index(con: CohortDB, index: CohortIndex) -> None:
    """Replace the index tables by ``index`` (one transaction)."""
    with con.transaction():
        con.execute("DELETE FROM patients")
        con.execute("DELETE FROM plans")
        con.execute("DELETE FROM bad_files")
        _set_meta(con, "root", index.root)
        _set_meta(con, "index_counts", json.dumps({
            "n_files": index.n_files, "n_dicom": index.n_dicom, "n_ignored": index.n_ignored}))
        con.executemany(_insert("patients", ("patient_id", "status", "issues")), [
            {"patient_id": p.patient_id, "status": p.status, "issues": json.dumps(p.issues)}
            for p in index.patients])
        plans = []
        for p in index.patients:
            for pl in p.plans:
                row = pl.model_dump()
                row["issues"] = json.dumps(pl.issues)
                plans.append({c: row[c] for c in _PLAN_COLUMNS})
        con.executemany(_insert("plans", _PLAN_COLUMNS), plans)
        con.executemany(_insert("bad_files", ("path", "reason")),
                        [{"path": b.path, "reason": b.reason} for b in index.bad_files])
        con.execute("DELETE FROM results WHERE patient_id NOT IN (SELECT patient_id FROM "
                    "patients)")
        con.execute("DELETE FROM metrics WHERE patient_id NOT IN (SELECT patient_id FROM "
                    "patients)")


def load_index(con: CohortDB) -> CohortIndex:
    """The index stored by :func:`store_index`."""
    meta = dict(con.execute("SELECT key, value FROM meta"))
    counts = json.loads(meta.get("index_counts", '{"n_files": 0, "n_dicom": 0, '
                                 '"n_ignored": 0}'))
    plans: dict[str, list[PlanEntry]] = {}
    for row in con.execute(f"SELECT {', '.join(_PLAN_COLUMNS)} FROM plans ORDER BY "
                           "patient_id, plan_uid"):
        d = dict(zip(_PLAN_COLUMNS, row, strict=True))
        d["issues"] = json.loads(d["issues"])
        plans.setdefault(d["patient_id"], []).append(PlanEntry(**d))
    patients = [
        PatientEntry(patient_id=pid, status=status, issues=json.loads(issues),
                     plans=plans.get(pid, []))
        for pid, status, issues in con.execute(
            "SELECT patient_id, status, issues FROM patients ORDER BY patient_id")
    ]
    bad = [BadFile(path=p, reason=r)
           for p, r in con.execute("SELECT path, reason FROM bad_files ORDER BY path")]
    return CohortIndex(root=meta.get("root", ""), patients=patients, bad_files=bad, **counts)


def store_result(con: CohortDB, result: PatientResult) -> None:
    """Replace one patient's result and metrics, in one transaction."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")
    pid = {"p": result.patient_id}
    with con.transaction():
        con.execute("DELETE FROM metrics WHERE patient_id = :p", pid)
        con.execute("DELETE FROM results WHERE patient_id = :p", pid)
        con.execute(_insert("results", _RESULT_COLUMNS), {
            "patient_id": result.patient_id, "input_hash": result.input_hash,
            "status": result.status, "error_kind": result.error_kind, "error": result.error,
            "warnings": json.dumps(result.warnings), "seconds": result.seconds,
            "computed_at": now})
        con.executemany(_insert("metrics", _METRIC_COLUMNS),
                        [{c: getattr(m, c) for c in _METRIC_COLUMNS} for m in result.metrics])


def load_results(con: CohortDB) -> dict[str, dict[str, Any]]:
    """patient_id -> stored result row (input_hash, status, error_kind, error, warnings,
    seconds, computed_at)."""
    return {row[0]: dict(zip(_RESULT_COLUMNS, row, strict=True))
            for row in con.execute(f"SELECT {', '.join(_RESULT_COLUMNS)} FROM results")}


def load_metrics(con: CohortDB) -> list[MetricRecord]:
    """Every stored metric, sorted by patient, plan, ROI, metric and quantity."""
    rows = con.execute(f"SELECT {', '.join(_METRIC_COLUMNS)} FROM metrics ORDER BY "
                       "patient_id, plan_uid, roi, metric, quantity")
    return [MetricRecord(**dict(zip(_METRIC_COLUMNS, row, strict=True))) for row in rows]
