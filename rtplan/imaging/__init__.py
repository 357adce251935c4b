"""Imaging: grids in DICOM patient coordinates (LPS, mm)."""

from rtplan.imaging.grid import Grid

__all__ = ["Grid"]
