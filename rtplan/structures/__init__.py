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
from rtplan.structures.rtutils_adapter import (
    ct_from_rtutils,
    mask_from_rtutils_layout,
    mask_to_rtutils_layout,
    masks_from_rtutils,
    to_rtutils,
)

__all__ = [
    "RT_ROI_INTERPRETED_TYPES",
    "PlanarContour",
    "ROIContours",
    "StructureSet",
    "StructureSetROI",
    "build_rtstruct",
    "ct_from_rtutils",
    "mask_from_rtutils_layout",
    "mask_to_rtutils_layout",
    "masks_from_rtutils",
    "rasterize_polygons",
    "read_rtstruct",
    "rtstruct_masks",
    "to_rtutils",
    "write_rtstruct",
]
