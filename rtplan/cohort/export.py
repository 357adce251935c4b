"""Export the stored metrics as a tidy table: one row per patient, plan, ROI, metric and
quantity (CSV, or Parquet with the ``parquet`` extra)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from rtplan._shared.io import atomic_write, atomic_write_text
from rtplan.cohort.db import _METRIC_COLUMNS, connect, load_metrics
from rtplan.errors import InputError

__all__ = ["EXPORT_COLUMNS", "export_metrics"]

#: Columns of the exported table, in order.
EXPORT_COLUMNS: tuple[str, ...] = _METRIC_COLUMNS


def export_metrics(
    db: str | os.PathLike[str], output: str | os.PathLike[str], *, overwrite: bool = False
) -> int:
    """Write every stored metric to ``output`` (``.csv`` or ``.parquet``), atomically.

    Parameters
    ----------
    db
        Cohort database.
    output
        ``.csv`` (UTF-8, header row, values with full double precision) or ``.parquet``
        (needs pyarrow: ``pip install 'rtplan[parquet]'``).
    overwrite
        Replace an existing file.

    Returns
    -------
    int
        Rows written.

    Examples
    --------
    >>> import tempfile, os
    >>> from rtplan.cohort import connect, index_tree, run_dvh, store_index, DVHParameters
    >>> from rtplan.cohort.synthetic import write_synthetic_cohort
    >>> root = tempfile.mkdtemp(); _ = write_synthetic_cohort(root, 1, broken=False)
    >>> db = os.path.join(root, "c.sqlite")
    >>> with connect(db, create=True) as con:
    ...     store_index(con, index_tree(root))
    >>> _ = run_dvh(db, DVHParameters(metrics=("Dmean",)), executor="serial")
    >>> export_metrics(db, os.path.join(root, "m.csv"))   # 3 ROIs x (volume + 2 Dmean)
    9
    """
    out = Path(output)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"output '{out}': give a .csv or .parquet file name")
    with connect(db) as con:
        rows = load_metrics(con)
    records = [r.model_dump() for r in rows]
    if suffix == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(EXPORT_COLUMNS)
        for r in records:
            w.writerow(["" if r[c] is None else repr(r[c]) if isinstance(r[c], float)
                        else r[c] for c in EXPORT_COLUMNS])
        atomic_write_text(out, buf.getvalue(), overwrite=overwrite)
        return len(records)
    from rtplan._shared.optional import import_optional

    pa = import_optional("pyarrow", feature="Parquet export")
    pq = import_optional("pyarrow.parquet", feature="Parquet export")
    table = pa.Table.from_pylist(records) if records else pa.table(
        {c: pa.array([], type=pa.string()) for c in EXPORT_COLUMNS})
    table = table.select(list(EXPORT_COLUMNS))
    atomic_write(out, lambda t: pq.write_table(table, str(t)), overwrite=overwrite)
    return len(records)
