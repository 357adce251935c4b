"""Structures: masks, margins, contours and RTSTRUCT import/export."""

from rtplan.structures._sdf import SignedDistanceField, sdf_from_foreign_mask, sdf_from_mask
from rtplan.structures.booleans import difference, intersection, union
from rtplan.structures.contour import PlanarContour, ROIContours
from rtplan.structures.contouring import (
    contours_from_mask,
    contours_from_sdf,
    rasterize,
    volume_cc,
)
from rtplan.structures.margins import (
    MARGIN_DIRECTIONS,
    crop_to_mask,
    expand,
    expand_mask,
    shrink,
)
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
from rtplan.structures.shapes import sdf_from_sphere
from rtplan.structures.sources import sdf_from_contours, sdf_from_rtstruct

__all__ = [
    "MARGIN_DIRECTIONS",
    "RT_ROI_INTERPRETED_TYPES",
    "PlanarContour",
    "ROIContours",
    "SignedDistanceField",
    "StructureSet",
    "StructureSetROI",
    "build_rtstruct",
    "contours_from_mask",
    "contours_from_sdf",
    "crop_to_mask",
    "ct_from_rtutils",
    "difference",
    "expand",
    "expand_mask",
    "intersection",
    "mask_from_rtutils_layout",
    "mask_to_rtutils_layout",
    "masks_from_rtutils",
    "rasterize",
    "rasterize_polygons",
    "read_rtstruct",
    "rtstruct_masks",
    "sdf_from_contours",
    "sdf_from_foreign_mask",
    "sdf_from_mask",
    "sdf_from_rtstruct",
    "sdf_from_sphere",
    "shrink",
    "to_rtutils",
    "union",
    "volume_cc",
    "write_rtstruct",
]
