"""Structure sources: signed distance fields from CT masks, masks drawn on another grid
(PET delineations) and RTSTRUCT contours.

Masks on the CT grid (:func:`sdf_from_mask`)
--------------------------------------------
A structure from a mask is known exactly: the union of its voxel boxes. The mask is
supersampled onto the working lattice, whose cells tile the CT voxels; the field is the
distance to the cell boxes near the surface (``_distance.mask_phi``), and the patch
keeps its cells (a ``CellsPatch``) so that margins grow the boxes themselves and
:func:`~rtplan.structures.volume_cc` counts them.

Masks drawn on another grid (:func:`sdf_from_foreign_mask`)
-----------------------------------------------------------
A PET delineation stands for the union of its PET voxel boxes (4 mm), moved rigidly into
CT space. Its cells are classified directly on the working lattice (each cell centre
mapped into the PET grid, nearest voxel), never on CT voxels, whose 1.5 mm pixels would
quantise the 4 mm boxes. Near the surface the field is then the exact distance to the
box union (rigid motions keep distances, so it is measured on the PET grid, over the
boxes around the containing voxel); elsewhere the lattice distance of ``mask_phi``. The
patch keeps the exposed boxes (a ``ShapePatch`` of a :class:`~._exact.BoxUnion`) so
isotropic margins are measured to them.

RTSTRUCT contours (:func:`sdf_from_contours`)
---------------------------------------------
See the function: every planar contour stands for a slab along the slice normal; the
field is the exact distance to the stack of polygon slabs (a ``ShapePatch`` of a
:class:`~._exact.SlabStack`), never passing through CT voxels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from rtplan.errors import GridMismatchError
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform
from rtplan.structures._distance import mask_phi
from rtplan.structures._exact import BoxUnion
from rtplan.structures._lattice import (
    PAD_CELLS,
    bbox,
    box_indices,
    box_sdf,
    choose_lattice,
    component_groups,
    fine_mask,
    index3,
    lattice_axes,
    mask_voxel,
    min_width,
    nearest_index,
    rigid_matrix,
    voxel_bounds,
)
from rtplan.structures._patches import CellsPatch, FieldPatch, Patch, ShapePatch
from rtplan.structures.field import SignedDistanceField

__all__ = ["sdf_from_foreign_mask", "sdf_from_mask"]


def sdf_from_mask(
    mask: ArrayLike, grid: Grid, *, resolution_mm: float | None = None
) -> SignedDistanceField:
    """Signed distance field of a boolean mask on a CT grid (voxel-edge surface).

    Each voxel counts as the full box around its centre (for slices: half-way to the
    neighbouring slice planes), so the surface is the union of voxel faces, the "real
    boundary" of a voxel mask, and not the voxel centres. Separate connected components
    far apart get separate cropped patches.

    Parameters
    ----------
    mask
        Boolean ``[slice, row, column]`` array with the shape of ``grid``.
    grid
        The CT grid.
    resolution_mm
        Working cell size in mm (each CT voxel is split into ``round(spacing /
        resolution_mm)`` cells per axis). Default: about 0.5 mm for structures up to
        16 mm across, up to about 1 mm from 32 mm, coarser only beyond ~1.5 million
        cells per patch.

    Returns
    -------
    SignedDistanceField

    Raises
    ------
    GridMismatchError
        If the mask does not have the grid's shape.

    Notes
    -----
    The mask is supersampled (nearest voxel) onto the lattice, whose cells tile the CT
    voxels exactly; ``scipy.ndimage.distance_transform_edt(..., sampling=cell size)``
    gives the nearest cell centres; near the surface the distance is then measured to
    the nearest cell *boxes* (``_distance.nearest_boxes``), so the zero level lies on the voxel
    faces (see ``mask_phi``). The field remembers its cells: margins grow the voxel
    boxes themselves (:func:`~rtplan.structures.expand`: exact corners and edges, chained
    isotropic margins included) and :func:`~rtplan.structures.volume_cc` counts them.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((5, 10, 10), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> m = np.zeros(g.shape, bool); m[2, 4:6, 4:6] = True
    >>> s = sdf_from_mask(m, g)
    >>> # one voxel box: x 3.5..5.5 mm, z 4.5..7.5 mm; value at the centre of a face:
    >>> float(np.round(s.value_at([5.5, 5.0, 6.0]), 6))
    0.0
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != grid.shape:
        raise GridMismatchError(
            f"mask shape {m.shape} does not match the grid shape {grid.shape}: give a mask "
            "on the CT grid"
        )
    if not m.any():
        return SignedDistanceField(grid)
    s = np.asarray(grid.spacing_mm)
    patches: list[Patch] = []
    h0, _ = choose_lattice(grid, [1.0, 1.0, 1.0], resolution_mm)
    pad_ct = np.ceil((PAD_CELLS + 1) * np.asarray(h0) / s).astype(np.int64) + 1
    bb_lo, bb_hi = bbox(m)
    crop = m[tuple(slice(a, b) for a, b in zip(bb_lo, bb_hi, strict=True))]
    for lo, hi, labs, labels in component_groups(crop, pad_ct):
        extent = (hi - lo + 2) * s
        h, base = choose_lattice(grid, extent, resolution_mm)
        f = np.rint(s / np.asarray(h)).astype(np.int64)
        start = (bb_lo + lo - 1) * f - PAD_CELLS
        stop = (bb_lo + hi + 1) * f + PAD_CELLS
        lo_c, hi_c = np.maximum(lo, 0), np.minimum(hi, crop.shape)
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo_c, hi_c, strict=True))
        sub = np.isin(labels[sl], list(labs))
        fine = fine_mask(sub, grid, h, base, start, stop, offset=bb_lo + lo_c)
        phi = mask_phi(fine, np.asarray(h))
        patches.append(CellsPatch(h, base, index3(start), phi, fine))
    return SignedDistanceField.from_patches(grid, patches)


def _box_union_distance(
    member: NDArray[np.bool_],
    offset: NDArray[np.int64],
    mask_grid: Grid,
    side: NDArray[np.bool_],
    points: NDArray[np.float64],
    voxel: NDArray[np.int64],
    reach: Sequence[int],
) -> NDArray[np.float64]:
    """Distance (mm) from ``points`` to the nearest voxel box of the other side.

    ``member`` is a crop of a mask on ``mask_grid`` (element ``[0, 0, 0]`` is voxel
    ``offset``; beyond the crop: not a member). ``points`` ``(3, N)`` are in the mask
    grid's local frame, ``voxel`` ``(3, N)`` the (unclipped) index of the box containing
    each, ``side`` its membership. Boxes up to ``reach[a]`` indices away along axis
    ``a`` are searched; ``inf`` where none of the other side is among them.
    """
    r = np.asarray(reach, dtype=np.int64)
    padded = np.pad(member, [(int(v), int(v)) for v in r])
    rel = voxel - offset[:, None] + r[:, None]
    gap2 = []
    for a in range(3):
        rows = []
        for n in range(-int(r[a]), int(r[a]) + 1):
            lo, hi = voxel_bounds(mask_grid, a, voxel[a] + n)
            rows.append(np.maximum(np.maximum(lo - points[a], points[a] - hi), 0.0) ** 2)
        gap2.append(rows)
    best = np.full(points.shape[1], np.inf)
    top = np.asarray(padded.shape) - 1
    for i, n0 in enumerate(range(-int(r[0]), int(r[0]) + 1)):
        k0 = np.clip(rel[0] + n0, 0, top[0])
        for j, n1 in enumerate(range(-int(r[1]), int(r[1]) + 1)):
            k1 = np.clip(rel[1] + n1, 0, top[1])
            d01 = gap2[0][i] + gap2[1][j]
            for k, n2 in enumerate(range(-int(r[2]), int(r[2]) + 1)):
                k2 = np.clip(rel[2] + n2, 0, top[2])
                other = padded[k0, k1, k2] != side
                np.minimum(best, np.where(other, d01 + gap2[2][k], np.inf), out=best)
    return np.sqrt(best)


def sdf_from_foreign_mask(
    mask: ArrayLike,
    mask_grid: Grid,
    grid: Grid,
    transform: RigidTransform | ArrayLike | None = None,
    *,
    resolution_mm: float | None = None,
) -> SignedDistanceField:
    """Signed distance field on a CT grid of a mask drawn on another grid (e.g. the PET).

    The structure is the union of the mask's voxel boxes (for slices: half-way to the
    neighbouring slice planes) on ``mask_grid``, moved rigidly by ``transform`` into the
    CT frame. It is sampled directly on the working lattice (about 0.5 mm) of the CT
    grid, so no CT-voxel quantisation is added: a 4 mm PET box stays 4 mm wide on 1.5
    mm CT pixels. Cropped to the transformed bounding box of each group of connected
    components, and to the CT's extent.

    Parameters
    ----------
    mask
        Boolean ``[slice, row, column]`` array with the shape of ``mask_grid``.
    mask_grid
        Grid of the mask (LPS mm, in its own frame of reference), e.g. the PET's.
    grid
        The CT grid the structure is built on.
    transform
        Rigid transform (:class:`~rtplan.imaging.RigidTransform` or 4 x 4 matrix) mapping
        *mask-frame* points to *CT-frame* points (PET -> CT). ``None``: same frame.
    resolution_mm
        Working cell size in mm, as in :func:`sdf_from_mask`.

    Returns
    -------
    SignedDistanceField
        Empty when the mask is empty or lies outside the CT.

    Raises
    ------
    GridMismatchError
        If the mask does not have the shape of ``mask_grid``.
    GeometryError
        If ``transform`` is not a rigid 4 x 4 matrix.

    Notes
    -----
    Each lattice cell centre is mapped into the mask grid and takes the value of the mask
    voxel containing it (nearest voxel); ``mask_phi`` turns that lattice mask into a
    distance field as in :func:`sdf_from_mask`. Within about three cells of the surface
    the field is then replaced by the exact distance to the voxel-box union, the minimum
    over the boxes of the other side among the neighbours of the containing voxel (the
    distance is rigid-invariant, so it is measured in the mask grid's frame): the zero
    level lies on the box faces, not on the lattice's cell faces (at most ``h / 2``
    away). Beyond the CT's extent the structure is cut (intersection with the CT box).

    Examples
    --------
    One 4 mm PET voxel, box x -2..2, y 0..4, z 8..12 mm, on a CT of 1.5 mm pixels and 3
    mm slices; the distance field is 0 on its faces and -1 mm 1 mm below the top face:

    >>> from rtplan.imaging.grid import Grid
    >>> pet = Grid((4, 4, 4), origin_mm=(-4, -2, 2), spacing_mm=(4, 4, 4))
    >>> m = np.zeros(pet.shape, bool); m[2, 1, 1] = True
    >>> ct = Grid((10, 20, 20), origin_mm=(-15, -14, -1), spacing_mm=(3, 1.5, 1.5))
    >>> s = sdf_from_foreign_mask(m, pet, ct)
    >>> s.value_at([[2.0, 2.0, 10.0], [0.0, 4.0, 10.0], [0.0, 2.0, 12.0], [0, 2, 11]]).round(3)
    array([ 0.,  0.,  0., -1.])

    Moved by a PET -> CT translation of 10 mm along z:

    >>> shift = np.eye(4); shift[2, 3] = 10.0
    >>> float(sdf_from_foreign_mask(m, pet, ct, shift).value_at([0.0, 2.0, 22.0]).round(3))
    0.0
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != mask_grid.shape:
        raise GridMismatchError(
            f"mask shape {m.shape} does not match its grid's shape {mask_grid.shape}: give "
            "the mask on the grid it was drawn on"
        )
    mat = rigid_matrix(transform)
    h0, _ = choose_lattice(grid, [1.0, 1.0, 1.0], resolution_mm)  # checks resolution_mm
    if not m.any():
        return SignedDistanceField(grid)
    # CT-local (mm along the CT axes) -> mask-local: ml = a_mat @ local + b_vec
    r_inv = mat[:3, :3].T
    a_mat = mask_grid.direction @ r_inv @ grid.direction.T
    b_vec = mask_grid.direction @ (r_inv @ (grid.origin_mm - mat[:3, 3]) - mask_grid.origin_mm)
    ct_lo = np.array([voxel_bounds(grid, a, 0)[0] for a in range(3)], dtype=float)
    ct_hi = np.array([voxel_bounds(grid, a, grid.shape[a] - 1)[1] for a in range(3)])
    s_m = np.array([min_width(mask_grid, a) for a in range(3)])
    pad_m = np.ceil((PAD_CELLS + 1) * max(h0) / s_m).astype(np.int64) + 1
    bb_lo, bb_hi = bbox(m)
    crop = m[tuple(slice(a, b) for a, b in zip(bb_lo, bb_hi, strict=True))]
    patches: list[Patch] = []
    for lo, hi, labs, labels in component_groups(crop, pad_m):
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        sub = np.isin(labels[sl], list(labs))
        off = bb_lo + lo
        box = [
            (voxel_bounds(mask_grid, a, off[a])[0], voxel_bounds(mask_grid, a, off[a] + n - 1)[1])
            for a, n in enumerate(sub.shape)
        ]
        corners = np.array([[x, y, z] for x in box[0] for y in box[1] for z in box[2]])
        corners_l = (corners - b_vec) @ a_mat  # mask-local -> CT-local (a_mat orthonormal)
        lo_l, hi_l = corners_l.min(axis=0), corners_l.max(axis=0)
        h_t, base = choose_lattice(grid, hi_l - lo_l, resolution_mm)
        h = np.asarray(h_t)
        start0, stop0 = box_indices(h_t, base, lo_l, hi_l, pad=PAD_CELLS)
        c_start, c_stop = box_indices(h_t, base, ct_lo, ct_hi, pad=PAD_CELLS)
        start, stop = np.maximum(start0, c_start), np.minimum(stop0, c_stop)
        if np.any(stop <= start):
            continue
        axes = lattice_axes(h_t, base, start, stop)
        grid_axes = [axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]]
        in_mask = np.ones(tuple(int(b - a) for a, b in zip(start, stop, strict=True)), bool)
        rel = []
        for k in range(3):  # one axis at a time: 3 index arrays of the box at most
            _, vox_k = mask_voxel(mask_grid, a_mat[k], b_vec[k], k, grid_axes)
            r_k = vox_k - off[k]
            in_mask &= (r_k >= 0) & (r_k < sub.shape[k])
            rel.append(np.clip(r_k, 0, sub.shape[k] - 1))
        in_mask &= sub[rel[0], rel[1], rel[2]]
        del rel
        in_ct = [nearest_index(grid, a, axes[a]) >= 0 for a in range(3)]
        fine = in_mask & in_ct[0][:, None, None] & in_ct[1][None, :, None] & in_ct[2][None, None, :]
        if not fine.any():
            continue
        phi = mask_phi(fine, h)
        # exact distance to the box union near the surface
        reach_mm = 3.5 * float(h.max())
        sel = np.nonzero(np.abs(phi) <= 3.0 * float(h.max()))
        local = [axes[a][sel[a]] for a in range(3)]
        pts, vox = zip(*(mask_voxel(mask_grid, a_mat[k], b_vec[k], k, local) for k in range(3)),
                       strict=True)
        reach = [1 + int(np.floor(reach_mm / s_m[a])) for a in range(3)]
        d = _box_union_distance(sub, off, mask_grid, in_mask[sel], np.stack(pts),
                                np.stack(vox), reach)
        exact = np.where(in_mask[sel], -d, d)
        exact = np.maximum(exact, box_sdf(local, ct_lo, ct_hi))
        inside = fine[sel]
        exact = np.where(inside, np.minimum(exact, -1e-6), np.maximum(exact, 0.0))
        phi[sel] = np.where(d <= reach_mm, exact, phi[sel]).astype(np.float32)
        boxes: BoxUnion | None = None
        uncut = (np.array_equal(start, start0) and np.array_equal(stop, stop0)
                 and np.array_equal(fine, in_mask))
        if uncut:  # keep the boxes themselves for exact margins (not when the CT cuts it)
            surf = sub & ~ndimage.binary_erosion(np.pad(sub, 1))[1:-1, 1:-1, 1:-1]
            exposed = np.argwhere(surf) + off
            bounds = [voxel_bounds(mask_grid, a, exposed[:, a]) for a in range(3)]
            boxes = BoxUnion(np.stack([b[0] for b in bounds], axis=1),
                             np.stack([b[1] for b in bounds], axis=1), a_mat, b_vec)
        if boxes is None:
            patches.append(FieldPatch(h_t, base, index3(start), phi))
        else:
            patches.append(ShapePatch(h_t, base, index3(start), phi, boxes))
    return SignedDistanceField.from_patches(grid, patches)


