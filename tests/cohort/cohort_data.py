"""The synthetic cohort of the cohort tests: 20 patients and 6 broken ones, written once
per test session (shared by the test modules of this folder)."""

from __future__ import annotations

from pathlib import Path

from rtplan.cohort import connect, index_tree, store_index
from rtplan.cohort.synthetic import SyntheticPatient, write_synthetic_cohort

N_PATIENTS = 20
_CACHE: dict[str, tuple[Path, dict[str, SyntheticPatient]]] = {}


def synthetic_cohort(tmp_path_factory) -> tuple[Path, dict[str, SyntheticPatient]]:
    """(root, truth by patient id) of the session's synthetic cohort."""
    if "cohort" not in _CACHE:
        root = tmp_path_factory.mktemp("cohort") / "tree"
        truth = write_synthetic_cohort(root, N_PATIENTS, broken=True, seed=12)
        (root / "README.txt").write_text("not a DICOM file\n")
        _CACHE["cohort"] = (root, {t.patient_id: t for t in truth})
    return _CACHE["cohort"]


def make_db(root: Path, db: Path) -> Path:
    """Index ``root`` into a new database ``db``; return ``db``."""
    with connect(db, create=True) as con:
        store_index(con, index_tree(root))
    return db
