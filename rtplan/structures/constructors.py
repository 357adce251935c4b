"""Structure sources: signed distance fields from spheres (PET-report lesions), CT
masks, masks drawn on another grid (PET delineations) and RTSTRUCT contours.

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

import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from rtplan.errors import GeometryError, GridMismatchError, InvalidParameterError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform
from rtplan.structures._distance import mask_phi
from rtplan.structures._exact import (
    BoxUnion,
    SegmentIndex,
    SlabStack,
    Sphere,
    even_odd_area,
    ring_segments,
)
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
    to_local,
    voxel_bounds,
)
from rtplan.structures._patches import CellsPatch, FieldPatch, Patch, ShapePatch
from rtplan.structures.contour import PlanarContour
from rtplan.structures.field import SignedDistanceField
from rtplan.structures.raster import contour_planes, fill_even_odd, slab_thickness_mm
from rtplan.structures.rtstruct import StructureSet, check_roi_frame, read_rtstruct

__all__ = [
    "sdf_from_contours",
    "sdf_from_foreign_mask",
    "sdf_from_mask",
    "sdf_from_rtstruct",
    "sdf_from_sphere",
]


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




#: largest spread (mm) of a contour's points along the slice normal
_PLANE_TOL_MM = 0.1


def _signed_in_plane(
    inside: NDArray[np.bool_],
    ys: NDArray[np.float64],
    xs: NDArray[np.float64],
    index: SegmentIndex,
    h_yx: NDArray[np.float64],
    reach_mm: float,
) -> NDArray[np.float64]:
    """Signed in-plane distance (mm, negative inside) to the rings ``index`` on the lattice
    plane ``ys x xs``: exact (segment distances) within ``reach_mm`` of the boundary,
    elsewhere the EDT distance between cell centres (the right sign, >= reach)."""
    if inside.all() or not inside.any():
        out = np.full(inside.shape, 1e3)
        return np.where(inside, -out, out)
    d_out = ndimage.distance_transform_edt(~inside, sampling=h_yx)
    d_in = ndimage.distance_transform_edt(inside, sampling=h_yx)
    approx = np.where(inside, -d_in, d_out)
    near = np.nonzero(np.abs(approx) <= reach_mm + float(np.hypot(*h_yx)))
    exact = index.distance(ys[near[0]], xs[near[1]])
    approx[near] = np.where(inside[near], -exact, exact)
    return np.asarray(approx, dtype=np.float64)


def sdf_from_contours(
    contours: Sequence[PlanarContour] | Sequence[ArrayLike],
    grid: Grid,
    *,
    resolution_mm: float | None = None,
) -> SignedDistanceField:
    """Signed distance field of planar contours (an RTSTRUCT ROI), built directly from
    the polygons on the working lattice (no CT voxels in between).

    The structure is the rasterisation convention of ``rtplan.structures.raster`` made
    exact: each contour plane stands for the slab ``[z - t/2, z + t/2)`` along the slice
    normal, ``t`` the contour spacing (the smallest gap between planes) or, for a single
    plane, the CT slice spacing; in plane, the even-odd region of the plane's polygons
    (nested polygons are holes). The field is the exact signed distance to that stack of
    prisms near the surface, and the patch keeps the stack, so isotropic margins are
    measured to the polygons themselves (chains of margins stay exact) and
    :func:`~rtplan.structures.volume_cc` gives ``sum(area * t)``.

    Parameters
    ----------
    contours
        :class:`~rtplan.structures.PlanarContour` objects, or ``(N, 3)`` LPS polygons in
        mm (e.g. ``StructureSetROI.polygons_mm``), parallel to ``grid``'s slices.
    grid
        The CT grid the structure is built on (its slice spacing is the thickness of a
        single-plane ROI; the contours need not lie on its slices).
    resolution_mm
        Working cell size in mm, as in :func:`sdf_from_mask`.

    Returns
    -------
    SignedDistanceField
        Empty when there are no contours.

    Raises
    ------
    GeometryError
        A contour that is not parallel to the slices (points spread more than 0.2 mm
        along the slice normal), or one with fewer than 3 points.

    Notes
    -----
    Outside, the distance to a union of prisms is ``min_j sqrt(d_j^2 + dz_j^2)`` (``d_j``
    in plane to slab ``j``'s region, ``dz_j`` along the normal to its range); inside, the
    distance to the complement is the same minimum over the complement's pieces (outside
    each slab's region within its range, and the gaps and ends of the stack). The
    in-plane distances are measured to the polygon edges within about four cells of the
    boundary. Compare :func:`sdf_from_foreign_mask`, which does the same for PET voxel
    boxes.

    Examples
    --------
    A circle of radius 10 mm (360 points) on the three CT planes z = -3, 0, 3 mm (3 mm
    apart): a cylinder of radius 10 mm from z = -4.5 to 4.5 mm, 2.827 cc; grown by 2 mm
    its top is at 6.5 mm and its side at 12 mm:

    >>> from rtplan.structures import expand, volume_cc
    >>> g = Grid((11, 64, 64), origin_mm=(-31.5, -31.5, -15.0), spacing_mm=(3, 1, 1))
    >>> t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    >>> circle = lambda z: np.c_[10 * np.cos(t), 10 * np.sin(t), np.full(t.size, z)]
    >>> gtv = sdf_from_contours([circle(z) for z in (-3.0, 0.0, 3.0)], g)
    >>> round(volume_cc(gtv), 3)  # the polygon's area is 0.05 % below the circle's
    2.826
    >>> ctv = expand(gtv, 2.0)
    >>> ctv.value_at([[0, 0, 6.5], [12, 0, 0], [0, 0, 6.0]]).round(2).tolist()
    [0.0, 0.0, -0.5]
    """
    polys: list[NDArray[np.float64]] = []
    for c in contours:
        pts = np.asarray(c.points_mm if isinstance(c, PlanarContour) else c, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 3:
            raise GeometryError(f"a contour must be (N >= 3, 3) points in mm, got {pts.shape}")
        spread = float(np.ptp((pts - grid.origin_mm) @ grid.direction[0]))
        if spread > 2 * _PLANE_TOL_MM:
            raise GeometryError(
                f"a contour is not parallel to the CT slices: its points spread {spread:.3f} "
                f"mm along the slice normal (allowed {2 * _PLANE_TOL_MM} mm); the contours "
                "may belong to a differently oriented image"
            )
        polys.append(pts)
    pos, planes, spacing = contour_planes(polys, grid)
    if pos.size == 0:
        return SignedDistanceField(grid)
    half = slab_thickness_mm(spacing, grid) / 2
    z_lo, z_hi = pos - half, pos + half
    rings = [[to_local(grid, p)[:, 1:] for p in plane] for plane in planes]
    segs = tuple(ring_segments(r) for r in rings)
    volume = float(sum(even_odd_area(r) for r in rings)) * 2 * half
    stack = SlabStack(z_lo, z_hi, segs, volume)
    yx = np.concatenate([np.concatenate(r) for r in rings])
    lo = np.array([z_lo[0], *yx.min(axis=0)])
    hi = np.array([z_hi[-1], *yx.max(axis=0)])
    h_t, base = choose_lattice(grid, hi - lo, resolution_mm)
    h = np.asarray(h_t)
    start, stop = box_indices(h_t, base, lo, hi, pad=PAD_CELLS)
    zs, ys, xs = lattice_axes(h_t, base, start, stop)
    reach = 4.0 * float(h.max())
    # the in-plane regions and signed distances of every slab on the lattice plane
    n_y, n_x = ys.size, xs.size
    signed = []
    for i_slab, plane_rings in enumerate(rings):
        rc = [np.column_stack([(r[:, 0] - ys[0]) / h[1], (r[:, 1] - xs[0]) / h[2]])
              for r in plane_rings]
        inside = fill_even_odd(rc, n_y, n_x)
        signed.append(_signed_in_plane(inside, ys, xs, stack.index(i_slab), h[1:], reach))
    s_all = np.stack(signed)  # (slabs, rows, cols)
    # the lattice cells of each slab: half-open [z_lo, z_hi), the raster rule
    slab_of = np.searchsorted(z_lo, zs, side="right") - 1
    in_slab = (slab_of >= 0) & (zs < z_hi[np.clip(slab_of, 0, None)] - 1e-9)
    # the stack's gaps and ends: the complement's pieces with no in-plane extent
    gaps_lo = np.concatenate([[-np.inf], z_hi])
    gaps_hi = np.concatenate([z_lo, [np.inf]])
    real = gaps_hi - gaps_lo > 1e-9
    gaps_lo, gaps_hi = gaps_lo[real], gaps_hi[real]
    phi = np.empty((zs.size, n_y, n_x), dtype=np.float32)
    for k, z in enumerate(zs):
        dz = np.maximum(np.maximum(z_lo - z, z - z_hi), 0.0)
        near = np.nonzero(dz <= reach)[0]
        d_out = np.full((n_y, n_x), reach + float(h.max()))
        d_in = np.full((n_y, n_x), reach + float(h.max()))
        for j in near:
            np.minimum(d_out, np.hypot(np.maximum(s_all[j], 0.0), dz[j]), out=d_out)
            np.minimum(d_in, np.hypot(np.maximum(-s_all[j], 0.0), dz[j]), out=d_in)
        dz_gap = float(np.min(np.maximum(np.maximum(gaps_lo - z, z - gaps_hi), 0.0)))
        np.minimum(d_in, dz_gap, out=d_in)
        if in_slab[k]:
            inside = s_all[slab_of[k]] < 0
            phi[k] = np.where(inside, -np.maximum(d_in, 1e-6), d_out)
        else:
            phi[k] = d_out
    patch = ShapePatch(h_t, base, index3(start), phi, stack)
    return SignedDistanceField.from_patches(grid, [patch])



def sdf_from_rtstruct(
    source: str | os.PathLike[str] | StructureSet,
    name: str,
    target: CTSeries | Grid,
    *,
    check_frame_of_reference: bool = True,
    resolution_mm: float | None = None,
) -> SignedDistanceField:
    """Signed distance field of one RTSTRUCT ROI on a CT, from its polygons directly.

    :func:`sdf_from_contours` of the ROI's CLOSED_PLANAR contours (each plane a slab of
    half the contour spacing either side; a single plane: the CT slice thickness), after
    checking that the ROI is in the CT's frame of reference.

    Parameters
    ----------
    source
        RTSTRUCT path or a :class:`~rtplan.structures.StructureSet`.
    name
        ROI name (looked up as in :meth:`~rtplan.structures.StructureSet.roi`).
    target
        The CT (its FrameOfReferenceUID is checked) or just its grid.
    check_frame_of_reference
        With a CT, refuse an ROI whose ReferencedFrameOfReferenceUID differs.
    resolution_mm
        Working cell size in mm, as in :func:`sdf_from_mask`.

    Returns
    -------
    SignedDistanceField
        Empty when the ROI has no contours.

    Raises
    ------
    InputError
        No ROI of that name.
    GridMismatchError
        The ROI is in another frame of reference than the CT.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    >>> body = sdf_from_rtstruct(get_path("rt_ss"), "patient", g)
    >>> float(body.value_at([0.0, 0.0, -200.0]).round(2)) < 0  # inside the outline
    True
    """
    ss = source if isinstance(source, StructureSet) else read_rtstruct(source)
    roi = ss.roi(name)
    check_roi_frame(roi, target, check_frame_of_reference)
    grid = target.grid if isinstance(target, CTSeries) else target
    return sdf_from_contours(roi.polygons_mm, grid, resolution_mm=resolution_mm)


def sdf_from_sphere(
    grid: Grid,
    center_mm: ArrayLike,
    radius_mm: float,
    *,
    resolution_mm: float | None = None,
) -> SignedDistanceField:
    """Exact signed distance field of a sphere on a CT grid.

    Parameters
    ----------
    grid
        The CT grid (only its geometry is used; the sphere may extend beyond it).
    center_mm
        Centre ``(x, y, z)`` in DICOM patient coordinates (LPS, mm).
    radius_mm
        Radius in mm (> 0); a PET report's diameter divided by two.
    resolution_mm
        Working cell size in mm; default 0.5 to 1 mm by size (see
        :func:`~rtplan.structures.sdf_from_mask`).

    Returns
    -------
    SignedDistanceField
        ``|x - center| - radius`` sampled on a box of ``2 * radius`` plus a few cells.

    Raises
    ------
    InvalidParameterError
        If the radius is not a positive finite number or the centre is not 3 numbers.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((40, 64, 64), origin_mm=(-31.4, -31.4, -60.0), spacing_mm=(3, 0.98, 0.98))
    >>> gtv = sdf_from_sphere(g, center_mm=(1.1, -2.3, 0.7), radius_mm=5.0)
    >>> float(gtv.value_at([1.1, -2.3, 6.7]).round(4))
    1.0
    """
    c = np.asarray(center_mm, dtype=float).reshape(-1)
    if c.size != 3 or not np.all(np.isfinite(c)):
        raise InvalidParameterError(
            f"sphere centre must be 3 finite LPS coordinates in mm, got {center_mm!r}"
        )
    r = float(radius_mm)
    if not np.isfinite(r) or r <= 0:
        raise InvalidParameterError(
            f"sphere radius must be a positive number of mm, got {radius_mm!r}: "
            "give half the lesion diameter"
        )
    local_c = to_local(grid, c)
    h, base = choose_lattice(grid, np.full(3, 2 * r), resolution_mm)
    start, stop = box_indices(h, base, local_c - r, local_c + r, PAD_CELLS)
    d2 = np.zeros(tuple(int(n) for n in stop - start))
    for a in range(3):
        x = base[a] + np.arange(start[a], stop[a]) * h[a] - local_c[a]
        shape = [1, 1, 1]
        shape[a] = -1
        d2 = d2 + (x**2).reshape(shape)
    patch = ShapePatch(h, base, index3(start), (np.sqrt(d2) - r).astype(np.float32),
                       Sphere(local_c, r))
    return SignedDistanceField.from_patches(grid, [patch])
