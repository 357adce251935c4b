"""Working lattices and grid-local coordinates (private geometry core).

Every structure is sampled on a *working lattice* aligned with its CT grid's axes, in the
grid's local frame: mm along the slice normal, the row and the column direction,
measured from the centre of voxel ``[0, 0, 0]``. The lattice subdivides each CT voxel
into an integer number of cells per axis, so its cells tile the CT voxels exactly; cell
``n`` (per axis) is centred at ``base_mm + n * spacing_mm`` with ``base_mm = -s/2 + h/2``
(``s`` the CT spacing, ``h`` the cell size). Default cell size: about 0.5 mm for small
structures, growing to about 1 mm for structures over 32 mm, coarser only for boxes
beyond ``MAX_CELLS`` cells.

This module holds the lattice choice, lattice index boxes, linear interpolation along
one axis, and the CT-grid helpers that map local coordinates to voxel indices and voxel
boxes (irregular slice spacing included). Imported by ``_patches`` (patch boxes and
sampling), ``sources`` (structures from masks and contours) and ``shapes``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from rtplan.errors import InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform

#: cells of margin kept around the structure inside every patch box
PAD_CELLS = 3
#: default working cell size (mm) of the lattice
DEFAULT_RESOLUTION_MM = 0.5
#: automatic lattice choice coarsens the cells until a patch has at most this many
MAX_CELLS = 1_500_000

Vec3 = tuple[float, float, float]
Index3 = tuple[int, int, int]
Axes = Sequence[NDArray[np.float64]]


def vec3(values: ArrayLike) -> Vec3:
    """Three floats (a lattice spacing or base, hashable and comparable)."""
    a = np.asarray(values, dtype=float).reshape(3)
    return float(a[0]), float(a[1]), float(a[2])


def index3(values: ArrayLike) -> Index3:
    """Three ints (a lattice index)."""
    a = np.asarray(values).reshape(3)
    return int(a[0]), int(a[1]), int(a[2])


def check_resolution(resolution_mm: float | None) -> None:
    """Raise :class:`InvalidParameterError` unless ``resolution_mm`` is None or > 0."""
    if resolution_mm is not None and (not np.isfinite(resolution_mm) or resolution_mm <= 0):
        raise InvalidParameterError(
            f"resolution_mm must be a positive number of mm, got {resolution_mm}"
        )


def choose_lattice(grid: Grid, extent_mm: ArrayLike, resolution_mm: float | None) -> tuple[
    Vec3, Vec3
]:
    """Cell size and base (mm) of the working lattice for a box of ``extent_mm``."""
    check_resolution(resolution_mm)
    s = np.asarray(grid.spacing_mm, dtype=float)
    ext = np.asarray(extent_mm, dtype=float)
    if resolution_mm is not None:
        f = np.maximum(1, np.rint(s / resolution_mm))
    else:
        # ~0.5 mm for small lesions, up to ~1 mm for large structures: the closest-point
        # distance with curvature correction stays within a few hundredths of a mm
        target = float(np.clip(ext.max() / 32.0, DEFAULT_RESOLUTION_MM, 1.0))
        while True:
            f = np.maximum(1, np.rint(s / target))
            n_vox = np.prod(ext / (s / f) + 2 * PAD_CELLS + 1)
            if n_vox <= MAX_CELLS or np.all(f == 1):
                break
            target *= 1.25
    h = s / f
    return vec3(h), vec3(-s / 2 + h / 2)


def box_indices(
    h: Sequence[float], base: Sequence[float], lo_mm: ArrayLike, hi_mm: ArrayLike, pad: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Lattice index range ``[start, stop)`` covering ``[lo_mm, hi_mm]`` plus ``pad`` cells."""
    h_, b_ = np.asarray(h), np.asarray(base)
    start = np.floor((np.asarray(lo_mm) - b_) / h_ + 1e-9).astype(np.int64) - pad
    stop = np.ceil((np.asarray(hi_mm) - b_) / h_ - 1e-9).astype(np.int64) + pad + 1
    return start, stop


def lattice_axes(
    h: Sequence[float], base: Sequence[float], start: ArrayLike, stop: ArrayLike
) -> list[NDArray[np.float64]]:
    """Local coordinates (mm) of the cell centres of box ``[start, stop)``, per axis."""
    st, sp = np.asarray(start), np.asarray(stop)
    return [
        np.asarray(base[a] + np.arange(int(st[a]), int(sp[a])) * h[a], dtype=np.float64)
        for a in range(3)
    ]


def interp_axis(
    arr: NDArray[np.float64], axis: int, frac: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Linear interpolation of ``arr`` along ``axis`` at fractional indices (clamped)."""
    n = arr.shape[axis]
    if n == 1:
        return np.take(arr, np.zeros(frac.size, dtype=np.intp), axis=axis)
    fr = np.clip(frac, 0, n - 1)
    snap = np.rint(fr)
    fr = np.where(np.abs(fr - snap) < 1e-6, snap, fr)
    i0 = np.minimum(np.floor(fr).astype(np.intp), n - 2)
    w = fr - i0
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    if np.all(w == 0):
        return np.take(arr, i0, axis=axis)
    return np.take(arr, i0, axis=axis) * (1 - w) + np.take(arr, i0 + 1, axis=axis) * w


def to_local(grid: Grid, points_mm: ArrayLike) -> NDArray[np.float64]:
    """LPS points ``(..., 3)`` -> grid-local mm (slice normal, row, column)."""
    p = np.asarray(points_mm, dtype=float) - grid.origin_mm
    return np.asarray(p @ grid.direction.T, dtype=float)


def frac_index(grid: Grid, axis: int, local_mm: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fractional index along ``axis`` of local coordinates (mm from voxel ``[0, 0, 0]``),
    extrapolated beyond the ends with the end spacing."""
    if axis == 0 and not grid.is_regular:
        n = grid.shape[0]
        pos = grid.slice_positions_mm
        frac = np.interp(local_mm, pos, np.arange(n, dtype=float))
        lo, hi = local_mm < pos[0], local_mm > pos[-1]
        frac = np.where(lo, (local_mm - pos[0]) / (pos[1] - pos[0]), frac)
        return np.where(hi, (n - 1) + (local_mm - pos[-1]) / (pos[-1] - pos[-2]), frac)
    return np.asarray(local_mm, dtype=float) / grid.spacing_mm[axis]


def nearest_index(grid: Grid, axis: int, local_mm: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the CT voxel containing each local coordinate along ``axis`` (-1: none)."""
    n = grid.shape[axis]
    idx = np.floor(frac_index(grid, axis, local_mm) + 0.5).astype(np.intp)
    return np.where((idx >= 0) & (idx < n), idx, -1)


def voxel_bounds(
    grid: Grid, axis: int, index: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Local bounds (mm) along ``axis`` of the voxel boxes of integer ``index`` (any
    integer: beyond the grid the spacing at the end is repeated). A box reaches half-way
    to the neighbouring voxel centres: the cells :func:`nearest_index` gives that index.
    """
    i = np.asarray(index, dtype=float)

    def centre(k: NDArray[np.float64]) -> NDArray[np.float64]:
        if axis == 0 and not grid.is_regular:
            pos = grid.slice_positions_mm
            n = pos.size
            c = pos[np.clip(k, 0, n - 1).astype(np.intp)]
            c = np.where(k < 0, pos[0] + k * (pos[1] - pos[0]), c)
            return np.where(k > n - 1, pos[-1] + (k - (n - 1)) * (pos[-1] - pos[-2]), c)
        return k * grid.spacing_mm[axis]

    c = centre(i)
    return 0.5 * (centre(i - 1) + c), 0.5 * (c + centre(i + 1))


def fine_mask(
    mask: NDArray[np.bool_],
    grid: Grid,
    h: Sequence[float],
    base: Sequence[float],
    start: ArrayLike,
    stop: ArrayLike,
    offset: ArrayLike = (0, 0, 0),
) -> NDArray[np.bool_]:
    """Nearest-voxel supersampling of a CT mask onto a lattice box (outside: False).

    ``mask`` may be a crop of the CT volume whose element ``[0, 0, 0]`` is CT voxel
    ``offset``.
    """
    off = np.asarray(offset)
    idx = []
    for a, local in enumerate(lattice_axes(h, base, start, stop)):
        i = nearest_index(grid, a, local)
        i = np.where(i >= 0, i - off[a], -1)
        idx.append(np.where(i < mask.shape[a], i, -1))
    valid = [i >= 0 for i in idx]
    safe = [np.where(v, i, 0) for i, v in zip(idx, valid, strict=True)]
    fine = mask[np.ix_(*safe)]
    return fine & valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :]


def bbox(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index bounding box ``[lo, hi)`` of the True voxels of a non-empty mask."""
    lo, hi = [], []
    for a in range(mask.ndim):
        nz = np.nonzero(mask.any(axis=tuple(b for b in range(mask.ndim) if b != a)))[0]
        lo.append(nz[0])
        hi.append(nz[-1] + 1)
    return np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)


def component_groups(
    mask: NDArray[np.bool_], pad: NDArray[np.int64]
) -> list[tuple[NDArray[np.int64], NDArray[np.int64], set[int], NDArray[np.int32]]]:
    """Bounding boxes (index ``[lo, hi)``) of the connected components of a mask, merged
    where boxes padded by ``pad`` overlap, with the labels of each group and the label
    array."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    groups: list[tuple[NDArray[np.int64], NDArray[np.int64], set[int]]] = []
    for lab, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        lo = np.array([s.start for s in sl], dtype=np.int64) - pad
        hi = np.array([s.stop for s in sl], dtype=np.int64) + pad
        groups.append((lo, hi, {lab}))
    changed = True
    while changed:
        changed = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                if np.all(a[0] < b[1]) and np.all(b[0] < a[1]):
                    merged = (np.minimum(a[0], b[0]), np.maximum(a[1], b[1]), a[2] | b[2])
                    groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
                    changed = True
                    break
            if changed:
                break
    return [(lo + pad, hi - pad, labs, labels) for lo, hi, labs in groups]


def rigid_matrix(transform: RigidTransform | ArrayLike | None) -> NDArray[np.float64]:
    """The 4 x 4 matrix of a rigid transform (identity for ``None``), checked rigid."""
    if transform is None:
        return np.eye(4)
    if not isinstance(transform, RigidTransform):
        transform = RigidTransform(np.asarray(transform, dtype=float), source="4 x 4 matrix")
    return np.asarray(transform.matrix, dtype=float)


def min_width(grid: Grid, axis: int) -> float:
    """Smallest voxel width (mm) along ``axis``."""
    if axis == 0 and not grid.is_regular:
        return float(np.diff(grid.slice_positions_mm).min())
    return float(grid.spacing_mm[axis])


def mask_voxel(
    mask_grid: Grid,
    a_row: NDArray[np.float64],
    b_k: float,
    k: int,
    local: Axes,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Mask-local coordinate (mm) along mask axis ``k`` of CT-local points (per-axis
    arrays, broadcast), and the index of the mask voxel containing them (unclipped)."""
    ml = b_k + a_row[0] * local[0] + a_row[1] * local[1] + a_row[2] * local[2]
    return ml, np.floor(frac_index(mask_grid, k, ml) + 0.5).astype(np.int64)


def box_sdf(local: Axes, lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signed distance (mm) of points (per-axis coordinates) to the box ``[lo, hi]``."""
    q = np.stack([np.maximum(lo[a] - local[a], local[a] - hi[a]) for a in range(3)])
    return np.asarray(
        np.sqrt((np.maximum(q, 0.0) ** 2).sum(axis=0)) + np.minimum(q.max(axis=0), 0.0)
    )
