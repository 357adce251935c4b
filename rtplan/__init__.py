"""rtplan: radiotherapy-planning support for oligometastatic prostate cancer.

Subpackages
-----------
radiobiology
    Linear-quadratic BED/EQD2, alternative models, schedules and solvers.
imaging
    Image grids in DICOM patient coordinates (LPS, mm).
errors
    The exception hierarchy: every error rtplan raises derives from
    :class:`rtplan.errors.RTPlanError`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
