"""Dose grids: RTDOSE input/output, voxel-wise EQD2/BED, DVHs and course summation.

Doses in Gy, volumes in cm3, alpha/beta in Gy. See :func:`read_rtdose`,
:func:`eqd2_dose`, :func:`structure_dvhs` and :func:`sum_courses_eqd2`.
"""

from rtplan.dose._roi import RoiSamples, contour_planes, roi_masks, roi_samples
from rtplan.dose.dvh import (
    DVH,
    DVHStatistics,
    dvh_figure,
    dvh_from_mask,
    dvh_from_samples,
    structure_dvhs,
    write_dvh_plot,
)
from rtplan.dose.eqd2map import (
    AlphaBetaSpec,
    OverlapPolicy,
    alpha_beta_map,
    eqd2_descriptions,
    eqd2_dose,
    eqd2_map,
    lq_dose_warnings,
    parse_alpha_beta,
)
from rtplan.dose.rtdose import (
    DoseGrid,
    build_rtdose,
    fractions_from_rtplan,
    read_rtdose,
    write_rtdose,
)
from rtplan.dose.sum import (
    CourseCoverage,
    CourseSumReport,
    UncoveredVolume,
    resample_dose,
    sum_courses_eqd2,
    sum_courses_eqd2_report,
)

__all__ = [
    "DVH",
    "AlphaBetaSpec",
    "CourseCoverage",
    "CourseSumReport",
    "DVHStatistics",
    "DoseGrid",
    "OverlapPolicy",
    "RoiSamples",
    "UncoveredVolume",
    "alpha_beta_map",
    "build_rtdose",
    "contour_planes",
    "dvh_figure",
    "dvh_from_mask",
    "dvh_from_samples",
    "eqd2_descriptions",
    "eqd2_dose",
    "eqd2_map",
    "fractions_from_rtplan",
    "lq_dose_warnings",
    "parse_alpha_beta",
    "read_rtdose",
    "resample_dose",
    "roi_masks",
    "roi_samples",
    "structure_dvhs",
    "sum_courses_eqd2",
    "sum_courses_eqd2_report",
    "write_dvh_plot",
    "write_rtdose",
]
