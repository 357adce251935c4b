"""RTSTRUCT ROIs on a dose grid: masks (voxel centres) and supersampled dose samples.

The contours of an ROI lie on the planes of the CT it was drawn on, which need not be
the dose grid's frames. Both functions use the rasterisation convention of
``rtplan.structures.raster`` (shared with the structure masks on the CT,
:func:`~rtplan.structures.rtstruct_masks`), i.e. the same slab model of the ROI along the
slice normal: every contour plane stands for a slab of thickness ``t`` centred on it,
``[z_plane - t/2, z_plane + t/2)`` (closed below, open above, so that slabs tile without
double counting), where ``t`` is the ROI's contour spacing (the smallest gap between its
planes) or, for an ROI drawn on a single plane, the dose grid's frame spacing.

* Masks (:func:`roi_masks`): each dose frame takes the contours of the contour plane
  whose slab contains it, i.e. the nearest plane within ``t/2`` (no shape interpolation
  between planes); in-plane, a voxel is inside when its centre is.
* DVH samples (:func:`roi_samples`): every slab is sampled in-plane on a grid
  ``supersampling`` times finer than the dose grid's pixels, with the dose interpolated
  trilinearly at the contour plane; its volume is the slab's.

So a single-plane ROI at z = 1.5 mm on dose frames z = 0, 3, 6 mm covers the frame at
z = 0 in its mask ([0, 3) mm) and has the volume of one 3 mm slab in its DVH.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from rtplan.errors import InputError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.structures import raster
from rtplan.structures.rtstruct import StructureSet, StructureSetROI, read_rtstruct

__all__ = ["RoiSamples", "contour_planes", "roi_masks", "roi_samples"]


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
    return raster.contour_planes(roi.polygons_mm, grid)


def slab_thickness_mm(spacing_mm: float | None, grid: Grid) -> float:
    """Thickness (mm) of the slab each contour plane stands for (see the module notes)."""
    return raster.slab_thickness_mm(spacing_mm, grid)


def _empty_reason(roi: StructureSetROI, grid: Grid) -> str:
    """Why an ROI has no voxel on ``grid`` (for error messages)."""
    if not roi.polygons_mm:
        return "it has no contours in the RTSTRUCT"
    pos, polys, spacing = contour_planes(roi, grid)
    half = slab_thickness_mm(spacing, grid) / 2
    frames = grid.slice_positions_mm
    z0 = float(grid.origin_mm @ grid.direction[0])
    assigned = raster.frame_planes(pos, frames, half)
    what = "half its contour spacing" if spacing is not None else (
        "half the dose frame spacing, as it is drawn on a single plane")
    if not (assigned >= 0).any():
        where = (
            "outside the dose grid along the slice axis"
            if pos[-1] + half < frames[0] or pos[0] - half > frames[-1]
            else "between dose frames"
        )
        return (
            f"its {pos.size} contour plane(s) at {z0 + pos[0]:.2f} to {z0 + pos[-1]:.2f} mm "
            f"along the slice normal have no dose frame within {half:.2f} mm ({what}); the "
            f"dose frames span {z0 + frames[0]:.2f} to {z0 + frames[-1]:.2f} mm: the ROI is "
            f"{where}"
        )
    pts = np.concatenate([np.concatenate(polys[i]) for i in np.unique(assigned[assigned >= 0])])
    rc = ((pts - grid.origin_mm) @ grid.direction.T)[:, 1:] / np.array(grid.spacing_mm[1:])
    n_r, n_c = grid.shape[1:]
    if (rc[:, 0].max() < -0.5 or rc[:, 0].min() > n_r - 0.5
            or rc[:, 1].max() < -0.5 or rc[:, 1].min() > n_c - 0.5):
        return "its contours lie outside the dose grid in-plane (rows/columns)"
    return (
        "no dose voxel centre lies inside its contours on the dose frames it reaches "
        f"(it is smaller than the {grid.spacing_mm[1]:g} x {grid.spacing_mm[2]:g} mm "
        "pixels or lies at the edge of the grid)"
    )


def roi_masks(
    source: str | os.PathLike[str] | StructureSet,
    grid: Grid,
    names: Sequence[str] | None = None,
    *,
    allow_empty: bool = True,
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
    allow_empty
        When False, an ROI without any voxel on the grid is an error that says why (no
        contours, no dose frame within reach, outside the grid in-plane, too small).

    Returns
    -------
    dict
        ROI name -> ``[slice, row, column]`` mask. Each frame takes the contours of
        the contour plane whose slab ``[z - t/2, z + t/2)`` contains it, ``t`` being
        the ROI's contour spacing, or the dose frame spacing for an ROI drawn on a
        single plane (see the module notes: the same slabs as the DVH samples); in-plane,
        a voxel is inside when its centre is.

    Raises
    ------
    InputError
        ``allow_empty=False`` and an ROI has no voxel on the grid.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    >>> int(roi_masks(get_path("rt_ss"), g, ["patient"])["patient"][0].sum())
    1200

    A 20 x 20 mm square drawn on the single plane z = 1.5 mm, dose frames at z = 0, 3,
    6 mm: the frame at z = 0 lies in its slab [0, 3) mm (8 x 8 pixel centres of 2.5 mm):

    >>> sq = np.array([[-10, -10, 1.5], [10, -10, 1.5], [10, 10, 1.5], [-10, 10, 1.5]])
    >>> roi = StructureSetROI(1, "Boost", "PTV", None, "", (sq,), "1.2.3")
    >>> g = Grid((3, 16, 16), origin_mm=(-18.75, -18.75, 0), spacing_mm=(3, 2.5, 2.5))
    >>> roi_masks(StructureSet((roi,), "", (), (), "", ""), g)["Boost"].sum(axis=(1, 2))
    array([64,  0,  0])
    """
    ss = _structure_set(source)
    rois = [ss.roi(n) for n in names] if names is not None else [
        r for r in ss.rois if r.polygons_mm
    ]
    out: dict[str, NDArray[np.bool_]] = {}
    for roi in rois:
        mask = raster.slab_mask(roi.polygons_mm, grid)
        if not allow_empty and not mask.any():
            raise InputError(
                f"ROI {roi.name!r} has no voxel on the dose grid: {_empty_reason(roi, grid)}"
            )
        out[roi.name] = mask
    return out


@dataclass(frozen=True, eq=False)
class RoiSamples:
    """Dose samples of one ROI: each sample stands for the same ``volume_cc``."""

    name: str
    dose_gy: NDArray[np.float64]
    volume_cc: float
    outside_cc: float


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
        Points beyond the dose grid get 0 Gy; their volume is ``outside_cc``.

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
    >>> round(s.dose_gy.size * s.volume_cc, 6), round(float(s.dose_gy.mean()), 6)
    (0.6, 0.95)
    >>> s.dose_gy.size, s.outside_cc       # 3 planes x (10 mm x 3 per mm)^2 samples
    (2700, 0.0)
    """
    s = int(supersampling)
    if s < 1 or s > 16:
        raise InvalidParameterError(f"supersampling must be 1-16, got {supersampling!r}")
    pos, polys, spacing = contour_planes(roi, grid)
    thickness = slab_thickness_mm(spacing, grid)
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
        inside = raster.plane_fill(plane, sub)
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
