"""RTSTRUCT ROIs on a dose grid: masks (voxel centres) and supersampled dose samples.

The contours of an ROI lie on the planes of the CT it was drawn on, which need not be
the dose grid's frames. Masks (:func:`roi_masks`) give each dose frame the contours of
the nearest contour plane, when that plane is within half the ROI's contour spacing
(no shape interpolation between planes). DVH samples (:func:`roi_samples`) follow the
contours instead: every contour plane stands for a slab one contour spacing thick, is
sampled in-plane on a grid ``supersampling`` times finer than the dose grid's pixels,
and the dose is interpolated trilinearly at every sample point.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from rtplan.errors import InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.structures.rtstruct import (
    StructureSet,
    StructureSetROI,
    rasterize_polygons,
    read_rtstruct,
)

__all__ = ["RoiSamples", "contour_planes", "roi_masks", "roi_samples"]

#: Contours whose mean positions along the normal differ less than this share a plane.
_PLANE_MERGE_MM = 0.05


def _structure_set(source: str | os.PathLike[str] | StructureSet) -> StructureSet:
    return source if isinstance(source, StructureSet) else read_rtstruct(source)


def contour_planes(
    roi: StructureSetROI, grid: Grid
) -> tuple[NDArray[np.float64], list[list[NDArray[np.float64]]], float | None]:
    """Contour planes of an ROI along ``grid``'s slice normal.

    Returns the plane positions (mm along ``grid.direction[0]`` from the grid origin,
    increasing), the polygons of each plane, and the ROI's contour spacing (the
    smallest gap between planes; None for a single plane).

    Examples
    --------
    Three planes 2 mm apart, the middle one with two contours (an island):

    >>> def square(x_mm, z_mm, half_mm=5.0):
    ...     return np.array([[x_mm - half_mm, -half_mm, z_mm], [x_mm + half_mm, -half_mm, z_mm],
    ...                      [x_mm + half_mm, half_mm, z_mm], [x_mm - half_mm, half_mm, z_mm]])
    >>> roi = StructureSetROI(1, "PTV", "PTV", None, "", (square(0, 6), square(0, 2),
    ...                       square(0, 4), square(20, 4)), "1.2.3")
    >>> g = Grid((6, 40, 40), origin_mm=(-20, -20, 0), spacing_mm=(2, 1, 1))
    >>> pos, polys, spacing_mm = contour_planes(roi, g)
    >>> pos.tolist(), [len(p) for p in polys], spacing_mm
    ([2.0, 4.0, 6.0], [1, 2, 1], 2.0)
    """
    if not roi.polygons_mm:
        return np.empty(0), [], None
    along = np.array(
        [float(np.mean((p - grid.origin_mm) @ grid.direction[0])) for p in roi.polygons_mm]
    )
    order = np.argsort(along, kind="stable")
    positions: list[float] = []
    polys: list[list[NDArray[np.float64]]] = []
    for i in order:
        if positions and along[i] - positions[-1] < _PLANE_MERGE_MM:
            polys[-1].append(roi.polygons_mm[i])
        else:
            positions.append(float(along[i]))
            polys.append([roi.polygons_mm[i]])
    pos = np.array(positions)
    spacing = float(np.min(np.diff(pos))) if pos.size > 1 else None
    return pos, polys, spacing


def _project(poly: NDArray[np.float64], grid: Grid, to_mm: float) -> NDArray[np.float64]:
    along = (poly - grid.origin_mm) @ grid.direction[0]
    return poly + (to_mm - along)[:, None] * grid.direction[0]


def roi_masks(
    source: str | os.PathLike[str] | StructureSet,
    grid: Grid,
    names: Sequence[str] | None = None,
) -> dict[str, NDArray[np.bool_]]:
    """Boolean masks of RTSTRUCT ROIs on a (dose) grid, voxel-centre rule.

    Parameters
    ----------
    source
        RTSTRUCT path or a :class:`~rtplan.structures.rtstruct.StructureSet`.
    grid
        Target grid, e.g. ``DoseGrid.grid``; contours need not lie on its frames.
    names
        ROIs to rasterise; default every ROI with contours.

    Returns
    -------
    dict
        ROI name -> ``[slice, row, column]`` mask. Each frame takes the contours of
        the nearest contour plane within half the ROI's contour spacing (within 0.1 mm
        for an ROI with a single plane); in-plane, a voxel is inside when its centre is.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    >>> int(roi_masks(get_path("rt_ss"), g, ["patient"])["patient"][0].sum())
    1200
    """
    ss = _structure_set(source)
    rois = [ss.roi(n) for n in names] if names is not None else [
        r for r in ss.rois if r.polygons_mm
    ]
    frames = grid.slice_positions_mm
    out: dict[str, NDArray[np.bool_]] = {}
    for roi in rois:
        pos, polys, spacing = contour_planes(roi, grid)
        reach = 0.1 if spacing is None else spacing / 2 + 1e-6
        projected = []
        if pos.size:
            nearest = np.clip(np.searchsorted(pos, frames), 1, max(pos.size - 1, 1))
            for k, z in enumerate(frames):
                if pos.size == 1:
                    p = 0
                else:
                    hi = int(nearest[k])
                    p = hi - 1 if abs(pos[hi - 1] - z) <= abs(pos[hi] - z) else hi
                if abs(pos[p] - z) <= reach:
                    projected += [_project(poly, grid, float(z)) for poly in polys[p]]
        if projected:
            out[roi.name] = rasterize_polygons(projected, grid, plane_tol_mm=0.01)
        else:
            out[roi.name] = np.zeros(grid.shape, dtype=bool)
    return out


@dataclass(frozen=True, eq=False)
class RoiSamples:
    """Dose samples of one ROI: each sample stands for the same ``volume_cm3``."""

    name: str
    dose_gy: NDArray[np.float64]
    volume_cm3: float
    outside_cm3: float


def roi_samples(
    roi: StructureSetROI,
    dose_gy: NDArray[np.float64],
    grid: Grid,
    *,
    supersampling: int = 3,
) -> RoiSamples:
    """Sample a dose grid over an ROI's contours (see the module notes).

    Parameters
    ----------
    roi
        The ROI (from :func:`~rtplan.structures.rtstruct.read_rtstruct`).
    dose_gy
        ``[slice, row, column]`` dose (Gy) on ``grid``.
    grid
        The dose grid.
    supersampling
        In-plane sub-samples per pixel along rows and columns (1: pixel centres only).

    Returns
    -------
    RoiSamples
        Interpolated doses and the volume of each (slab thickness x sub-pixel area,
        cm3; the ROI's slab thickness is its contour spacing).
        Points beyond the dose grid get 0 Gy; their volume is ``outside_cm3``.

    Examples
    --------
    A 10 x 10 mm square on three planes 2 mm apart (3 slabs of 2 x 100 mm3 = 0.6 cm3)
    in a dose rising 0.1 Gy per mm along x (trilinear interpolation is exact for it),
    centred on x = 9.5 mm, so the mean dose is 0.95 Gy:

    >>> sq = [[4.5, 4.5, 0], [14.5, 4.5, 0], [14.5, 14.5, 0], [4.5, 14.5, 0]]
    >>> roi = StructureSetROI(1, "GTV", "GTV", None, "",
    ...                       tuple(np.array(sq) + [0, 0, z] for z in (2, 4, 6)), "1.2.3")
    >>> g = Grid((5, 20, 20), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> dose_gy = np.broadcast_to(0.1 * np.arange(20.0), g.shape)   # 0.1 Gy/mm along x
    >>> s = roi_samples(roi, dose_gy, g)
    >>> round(s.dose_gy.size * s.volume_cm3, 6), round(float(s.dose_gy.mean()), 6)
    (0.6, 0.95)
    >>> s.dose_gy.size, s.outside_cm3       # 3 planes x (10 mm x 3 per mm)^2 samples
    (2700, 0.0)
    """
    s = int(supersampling)
    if s < 1 or s > 16:
        raise InvalidParameterError(f"supersampling must be 1-16, got {supersampling!r}")
    pos, polys, spacing = contour_planes(roi, grid)
    thickness = spacing if spacing is not None else grid.spacing_mm[0]
    dr, dc = grid.spacing_mm[1], grid.spacing_mm[2]
    area_mm2 = dr * dc / (s * s)
    doses: list[NDArray[np.float64]] = []
    outside = 0.0
    n_k, n_r, n_c = grid.shape
    for z, plane in zip(pos, polys, strict=True):
        pts = np.concatenate(plane)
        local = (pts - grid.origin_mm) @ grid.direction.T
        rc = local[:, 1:] / np.array([dr, dc])
        lo = np.floor(rc.min(axis=0)).astype(int) - 1
        hi = np.ceil(rc.max(axis=0)).astype(int) + 1
        shape = (1, int(hi[0] - lo[0] + 1) * s, int(hi[1] - lo[1] + 1) * s)
        first = lo - 0.5 + 0.5 / s  # index of the first sub-sample centre
        origin = (
            grid.origin_mm + z * grid.direction[0]
            + first[0] * dr * grid.direction[1] + first[1] * dc * grid.direction[2]
        )
        sub = Grid(shape, origin_mm=origin, spacing_mm=(thickness, dr / s, dc / s),
                   direction=grid.direction)
        inside = rasterize_polygons(
            [_project(p, grid, float(z)) for p in plane], sub, plane_tol_mm=0.01
        )[0]
        ii, jj = np.nonzero(inside)
        if ii.size == 0:
            continue
        fi = first[0] + ii / s
        fj = first[1] + jj / s
        fk = np.full(fi.shape, float(grid.world_to_index(
            grid.origin_mm + z * grid.direction[0])[0]))
        ok = (
            (fk >= -0.5) & (fk <= n_k - 0.5) & (fi >= -0.5) & (fi <= n_r - 0.5)
            & (fj >= -0.5) & (fj <= n_c - 0.5)
        )
        d = np.zeros(fi.shape)
        if ok.any():
            coords = np.stack([
                np.clip(fk[ok], 0, n_k - 1), np.clip(fi[ok], 0, n_r - 1),
                np.clip(fj[ok], 0, n_c - 1),
            ])
            k0 = int(np.floor(coords[0].min()))
            k1 = min(int(np.ceil(coords[0].max())) + 1, n_k)
            r0, r1 = int(np.floor(coords[1].min())), int(np.ceil(coords[1].max())) + 1
            c0, c1 = int(np.floor(coords[2].min())), int(np.ceil(coords[2].max())) + 1
            block = dose_gy[k0:k1, r0:min(r1, n_r), c0:min(c1, n_c)]
            coords -= np.array([[k0], [r0], [c0]])
            d[ok] = ndimage.map_coordinates(block, coords, order=1, mode="nearest")
        outside += float((~ok).sum()) * area_mm2 * thickness / 1000.0
        doses.append(d)
    volume = area_mm2 * thickness / 1000.0
    if not doses:
        return RoiSamples(roi.name, np.empty(0), volume, 0.0)
    return RoiSamples(roi.name, np.concatenate(doses), volume, outside)
