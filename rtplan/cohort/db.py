"""The cohort database: SQLite (stdlib ``sqlite3``), one file, no server.

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

A patient's result and metrics are replaced in one transaction
(:func:`store_result`), so a killed run leaves every patient either fully stored or
not at all. Re-indexing replaces patients, plans and bad files, and drops the results
of patients no longer in the index.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    "connect",
    "load_index",
    "load_metrics",
    "load_results",
    "store_index",
    "store_result",
]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    patient_id TEXT PRIMARY KEY, status TEXT NOT NULL, issues TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    patient_id TEXT NOT NULL, plan_uid TEXT NOT NULL, plan_label TEXT NOT NULL,
    plan_path TEXT NOT NULL, dose_path TEXT, structure_path TEXT, ct_series_uid TEXT,
    ct_files INTEGER NOT NULL, ct_referenced INTEGER NOT NULL, fractions INTEGER,
    prescription_gy REAL, status TEXT NOT NULL, issues TEXT NOT NULL,
    PRIMARY KEY (patient_id, plan_uid));
CREATE TABLE IF NOT EXISTS bad_files (path TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    patient_id TEXT PRIMARY KEY, input_hash TEXT NOT NULL, status TEXT NOT NULL,
    error_kind TEXT NOT NULL, error TEXT NOT NULL, warnings TEXT NOT NULL,
    seconds REAL NOT NULL, computed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    patient_id TEXT NOT NULL, plan_uid TEXT NOT NULL, plan_label TEXT NOT NULL,
    roi TEXT NOT NULL, metric TEXT NOT NULL, quantity TEXT NOT NULL, value REAL NOT NULL,
    unit TEXT NOT NULL, alpha_beta_gy REAL, alpha_beta_source TEXT NOT NULL,
    fractions INTEGER NOT NULL, fraction_category TEXT NOT NULL,
    dose_per_fraction_class TEXT NOT NULL,
    PRIMARY KEY (patient_id, plan_uid, roi, metric, quantity));
"""

_METRIC_COLUMNS = ("patient_id", "plan_uid", "plan_label", "roi", "metric", "quantity",
                   "value", "unit", "alpha_beta_gy", "alpha_beta_source", "fractions",
                   "fraction_category", "dose_per_fraction_class")
_PLAN_COLUMNS = ("patient_id", "plan_uid", "plan_label", "plan_path", "dose_path",
                 "structure_path", "ct_series_uid", "ct_files", "ct_referenced",
                 "fractions", "prescription_gy", "status", "issues")


def _check_url(db: str | os.PathLike[str]) -> Path:
    text = os.fspath(db)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise InputError(
            f"database {text!r}: only SQLite files are supported in this version "
            f"({scheme}:// URLs are not); give a file path such as cohort.sqlite"
        )
    return Path(text)


@contextmanager
def connect(db: str | os.PathLike[str], *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """Open the cohort database (a SQLite file), creating the schema if asked.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "c.sqlite")
    >>> with connect(p, create=True) as con:
    ...     con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    '1'
    """
    path = _check_url(db)
    if not create and not path.is_file():
        raise InputError(f"no cohort database '{path}': run 'rtplan cohort index' first")
    con = sqlite3.connect(path, timeout=30.0)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        with con:
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise InputError(
                    f"'{path}' has cohort schema version {row[0]}, this rtplan writes "
                    f"{SCHEMA_VERSION}: index into a new database file"
                )
        yield con
    except sqlite3.DatabaseError as exc:
        raise InputError(f"'{path}' is not a usable SQLite cohort database ({exc})") from exc
    finally:
        con.close()


def store_index(con: sqlite3.Connection, index: CohortIndex) -> None:
    """Replace the index tables by ``index`` (one transaction)."""
    with con:
        con.execute("DELETE FROM patients")
        con.execute("DELETE FROM plans")
        con.execute("DELETE FROM bad_files")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (index.root,))
        con.execute("INSERT OR REPLACE INTO meta VALUES ('index_counts', ?)",
                    (json.dumps({"n_files": index.n_files, "n_dicom": index.n_dicom,
                                 "n_ignored": index.n_ignored}),))
        for p in index.patients:
            con.execute("INSERT INTO patients VALUES (?, ?, ?)",
                        (p.patient_id, p.status, json.dumps(p.issues)))
            for pl in p.plans:
                row = pl.model_dump()
                row["issues"] = json.dumps(pl.issues)
                con.execute(f"INSERT INTO plans VALUES ({', '.join('?' * len(_PLAN_COLUMNS))})",
                            [row[c] for c in _PLAN_COLUMNS])
        con.executemany("INSERT OR REPLACE INTO bad_files VALUES (?, ?)",
                        [(b.path, b.reason) for b in index.bad_files])
        con.execute("DELETE FROM results WHERE patient_id NOT IN (SELECT patient_id FROM "
                    "patients)")
        con.execute("DELETE FROM metrics WHERE patient_id NOT IN (SELECT patient_id FROM "
                    "patients)")


def load_index(con: sqlite3.Connection) -> CohortIndex:
    """The index stored by :func:`store_index`."""
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    counts = json.loads(meta.get("index_counts", '{"n_files": 0, "n_dicom": 0, '
                                 '"n_ignored": 0}'))
    plans: dict[str, list[PlanEntry]] = {}
    cur = con.execute(f"SELECT {', '.join(_PLAN_COLUMNS)} FROM plans ORDER BY patient_id, "
                      "plan_uid")
    for row in cur:
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


def store_result(con: sqlite3.Connection, result: PatientResult) -> None:
    """Replace one patient's result and metrics, in one transaction."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")
    with con:
        con.execute("DELETE FROM metrics WHERE patient_id = ?", (result.patient_id,))
        con.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (result.patient_id, result.input_hash, result.status, result.error_kind,
             result.error, json.dumps(result.warnings), result.seconds, now),
        )
        con.executemany(
            f"INSERT INTO metrics VALUES ({', '.join('?' * len(_METRIC_COLUMNS))})",
            [tuple(getattr(m, c) for c in _METRIC_COLUMNS) for m in result.metrics],
        )


def load_results(con: sqlite3.Connection) -> dict[str, dict[str, str | float]]:
    """patient_id -> stored result row (input_hash, status, error_kind, error, warnings,
    seconds, computed_at)."""
    cols = ("patient_id", "input_hash", "status", "error_kind", "error", "warnings",
            "seconds", "computed_at")
    return {row[0]: dict(zip(cols, row, strict=True))
            for row in con.execute(f"SELECT {', '.join(cols)} FROM results")}


def load_metrics(con: sqlite3.Connection) -> list[MetricRecord]:
    """Every stored metric, sorted by patient, plan, ROI, metric and quantity."""
    cur = con.execute(f"SELECT {', '.join(_METRIC_COLUMNS)} FROM metrics ORDER BY "
                      "patient_id, plan_uid, roi, metric, quantity")
    return [MetricRecord(**dict(zip(_METRIC_COLUMNS, row, strict=True))) for row in cur]
