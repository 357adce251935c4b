"""Summation of treatment courses in EQD2 on a common grid (re-irradiation).

``total = EQD2_last + (1 - recovery_fraction) * sum(EQD2 of the earlier courses)``, voxel
by voxel, the same rule as :func:`rtplan.radiobiology.sum_courses` for prescriptions:
the recovery (repair between courses) discounts the earlier courses only. Each course is
converted with its own number of fractions, after its physical dose has been resampled
(trilinearly) onto the common grid.

Registration direction (the library-wide convention)
----------------------------------------------------
A course planned on another scan (another FrameOfReferenceUID) needs a rigid
registration given as a :class:`~rtplan.imaging.RigidTransform` whose *moving* frame is
that course's frame and whose *fixed* frame is the common grid's frame::

    p_common = R @ p_course + t        (LPS, mm)

exactly as for PET -> CT (:mod:`rtplan.imaging.registration`): a hot spot at ``p`` in
the course's own coordinates lands at ``M @ p`` on the common grid. Resampling pulls
each common voxel centre back into the course's frame with ``M^-1``; do **not** invert
the matrix yourself. A transform from :func:`~rtplan.imaging.read_spatial_registration`
``(path, course_frame_uid, common_frame_uid)`` is already in this direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from rtplan._shared.dicom import is_uid
from rtplan.dose.eqd2map import AlphaBetaSpec, eqd2_dose
from rtplan.dose.rtdose import DoseGrid
from rtplan.errors import GridMismatchError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform
from rtplan.radiobiology import LQ, LQL, USC

__all__ = [
    "CourseCoverage",
    "CourseSumReport",
    "UncoveredVolume",
    "resample_dose",
    "sum_courses_eqd2",
    "sum_courses_eqd2_report",
]

Model = LQ | LQL | USC
Registration = RigidTransform | ArrayLike

def course_to_common(
    registration: Registration,
    course_frame_uid: str = "",
    common_frame_uid: str = "",
    *,
    what: str = "the course",
) -> RigidTransform:
    """The registration as a :class:`RigidTransform` course -> common, frames checked.

    A bare 4 x 4 array is taken as mapping the course's frame to the common frame (the
    library-wide moving -> fixed convention) and must be rigid. A RigidTransform whose
    frames are DICOM UIDs must have ``moving_frame_uid == course_frame_uid`` and
    ``fixed_frame_uid == common_frame_uid`` (when those are known); labels that are not
    UIDs (``"PET"``, ``"course"``...) are not checked.

    Raises
    ------
    GridMismatchError
        The transform relates other frames, or is stated common -> course.
    GeometryError
        The matrix is not a rigid 4 x 4 transform.
    """
    if isinstance(registration, RigidTransform):
        tf = registration
    else:
        tf = RigidTransform(np.asarray(registration, dtype=float),
                            source="4 x 4 matrix, taken as course -> common")
    mv, fx = tf.moving_frame_uid, tf.fixed_frame_uid
    course, common = course_frame_uid or "", common_frame_uid or ""

    def clash(named: str, wanted: str) -> bool:
        return bool(named and wanted and is_uid(named) and named != wanted)

    if not (clash(mv, course) or clash(fx, common)):
        return tf
    expected = (
        f"registrations map the course's frame (moving, {course or '?'}) into the common "
        f"grid's frame (fixed, {common or '?'}): p_common = M @ p_course"
    )
    if mv and fx and mv == common and fx == course and course != common:
        raise GridMismatchError(
            f"the registration for {what} ({tf.source or 'no source'}) maps frame {mv} to "
            f"{fx}, the opposite direction: {expected}. Pass registration.inverse() (or read "
            "the SRO as read_spatial_registration(path, course_frame_uid, common_frame_uid))"
        )
    raise GridMismatchError(
        f"the registration for {what} ({tf.source or 'no source'}) maps frame {mv or '?'} "
        f"to {fx or '?'}, but {what} is in frame {course or '?'} and the common grid in "
        f"{common or '?'}: {expected}. Give the registration between these two frames"
    )


def resample_dose(
    dose: DoseGrid,
    target: Grid,
    *,
    registration: Registration | None = None,
    target_frame_uid: str = "",
) -> NDArray[np.float64]:
    """Physical dose of ``dose`` at the voxel centres of ``target`` (trilinear).

    Parameters
    ----------
    dose
        Source grid (a course), in its frame ``dose.frame_of_reference_uid``.
    target
        Grid to sample on (the common grid).
    registration
        Rigid transform **from the dose's frame (moving) to the target's frame
        (fixed)**: ``p_target = M @ p_dose`` (LPS, mm), a
        :class:`~rtplan.imaging.RigidTransform` such as
        ``read_spatial_registration(sro, dose_frame_uid, target_frame_uid)``. A bare
        4 x 4 array is accepted **only in this same direction** (dose -> target), and is
        refused if it scales, shears or mirrors. Each target voxel centre ``q`` takes
        the dose at ``M^-1 @ q``; do not pass the inverse.
    target_frame_uid
        FrameOfReferenceUID of ``target``, used to check the registration's frames.

    Returns
    -------
    numpy.ndarray
        ``target.shape`` doses (Gy); points beyond the source grid (more than half a
        voxel outside its centres) get 0 Gy.

    Raises
    ------
    GridMismatchError
        The registration's UIDs are not ``dose frame -> target frame`` (swapped
        frames: pass ``registration.inverse()``).
    GeometryError
        The registration is not a rigid 4 x 4 matrix.

    Examples
    --------
    >>> g = Grid((2, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> src = DoseGrid(np.arange(8.0).reshape(g.shape), g)
    >>> t = Grid((1, 1, 1), origin_mm=(1, 1, 1), spacing_mm=(2, 2, 2))
    >>> resample_dose(src, t).tolist()   # the centre: mean of the 8 corners
    [[[3.5]]]

    The dose voxel at (x, y, z) = (2, 0, 0) mm is at (12, 0, 0) on a target whose frame
    is the dose's shifted by +10 mm in x:

    >>> one = Grid((1, 1, 1), origin_mm=(12, 0, 0), spacing_mm=(2, 2, 2))
    >>> shift = RigidTransform.translation([10, 0, 0], "1.2.1", "1.2.2")  # dose -> target
    >>> src = DoseGrid(np.arange(8.0).reshape(g.shape), g, "1.2.1")
    >>> resample_dose(src, one, registration=shift, target_frame_uid="1.2.2").tolist()
    [[[1.0]]]
    """
    tf = None
    if registration is not None:
        tf = course_to_common(registration, dose.frame_of_reference_uid, target_frame_uid,
                              what=f"'{dose.source or 'the dose'}'")
    return _resample(dose, target, tf)[0]


def _resample(
    dose: DoseGrid, target: Grid, tf: RigidTransform | None
) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
    """Resampled dose and the target voxels inside the source grid (None: all)."""
    src = dose.grid
    if tf is not None and tf.is_identity:
        tf = None
    if tf is None and (src is target or _same(src, target)):
        return dose.dose_gy, None
    k, i, j = np.meshgrid(
        *(np.arange(n, dtype=float) for n in target.shape), indexing="ij"
    )
    world = target.index_to_world(np.stack([k, i, j], axis=-1))
    if tf is not None:
        world = tf.inverse().apply(world)  # common voxel centres in the course's frame
    idx = src.world_to_index(world)
    inside = np.all((idx >= -0.5) & (idx <= np.array(src.shape) - 0.5), axis=-1)
    coords = np.moveaxis(np.clip(idx, 0, np.array(src.shape) - 1), -1, 0)
    out = ndimage.map_coordinates(dose.dose_gy, coords, order=1, mode="nearest")
    out[~inside] = 0.0
    return out, inside


class UncoveredVolume(BaseModel):
    """Part of a region (the common grid, an ROI...) outside a course's dose grid."""

    model_config = ConfigDict(frozen=True)

    voxels: int
    percent: float
    volume_cc: float

    @classmethod
    def of(cls, uncovered: NDArray[np.bool_], region: NDArray[np.bool_] | None,
           voxel_volume_mm3: float) -> UncoveredVolume:
        """Count ``uncovered`` voxels in ``region`` (None: the whole grid)."""
        if region is None:
            k, total = int(np.count_nonzero(uncovered)), uncovered.size
        else:
            k, total = int(np.count_nonzero(uncovered & region)), int(np.count_nonzero(region))
        return cls(voxels=k, percent=100.0 * k / total if total else 0.0,
                   volume_cc=k * float(voxel_volume_mm3) / 1000.0)


class CourseCoverage(BaseModel):
    """How much of the common grid a course's dose grid does not cover.

    Voxels of the common grid outside a course's grid (more than half a voxel beyond
    its voxel centres, after registration) get 0 Gy from that course.

    Attributes
    ----------
    course
        1-based position of the course.
    source
        The course's file, or ``""``.
    grid
        Uncovered voxels of the whole common grid (percent of its voxels, cm3).
    rois
        ROI name -> uncovered part of that ROI's mask (percent of the ROI's voxels).
    last_course_dose
        Uncovered voxels among those that receive dose (> 0 Gy) from the last course
        (percent of those voxels); for the last course itself, over the whole grid.
    """

    model_config = ConfigDict(frozen=True)

    course: int
    source: str
    grid: UncoveredVolume
    rois: dict[str, UncoveredVolume] = Field(default_factory=dict)
    last_course_dose: UncoveredVolume


@dataclass(frozen=True, eq=False)
class CourseSumReport:
    """A course sum with what each course covered (see :func:`sum_courses_eqd2_report`).

    Attributes
    ----------
    total
        Total EQD2 (:class:`DoseGrid`, Gy) on the common grid; ``total.warnings`` holds
        ``warnings``.
    coverage
        One :class:`CourseCoverage` per course, in order.
    warnings
        LQ validity per course (above 10 / 18 Gy per fraction) and uncovered dose of
        the last course.
    """

    total: DoseGrid
    coverage: list[CourseCoverage]
    warnings: list[str]


def _same(a: Grid, b: Grid) -> bool:
    try:
        a.check_same(b)
    except GridMismatchError:
        return False
    return True


def sum_courses_eqd2(
    courses: Sequence[DoseGrid],
    alpha_beta: AlphaBetaSpec | float,
    masks: Mapping[str, NDArray[np.bool_]] | None = None,
    *,
    recovery_fraction: float = 0.0,
    grid: Grid | None = None,
    registrations: Mapping[int, Registration] | None = None,
    model: Model | None = None,
) -> DoseGrid:
    """Sum courses in EQD2, voxel by voxel, with recovery on the earlier courses.

    Parameters
    ----------
    courses
        Physical dose grids in treatment order (the last is the new course), each
        with its number of fractions (``DoseGrid.fractions``).
    alpha_beta
        One alpha/beta (Gy) or an :class:`~rtplan.dose.AlphaBetaSpec` with ``masks``.
    masks
        Structure masks on the common grid (for per-structure alpha/beta).
    recovery_fraction
        Fraction of the earlier courses' EQD2 recovered, in [0, 1).
    grid
        Common grid, in the last course's frame of reference; default the last
        course's grid.
    registrations
        Course index (0-based position in ``courses``) -> rigid transform **from that
        course's frame (moving) to the common frame (fixed, the last course's)**:
        ``p_common = M @ p_course`` (LPS, mm), the same direction as every
        :class:`~rtplan.imaging.RigidTransform` in rtplan, e.g.
        ``read_spatial_registration(sro, course.frame_of_reference_uid,
        last.frame_of_reference_uid)``. Needed for every course in another frame of
        reference. A bare 4 x 4 array is accepted **only in this same direction**
        (course -> common) and must be rigid. Transforms carrying DICOM UIDs are
        checked against the frames.
    model
        Dose-response model (default LQ).

    Returns
    -------
    DoseGrid
        Total EQD2 (Gy) on the common grid, ``dose_type`` ``"EFFECTIVE"``. Its
        ``warnings`` flag LQ above 10 / 18 Gy per fraction in a course and earlier
        courses that do not cover voxels irradiated by the last course (counted as 0 Gy
        there); :func:`sum_courses_eqd2_report` also gives the uncovered volumes.

    Raises
    ------
    GridMismatchError
        A course in another frame of reference without a registration, or a
        registration between other frames or in the opposite direction (common ->
        course: pass ``.inverse()``).
    GeometryError
        A registration that is not a rigid 4 x 4 matrix.
    InvalidParameterError
        A registration for a course index that does not exist; a recovery fraction
        outside [0, 1); a course without its number of fractions.

    Examples
    --------
    >>> g = Grid((1, 1, 1), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    >>> first = DoseGrid(np.full(g.shape, 45.0), g, "1.2.3", fractions=25)
    >>> second = DoseGrid(np.full(g.shape, 28.0), g, "1.2.3", fractions=4)
    >>> round(float(sum_courses_eqd2([first, second], 10).dose_gy[0, 0, 0]), 1)
    83.9

    The first course planned on an older scan (frame 1.2.9): its 45 Gy voxel at
    z = 5 mm there is at z = 0 mm on the new scan (course -> common: -5 mm in z):

    >>> old = Grid((3, 1, 1), origin_mm=(0, 0, 0), spacing_mm=(5, 2, 2))
    >>> first = DoseGrid(np.array([0.0, 45.0, 0.0]).reshape(3, 1, 1), old, "1.2.9", 25)
    >>> to_new = RigidTransform.translation([0, 0, -5], "1.2.9", "1.2.3")
    >>> total = sum_courses_eqd2([first, second], 10, registrations={0: to_new})
    >>> round(float(total.dose_gy[0, 0, 0]), 1)
    83.9
    """
    return sum_courses_eqd2_report(
        courses, alpha_beta, masks, recovery_fraction=recovery_fraction, grid=grid,
        registrations=registrations, model=model,
    ).total


def sum_courses_eqd2_report(
    courses: Sequence[DoseGrid],
    alpha_beta: AlphaBetaSpec | float,
    masks: Mapping[str, NDArray[np.bool_]] | None = None,
    *,
    recovery_fraction: float = 0.0,
    grid: Grid | None = None,
    registrations: Mapping[int, Registration] | None = None,
    model: Model | None = None,
) -> CourseSumReport:
    """:func:`sum_courses_eqd2` with each course's coverage of the common grid.

    Parameters are those of :func:`sum_courses_eqd2`; ``masks`` (structure masks on
    the common grid) are also used to report each ROI's uncovered part.

    Returns
    -------
    CourseSumReport
        The total EQD2, a :class:`CourseCoverage` per course (uncovered voxels of the
        common grid, of each ROI and of the region the last course irradiates: count,
        percent, cm3) and warnings: LQ above 10 / 18 Gy per fraction in a course, and
        every earlier course that does not cover voxels receiving dose from the last
        course (their earlier dose is counted as 0 Gy).

    Examples
    --------
    An earlier course whose grid covers only the first of three frames that the new
    course irradiates:

    >>> g = Grid((3, 1, 1), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    >>> old = DoseGrid(np.full((1, 1, 1), 40.0), Grid((1, 1, 1), (0, 0, 0), (3, 2, 2)),
    ...                "1.2.3", fractions=20)
    >>> new = DoseGrid(np.full(g.shape, 30.0), g, "1.2.3", fractions=10)
    >>> r = sum_courses_eqd2_report([old, new], 3.0)
    >>> c = r.coverage[0].last_course_dose
    >>> c.voxels, round(c.percent, 1), round(c.volume_cc, 3)
    (2, 66.7, 0.024)
    >>> r.warnings[0][:60]
    'course 1 does not cover 2 voxels (0.024 cm3, 66.7 %) of the '
    """
    if not courses:
        raise InvalidParameterError("give at least one course")
    r = float(recovery_fraction)
    if not 0.0 <= r < 1.0:
        raise InvalidParameterError(
            f"recovery fraction must be in [0, 1), got {recovery_fraction!r}"
        )
    regs = dict(registrations or {})
    bad = sorted(str(k) for k in regs if not (isinstance(k, int | np.integer)
                                              and 0 <= k < len(courses)))
    if bad:
        raise InvalidParameterError(
            f"registrations for course indices {bad}, but there are {len(courses)} courses "
            f"(0-based indices 0..{len(courses) - 1})"
        )
    last = courses[-1]
    target = grid if grid is not None else last.grid
    frame = last.frame_of_reference_uid
    total = np.zeros(target.shape)
    ml = masks or {}
    for name, m in ml.items():
        if np.shape(m) != target.shape:
            raise GridMismatchError(
                f"mask of {name!r} has shape {np.shape(m)}, the common grid {target.shape}"
            )
    physical = np.zeros(0)
    insides: list[NDArray[np.bool_] | None] = []
    warnings: list[str] = []
    for n, course in enumerate(courses):
        if course.fractions is None:
            raise InvalidParameterError(
                f"course {n + 1} ('{course.source or 'grid'}') has no number of fractions: "
                "give it (read_rtdose(..., fractions=N) or an RTPLAN)"
            )
        if (
            n not in regs and course.frame_of_reference_uid and frame
            and course.frame_of_reference_uid != frame
        ):
            raise GridMismatchError(
                f"course {n + 1} is in frame of reference {course.frame_of_reference_uid}, "
                f"the last course in {frame}: register the scans and pass the registration "
                f"from course {n + 1}'s frame to the last course's frame "
                "(registrations={index: RigidTransform(course -> common)}; CLI: "
                f"--registration {n + 1}=REG.dcm) to sum them"
            )
        reg = regs.get(n)
        if reg is not None:
            reg = course_to_common(reg, course.frame_of_reference_uid, frame,
                                   what=f"course {n + 1}")
        physical, inside = _resample(course, target, reg)
        insides.append(inside)
        on_target = DoseGrid(physical, target, frame, course.fractions)
        converted = eqd2_dose(on_target, alpha_beta, masks, model=model)
        warnings += [f"course {n + 1}{_label(course)}: {w}" for w in converted.warnings]
        weight = 1.0 if n == len(courses) - 1 else 1.0 - r
        total += weight * converted.dose_gy
    vv = target.voxel_volume_mm3
    irradiated = physical > 0  # the last course's physical dose on the common grid
    coverage = []
    for n, (course, inside) in enumerate(zip(courses, insides, strict=True)):
        uncovered = (np.zeros(target.shape, bool) if inside is None else ~inside)
        is_last = n == len(courses) - 1
        cov = CourseCoverage(
            course=n + 1, source=course.source or "",
            grid=UncoveredVolume.of(uncovered, None, vv),
            rois={name: UncoveredVolume.of(uncovered, np.asarray(m, bool), vv)
                  for name, m in ml.items()},
            last_course_dose=UncoveredVolume.of(uncovered, None if is_last else irradiated,
                                                vv),
        )
        coverage.append(cov)
        lost = cov.last_course_dose
        if not is_last and lost.voxels:
            warnings.append(
                f"course {n + 1}{_label(course)} does not cover {lost.voxels} voxels "
                f"({lost.volume_cc:.4g} cm3, {lost.percent:.3g} %) of the common grid that "
                f"receive dose from the last course (up to "
                f"{float(physical[uncovered & irradiated].max()):.4g} Gy there): its dose "
                "there is counted as 0 Gy, so the sum may underestimate; use a course grid "
                "that covers the region, or check the registration"
            )
    out = DoseGrid(total, target, frame, None, "EFFECTIVE", "PLAN", last.source, last.dataset,
                   tuple(warnings))
    return CourseSumReport(out, coverage, warnings)


def _label(course: DoseGrid) -> str:
    return f" ('{course.source}')" if course.source else ""
