"""Summation of treatment courses in EQD2 on a common grid (re-irradiation).

``total = EQD2_last + (1 - recovery_fraction) * sum(EQD2 of the earlier courses)``, voxel
by voxel, the same rule as :func:`rtplan.radiobiology.sum_courses` for prescriptions:
the recovery (repair between courses) discounts the earlier courses only. Each course is
converted with its own number of fractions, after its physical dose has been resampled
(trilinearly) onto the common grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from rtplan.dose.eqd2map import AlphaBetaSpec, eqd2_dose
from rtplan.dose.rtdose import DoseGrid
from rtplan.errors import GridMismatchError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.radiobiology import LQ, LQL, USC

__all__ = ["resample_dose", "sum_courses_eqd2"]

Model = LQ | LQL | USC


def resample_dose(
    dose: DoseGrid,
    target: Grid,
    *,
    registration: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Physical dose of ``dose`` at the voxel centres of ``target`` (trilinear).

    Parameters
    ----------
    dose
        Source grid.
    target
        Grid to sample on.
    registration
        Optional 4 x 4 matrix taking target-frame LPS points (mm) to the source's frame.

    Returns
    -------
    numpy.ndarray
        ``target.shape`` doses (Gy); points beyond the source grid (more than half a
        voxel outside its centres) get 0 Gy.

    Examples
    --------
    >>> g = Grid((2, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> src = DoseGrid(np.arange(8.0).reshape(g.shape), g)
    >>> t = Grid((1, 1, 1), origin_mm=(1, 1, 1), spacing_mm=(2, 2, 2))
    >>> resample_dose(src, t).tolist()   # the centre: mean of the 8 corners
    [[[3.5]]]
    """
    src = dose.grid
    if registration is None and (src is target or _same(src, target)):
        return dose.dose_gy
    k, i, j = np.meshgrid(
        *(np.arange(n, dtype=float) for n in target.shape), indexing="ij"
    )
    world = target.index_to_world(np.stack([k, i, j], axis=-1))
    if registration is not None:
        m = np.asarray(registration, dtype=float)
        if m.shape != (4, 4):
            raise InvalidParameterError(f"registration must be a 4 x 4 matrix, got {m.shape}")
        world = world @ m[:3, :3].T + m[:3, 3]
    idx = src.world_to_index(world)
    inside = np.all((idx >= -0.5) & (idx <= np.array(src.shape) - 0.5), axis=-1)
    coords = np.moveaxis(np.clip(idx, 0, np.array(src.shape) - 1), -1, 0)
    out = ndimage.map_coordinates(dose.dose_gy, coords, order=1, mode="nearest")
    out[~inside] = 0.0
    return out


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
    registrations: Mapping[int, ArrayLike] | None = None,
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
        Common grid; default the last course's grid.
    registrations
        Course index -> 4 x 4 matrix from the common grid's frame to that course's
        frame. Needed for every course in another frame of reference.
    model
        Dose-response model (default LQ).

    Returns
    -------
    DoseGrid
        Total EQD2 (Gy) on the common grid, ``dose_type`` ``"EFFECTIVE"``.

    Raises
    ------
    GridMismatchError
        A course in another frame of reference without a registration.

    Examples
    --------
    >>> g = Grid((1, 1, 1), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    >>> first = DoseGrid(np.full(g.shape, 45.0), g, "1.2.3", fractions=25)
    >>> second = DoseGrid(np.full(g.shape, 28.0), g, "1.2.3", fractions=4)
    >>> round(float(sum_courses_eqd2([first, second], 10).dose_gy[0, 0, 0]), 1)
    83.9
    """
    if not courses:
        raise InvalidParameterError("give at least one course")
    r = float(recovery_fraction)
    if not 0.0 <= r < 1.0:
        raise InvalidParameterError(
            f"recovery fraction must be in [0, 1), got {recovery_fraction!r}"
        )
    regs = dict(registrations or {})
    last = courses[-1]
    target = grid if grid is not None else last.grid
    frame = last.frame_of_reference_uid
    total = np.zeros(target.shape)
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
                "(registrations={index: 4x4 matrix}) to sum them"
            )
        physical = resample_dose(course, target, registration=regs.get(n))
        on_target = DoseGrid(physical, target, frame, course.fractions)
        eq = eqd2_dose(on_target, alpha_beta, masks, model=model).dose_gy
        weight = 1.0 if n == len(courses) - 1 else 1.0 - r
        total += weight * eq
    return DoseGrid(total, target, frame, None, "EFFECTIVE", "PLAN", last.source, last.dataset)
