"""Structures: targets from lesions, margins, contours and RTSTRUCT import/export.

Start at :func:`plan_targets` (the whole pipeline of ``rtplan structures``: planning CT +
lesions -> :class:`TargetSet`) and :func:`write_structures` (RTSTRUCT + report). The
margin algorithm is :mod:`rtplan.structures.margins`, the body outline
:mod:`rtplan.structures.body`, the lesions model :mod:`rtplan.lesions`.
"""

from rtplan.lesions import (
    AnisotropicMargin,
    ENISpec,
    Lesion,
    LesionsFile,
    MarginSpec,
    MaskSource,
    PETSeedSource,
    RTStructSource,
    SphereSource,
    load_lesions_file,
)
from rtplan.structures._sdf import SignedDistanceField, sdf_from_foreign_mask, sdf_from_mask
from rtplan.structures.body import body_mask, fraction_inside
from rtplan.structures.booleans import difference, intersection, union
from rtplan.structures.constructors import sdf_from_contours, sdf_from_rtstruct
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
from rtplan.structures.naming import LesionSite, RoiType, target_name
from rtplan.structures.outline import mask_volume_cc, outline_contours
from rtplan.structures.pipeline import (
    check_structure_outputs,
    input_paths,
    plan_targets,
    write_structures,
)
from rtplan.structures.qa import structure_qa_figures, write_structure_qa
from rtplan.structures.report import (
    ExclusionSummary,
    PETUse,
    RegistrationSummary,
    StructureRecord,
    StructuresReport,
    contour_volume_cc,
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
from rtplan.structures.sources import (
    LesionGTV,
    delineate_gtv,
    lesion_gtv,
    load_mask_source,
    pet_to_ct_transform,
    resample_mask_nearest,
    source_mask,
)
from rtplan.structures.targets import (
    MAX_OUTSIDE_BODY_FRACTION,
    Target,
    TargetSet,
    VoxelMask,
    build_targets,
    roi_description,
    targets_to_rois,
)
from rtplan.structures.transfer import ExclusionMask, exclusion_mask, into_frame

__all__ = [
    "MARGIN_DIRECTIONS",
    "MAX_OUTSIDE_BODY_FRACTION",
    "RT_ROI_INTERPRETED_TYPES",
    "AnisotropicMargin",
    "ENISpec",
    "ExclusionMask",
    "ExclusionSummary",
    "Lesion",
    "LesionGTV",
    "LesionSite",
    "LesionsFile",
    "MarginSpec",
    "MaskSource",
    "PETSeedSource",
    "PETUse",
    "PlanarContour",
    "ROIContours",
    "RTStructSource",
    "RegistrationSummary",
    "RoiType",
    "SignedDistanceField",
    "SphereSource",
    "StructureRecord",
    "StructureSet",
    "StructureSetROI",
    "StructuresReport",
    "Target",
    "TargetSet",
    "VoxelMask",
    "body_mask",
    "build_rtstruct",
    "build_targets",
    "check_structure_outputs",
    "contour_volume_cc",
    "contours_from_mask",
    "contours_from_sdf",
    "crop_to_mask",
    "ct_from_rtutils",
    "delineate_gtv",
    "difference",
    "exclusion_mask",
    "expand",
    "expand_mask",
    "fraction_inside",
    "input_paths",
    "intersection",
    "into_frame",
    "lesion_gtv",
    "load_lesions_file",
    "load_mask_source",
    "mask_from_rtutils_layout",
    "mask_to_rtutils_layout",
    "mask_volume_cc",
    "masks_from_rtutils",
    "outline_contours",
    "pet_to_ct_transform",
    "plan_targets",
    "rasterize",
    "rasterize_polygons",
    "read_rtstruct",
    "resample_mask_nearest",
    "roi_description",
    "rtstruct_masks",
    "sdf_from_contours",
    "sdf_from_foreign_mask",
    "sdf_from_mask",
    "sdf_from_rtstruct",
    "sdf_from_sphere",
    "shrink",
    "source_mask",
    "structure_qa_figures",
    "target_name",
    "targets_to_rois",
    "to_rtutils",
    "union",
    "volume_cc",
    "write_rtstruct",
    "write_structure_qa",
    "write_structures",
]
