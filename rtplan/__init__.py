"""rtplan: radiotherapy-planning support for oligometastatic prostate cancer.

Subpackages (imported on first use: ``import rtplan`` stays cheap, and
``rtplan.structures.plan_targets`` works after it)
-----------------------------------------------------------------------------------
radiobiology
    Linear-quadratic BED/EQD2, alternative models, schedules (``PLAN_PRESETS``) and
    solvers.
imaging
    CT and PET series, grids in DICOM patient coordinates (LPS, mm), SUV, PET lesion
    delineation (``THRESHOLD_PRESETS``), registration between frames of reference.
structures
    Targets from lesions (``plan_targets``: GTV -> CTV -> PTV, ENI/SIB, body crop),
    margins, contours, RTSTRUCT.
dose
    RTDOSE, DVH, EQD2 dose maps, summing courses.
outcomes
    Cohort records, PSA and toxicity outcomes, survival analyses and reports.
cohort
    Many patients: a DICOM tree indexed by UID, DVH/EQD2 metrics per patient, plan and ROI
    in SQLite (or PostgreSQL), serial, process pool or Dask; export and join to outcomes.
web
    The dose-equivalence calculator as a local web page and JSON API (``rtplan serve``;
    extra ``web``).
cli
    The ``rtplan`` command line (each command one library call).

Modules
-------
lesions
    The lesions file: sites, sources, ``Lesion``, ``LesionsFile``, ``load_lesions_file``.
errors
    The exception hierarchy: every error rtplan raises derives from
    :class:`rtplan.errors.RTPlanError`.
demo
    The synthetic patient of ``rtplan demo``.

Examples
--------
>>> import rtplan
>>> rtplan.structures.plan_targets.__name__
'plan_targets'
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

#: Subpackages and modules loaded on first attribute access.
_LAZY = ("cli", "cohort", "demo", "dose", "errors", "imaging", "lesions", "outcomes",
         "radiobiology", "structures", "web")

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
