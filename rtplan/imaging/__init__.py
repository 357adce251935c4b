"""Imaging: grids in DICOM patient coordinates (LPS, mm)."""

from rtplan.imaging._body_size import (
    body_surface_area_m2,
    ideal_body_weight_kg,
    lean_body_mass_kg,
)
from rtplan.imaging.ct import (
    CTSeries,
    PatientInfo,
    SeriesSummary,
    StudyInfo,
    find_image_series,
    load_ct_series,
    write_ct_series,
)
from rtplan.imaging.grid import Grid
from rtplan.imaging.pet import PETVolume, load_pet, load_pet_datasets
from rtplan.imaging.suv import (
    NUCLIDE_HALF_LIFE_S,
    ReferenceTimeRule,
    SUVFactor,
    SUVNormalization,
    SUVOverrides,
    SUVProvenance,
    suv_factor,
)

__all__ = [
    "NUCLIDE_HALF_LIFE_S",
    "CTSeries",
    "Grid",
    "PETVolume",
    "PatientInfo",
    "ReferenceTimeRule",
    "SUVFactor",
    "SUVNormalization",
    "SUVOverrides",
    "SUVProvenance",
    "SeriesSummary",
    "StudyInfo",
    "body_surface_area_m2",
    "find_image_series",
    "ideal_body_weight_kg",
    "lean_body_mass_kg",
    "load_ct_series",
    "load_pet",
    "load_pet_datasets",
    "suv_factor",
    "write_ct_series",
]
