"""Structures: masks, margins, contours and RTSTRUCT import/export."""

from rtplan.structures.contour import PlanarContour, ROIContours
from rtplan.structures.rtstruct import (
    RT_ROI_INTERPRETED_TYPES,
    StructureSet,
    StructureSetROI,
    build_rtstruct,
    rasterize_polygons,
    read_rtstruct,
    rtstruct_masks,
    write_rtstruct,
)

__all__ = [
    "RT_ROI_INTERPRETED_TYPES",
    "PlanarContour",
    "ROIContours",
    "StructureSet",
    "StructureSetROI",
    "build_rtstruct",
    "rasterize_polygons",
    "read_rtstruct",
    "rtstruct_masks",
    "write_rtstruct",
]
