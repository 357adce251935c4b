"""The lesions file (compatibility path): the model lives in :mod:`rtplan.lesions`.

Everything here is re-exported from :mod:`rtplan.lesions`, the one lesions model; new
code imports from there (or from :mod:`rtplan.structures`).
"""

from __future__ import annotations

from rtplan.lesions import (
    MAX_MARGIN_MM,
    PROTOCOL_MARGIN_RANGE_MM,
    AnisotropicMargin,
    ENISpec,
    Lesion,
    LesionsFile,
    LesionSource,
    MarginSpec,
    MaskSource,
    PETSeedSource,
    RTStructSource,
    SphereSource,
    load_lesions_file,
    margin_warnings,
    validation_input_error,
)

__all__ = [
    "MAX_MARGIN_MM",
    "PROTOCOL_MARGIN_RANGE_MM",
    "AnisotropicMargin",
    "ENISpec",
    "Lesion",
    "LesionSource",
    "LesionsFile",
    "MarginSpec",
    "MaskSource",
    "PETSeedSource",
    "RTStructSource",
    "SphereSource",
    "load_lesions_file",
    "margin_warnings",
    "validation_input_error",
]
