"""Imaging: grids in DICOM patient coordinates (LPS, mm)."""

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

__all__ = [
    "CTSeries",
    "Grid",
    "PatientInfo",
    "SeriesSummary",
    "StudyInfo",
    "find_image_series",
    "load_ct_series",
    "write_ct_series",
]
