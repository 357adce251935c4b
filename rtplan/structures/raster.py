"""Contours -> masks: the one rasterisation convention of rtplan.

Every place that turns planar contours (RTSTRUCT polygons) into voxels uses this module:
structure masks on the CT (:func:`~rtplan.structures.rtstruct_masks`), masks and DVH
samples on a dose grid (``rtplan.dose.roi_masks``, ``rtplan.dose.roi_samples``),
contours moved onto another grid (``rtplan.structures.transfer.polygons_to_grid``, through
:func:`~rtplan.structures.rasterize_polygons`), so the target volume and the DVH volume
of one ROI are the same set of voxels.

Convention
----------
* **In plane**: a voxel is inside when its centre is inside the polygons of its plane,
  combined by even-odd nesting (a polygon inside another is a hole; one inside a hole
  an island). A centre exactly on an edge counts as inside on left/top edges and
  outside on right/bottom ones, so a polygon along voxel edges covers exactly its area.
* **Along the slice normal (slab rule)**: each contour plane stands for a slab
  ``[z - t/2, z + t/2)`` (closed below, open above, so slabs tile without double
  counting), ``t`` being the ROI's contour spacing (the smallest gap between its
  planes) or, for an ROI drawn on a single plane, the slice spacing of the target grid
  (CT or dose). A target slice takes the polygons of the plane whose slab contains it
  (the nearest plane within ``t/2``); no shape interpolation between planes. The
  volume of an ROI is therefore ``sum(area(plane) * t)``, the volume
  :func:`~rtplan.structures.constructors.sdf_from_contours` gives the same contours.

Examples
--------
Contours every 6 mm on a CT of 3 mm slices: each plane's slab ``[z - 3, z + 3)`` covers
two CT slices, so the slices between the contour planes are filled too:

>>> from rtplan.imaging.grid import Grid
>>> g = Grid((6, 8, 8), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
>>> sq = lambda z: [[1.5, 1.5, z], [5.5, 1.5, z], [5.5, 5.5, z], [1.5, 5.5, z]]
>>> slab_mask([sq(3.0), sq(9.0)], g).sum(axis=(1, 2)).tolist()
[16, 16, 16, 16, 0, 0]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.errors import GeometryError, InvalidParameterError
from rtplan.imaging.grid import Grid

__all__ = [
    "contour_planes",
    "fill_even_odd",
    "frame_planes",
    "plane_fill",
    "polygons_on_slices",
    "slab_mask",
    "slab_thickness_mm",
    "snapped_to_slices",
]

#: Index-space rounding that makes points on voxel centres/edges exact.
_SNAP = 1e-6
#: Contours whose mean positions along the normal differ less than this share a plane.
PLANE_MERGE_MM = 0.05
#: Tolerance (mm) on slab boundaries along the normal (rounding of positions).
SLAB_TOL_MM = 1e-6

Polygons = Sequence[NDArray[np.float64]]


def fill_even_odd(polygons_rc: Iterable[NDArray[np.float64]], rows: int,
                  cols: int) -> NDArray[np.bool_]:
    """Even-odd fill of polygons given in (row, column) index coordinates.

    Scanline rule: along each row of voxel centres, an edge with ends at rows
    ``y0 != y1`` is crossed when ``min(y0, y1) <= r < max(y0, y1)`` and toggles every
    centre at or right of the crossing. All polygons toggle the same rows, so nested
    polygons become holes (XOR).

    Examples
    --------
    >>> sq = np.array([[0.5, 0.5], [0.5, 3.5], [2.5, 3.5], [2.5, 0.5]])
    >>> fill_even_odd([sq], 4, 5).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    x0s, y0s, x1s, y1s = [], [], [], []
    for p in polygons_rc:
        y, x = p[:, 0], p[:, 1]
        y0s.append(y)
        x0s.append(x)
        y1s.append(np.roll(y, -1))
        x1s.append(np.roll(x, -1))
    out = np.zeros((rows, cols), dtype=bool)
    if not y0s:
        return out
    y0, x0 = np.concatenate(y0s), np.concatenate(x0s)
    y1, x1 = np.concatenate(y1s), np.concatenate(x1s)
    keep = y0 != y1
    y0, x0, y1, x1 = y0[keep], x0[keep], y1[keep], x1[keep]
    if y0.size == 0:
        return out
    r_start = np.clip(np.ceil(np.minimum(y0, y1)), 0, rows).astype(np.int64)
    r_stop = np.clip(np.ceil(np.maximum(y0, y1)), 0, rows).astype(np.int64)
    counts = np.maximum(r_stop - r_start, 0)
    total = int(counts.sum())
    if total == 0:
        return out
    edge = np.repeat(np.arange(y0.size), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    r = r_start[edge] + (np.arange(total) - first)
    t = (r - y0[edge]) / (y1[edge] - y0[edge])
    x = x0[edge] + t * (x1[edge] - x0[edge])
    j = np.clip(np.ceil(x - _SNAP), 0, cols).astype(np.int64)
    c0 = int(j.min())
    c1 = int(j.max())
    r0, r1 = int(r.min()), int(r.max()) + 1
    width = c1 - c0 + 1
    toggles = np.bincount((r - r0) * width + (j - c0), minlength=(r1 - r0) * width)
    parity = (np.cumsum(toggles.reshape(r1 - r0, width), axis=1) & 1).astype(bool)
    stop = min(c1, cols)
    out[r0:r1, c0:stop] = parity[:, : stop - c0]
    return out


def _in_plane_rc(polygon_mm: NDArray[np.float64], grid: Grid) -> NDArray[np.float64]:
    """(row, column) fractional indices of a polygon's points on ``grid`` (snapped)."""
    local = (polygon_mm - grid.origin_mm) @ grid.direction.T
    rc = local[:, 1:] / np.asarray(grid.spacing_mm[1:])
    return np.asarray(np.round(rc / _SNAP) * _SNAP, dtype=np.float64)


def plane_fill(polygons_mm: Polygons, grid: Grid) -> NDArray[np.bool_]:
    """The in-plane rule: ``(rows, columns)`` mask of the voxel centres of a slice of
    ``grid`` inside the polygons (even-odd; positions along the normal are ignored)."""
    return fill_even_odd([_in_plane_rc(p, grid) for p in polygons_mm], grid.shape[1],
                         grid.shape[2])


def polygons_on_slices(
    polygons_mm: Iterable[ArrayLike],
    grid: Grid,
    *,
    plane_tol_mm: float = 0.1,
    off_grid: str = "error",
) -> NDArray[np.bool_]:
    """Each polygon on the slice whose plane it lies on, in-plane rule per slice.

    The implementation of :func:`~rtplan.structures.rasterize_polygons` (see there);
    no slab rule: a polygon fills only its own slice.
    """
    return _fill_by_slice(_polygons_by_slice(polygons_mm, grid, plane_tol_mm=plane_tol_mm,
                                             off_grid=off_grid), grid)


def _fill_by_slice(by_slice: dict[int, list[NDArray[np.float64]]], grid: Grid
                   ) -> NDArray[np.bool_]:
    mask = np.zeros(grid.shape, dtype=bool)
    for k, polys in by_slice.items():
        mask[k] = plane_fill(polys, grid)
    return mask


def _polygons_by_slice(
    polygons_mm: Iterable[ArrayLike],
    grid: Grid,
    *,
    plane_tol_mm: float,
    off_grid: str,
) -> dict[int, list[NDArray[np.float64]]]:
    """Polygons grouped by the slice whose plane they lie on (checked, see
    :func:`~rtplan.structures.rasterize_polygons`)."""
    if off_grid not in ("error", "ignore"):
        raise InvalidParameterError(f"off_grid must be 'error' or 'ignore', got {off_grid!r}")
    pos = grid.slice_positions_mm
    by_slice: dict[int, list[NDArray[np.float64]]] = defaultdict(list)
    for poly in polygons_mm:
        pts = np.asarray(poly, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 3:
            raise GeometryError(f"a polygon must be (N >= 3, 3) points in mm, got {pts.shape}")
        along = (pts - grid.origin_mm) @ grid.direction[0]
        if float(np.ptp(along)) > 2 * plane_tol_mm:
            raise GeometryError(
                f"a contour is not planar on a slice: its points spread "
                f"{float(np.ptp(along)):.3f} mm along the slice normal (allowed "
                f"{2 * plane_tol_mm} mm); the RTSTRUCT may belong to a differently oriented "
                "image"
            )
        mid = float(along.mean())
        k = int(np.clip(np.searchsorted(pos, mid), 1, pos.size - 1)) if pos.size > 1 else 0
        if pos.size > 1 and abs(pos[k - 1] - mid) <= abs(pos[k] - mid):
            k -= 1
        dist = abs(float(pos[k]) - mid)
        if dist > plane_tol_mm:
            if off_grid == "ignore":
                continue
            world = grid.origin_mm + mid * grid.direction[0]
            raise GeometryError(
                f"a contour at {np.round(world @ grid.direction[0], 3)} mm along the slice "
                f"normal is {dist:.3f} mm from the nearest CT slice (tolerance "
                f"{plane_tol_mm} mm): the RTSTRUCT was drawn on other slices or another "
                "image; use the RTSTRUCT drawn on this planning CT (or resample the "
                "structure onto it). Library: off_grid='ignore' drops such contours, a "
                "larger plane_tol_mm accepts them"
            )
        by_slice[k].append(pts)
    return by_slice


def contour_planes(
    polygons_mm: Polygons, grid: Grid
) -> tuple[NDArray[np.float64], list[list[NDArray[np.float64]]], float | None]:
    """Contour planes of polygons along ``grid``'s slice normal.

    Returns the plane positions (mm along ``grid.direction[0]`` from the grid origin,
    increasing), the polygons of each plane, and the contour spacing (the smallest gap
    between planes; None for a single plane). Polygons whose mean positions differ by
    less than ``PLANE_MERGE_MM`` share a plane.

    Examples
    --------
    >>> g = Grid((4, 8, 8), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> tri = lambda z: np.array([[1.0, 1, z], [4, 1, z], [1, 4, z]])
    >>> pos, polys, spacing_mm = contour_planes([tri(6), tri(3), tri(3.01)], g)
    >>> pos.round(3).tolist(), [len(p) for p in polys], round(spacing_mm, 3)
    ([3.0, 6.0], [2, 1], 3.0)
    """
    if not polygons_mm:
        return np.empty(0), [], None
    along = np.array(
        [float(np.mean((p - grid.origin_mm) @ grid.direction[0])) for p in polygons_mm]
    )
    order = np.argsort(along, kind="stable")
    positions: list[float] = []
    polys: list[list[NDArray[np.float64]]] = []
    for i in order:
        if positions and along[i] - positions[-1] < PLANE_MERGE_MM:
            polys[-1].append(np.asarray(polygons_mm[i], dtype=float))
        else:
            positions.append(float(along[i]))
            polys.append([np.asarray(polygons_mm[i], dtype=float)])
    pos = np.array(positions)
    spacing = float(np.min(np.diff(pos))) if pos.size > 1 else None
    return pos, polys, spacing


def slab_thickness_mm(spacing_mm: float | None, grid: Grid) -> float:
    """Thickness (mm) of the slab each contour plane stands for: the contour spacing,
    or for a single plane the slice spacing of ``grid`` (see the module notes)."""
    return float(spacing_mm) if spacing_mm is not None else float(grid.spacing_mm[0])


def frame_planes(pos: NDArray[np.float64], frames: NDArray[np.float64],
                 half_mm: float) -> NDArray[np.intp]:
    """Index of the contour plane whose slab ``[z - half, z + half)`` contains each frame
    (local position along the normal), or -1."""
    out = np.full(frames.shape, -1, dtype=np.intp)
    if pos.size == 0:
        return out
    lower = pos - half_mm - SLAB_TOL_MM
    p = np.searchsorted(lower, frames, side="right") - 1
    ok = p >= 0
    pc = np.clip(p, 0, pos.size - 1)
    ok &= frames < pos[pc] + half_mm - SLAB_TOL_MM
    out[ok] = pc[ok]
    return out


def slab_mask(polygons_mm: Polygons, grid: Grid) -> NDArray[np.bool_]:
    """Mask of planar contours on ``grid`` with the slab rule (module notes).

    Parameters
    ----------
    polygons_mm
        ``(N, 3)`` LPS points (mm) per polygon, all parallel to ``grid``'s slices.
    grid
        Target grid (CT or dose); the contours need not lie on its slices.

    Returns
    -------
    numpy.ndarray
        Boolean ``[slice, row, column]`` mask: a slice takes the polygons of the plane
        whose slab contains it; in-plane, a voxel is inside when its centre is.
    """
    mask = np.zeros(grid.shape, dtype=bool)
    pos, polys, spacing = contour_planes(polygons_mm, grid)
    if pos.size == 0:
        return mask
    half = slab_thickness_mm(spacing, grid) / 2
    planes = frame_planes(pos, grid.slice_positions_mm, half)
    filled: dict[int, NDArray[np.bool_]] = {}
    for k, p in enumerate(planes):
        if p < 0:
            continue
        if p not in filled:
            filled[int(p)] = plane_fill(polys[p], grid)
        mask[k] = filled[int(p)]
    return mask


def snapped_to_slices(
    polygons_mm: Iterable[ArrayLike],
    grid: Grid,
    *,
    plane_tol_mm: float = 0.1,
    off_grid: str = "error",
) -> list[NDArray[np.float64]]:
    """Polygons checked to lie on ``grid``'s slices (as :func:`polygons_on_slices`) and
    moved exactly onto them along the normal (for :func:`slab_mask` on the CT they were
    drawn on: rounding in the file cannot split one plane into two)."""
    out = []
    pos = grid.slice_positions_mm
    n = grid.direction[0]
    for k, polys in _polygons_by_slice(polygons_mm, grid, plane_tol_mm=plane_tol_mm,
                                       off_grid=off_grid).items():
        for p in polys:
            along = (p - grid.origin_mm) @ n
            out.append(p + (pos[k] - along)[:, None] * n)
    return out
