"""Distance algorithms behind margins (private): closest-point redistancing, the
octant-ellipsoid gauge, and exact distances to unions of lattice-cell boxes.

Distance to a sampled surface (:func:`redistance`)
--------------------------------------------------
1. The cells on either side of a sign change ("interface cells") are projected onto
   the zero level set: ``q = y - phi(y) grad(phi) / |grad(phi)|`` (central
   differences; exact for a distance field, and at kinks of the field the point cannot
   jump across the surface).
2. ``scipy.ndimage.distance_transform_edt(..., sampling=cell size,
   return_indices=True)`` gives every cell its nearest interface cell.
3. In a band of +-3.5 cells around the new surface, the distance is measured to the
   surface points ``q`` of that interface cell and its 6 neighbours (each ``|x - q|``
   is an upper bound, since ``q`` is on the surface), and the remaining sub-cell
   sampling offset is removed by measuring to the osculating sphere at the best ``q``
   (normal and mean curvature ``lap(phi) / 2`` from central differences; the point
   distance where the curvature is of the order of a cell, e.g. at voxel-mask edges).
   Exact for spheres and planes; measured within 0.06 mm on the issue's sphere cases.
4. Outside the band the distance to the nearest interface cell centre is kept: it has
   the right sign, which is all booleans, masks and later margins need there.

Anisotropic margins (:func:`redistance_gauge`)
----------------------------------------------
The Minkowski sum with an octant ellipsoid: one EDT per distinct octant with
``sampling = h / r_octant`` finds the nearest interface cell in that octant's metric;
the true asymmetric gauge is evaluated to its surface point.

Voxel masks: margins measured to the boxes (:func:`cells_margin`, :func:`mask_phi`)
-----------------------------------------------------------------------------------
A structure from a mask is known exactly: the union of its voxel boxes, which the
lattice cells tile. The closest-point redistancing above samples the surface with one
point per interface cell, and at the convex corners and edges of boxes those points sit
on the faces beside the corner, not on it: a 5 mm margin then fell up to 0.47 mm short
at box corners. So a margin of such a structure (a chain of isotropic margins: balls add
up) measures every cell near the new surface to the nearest cell *box*: the EDT feature
cell, its neighbours and a propagation sweep over the neighbours' best boxes
(:func:`nearest_boxes`; the nearest centre is not always the nearest box: a box seen
along its diagonal is up to 0.37 cells nearer). Anisotropic margins do the same with the
octant-ellipsoid gauge, which is separable per axis for a box. Checked against
brute-force distances to random box unions (exact to float precision at the cells; the
anisotropic gauge within 0.02 mm near the surface) and analytic rounded boxes.

Exact shapes (:func:`shape_margin`)
-----------------------------------
A structure known exactly in another form (a sphere, PET voxel boxes in the PET frame, a
stack of RTSTRUCT polygon slabs) gives the unsigned distance from any point to itself; an
isotropic margin then measures to the shape directly in a shell around the new surface
(a sphere just changes its radius).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

IndexArrays = tuple[NDArray[np.intp], ...]
Coords = Sequence[NDArray[np.float64]]


def edt_with_features(
    mask: NDArray[np.bool_], h: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """``scipy.ndimage.distance_transform_edt(mask, sampling=h, return_indices=True)``:
    distance (mm) from each nonzero cell to the nearest zero cell centre, and that
    cell's index. The distances are computed here from the feature transform (scipy's
    own conversion costs as much as the transform itself); same values to 1e-12 mm."""
    feat = ndimage.distance_transform_edt(mask, sampling=h, return_distances=False,
                                          return_indices=True)
    ind = np.indices(mask.shape, sparse=True)
    d2 = np.zeros(mask.shape)
    for a in range(3):
        d2 += ((feat[a] - ind[a]) * float(h[a])) ** 2
    return np.sqrt(d2), feat


def _interface(inside: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Voxels with a 6-neighbour on the other side of the surface."""
    marked = np.zeros(inside.shape, dtype=bool)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        d = inside[tuple(lo)] != inside[tuple(hi)]
        marked[tuple(lo)] |= d
        marked[tuple(hi)] |= d
    return marked


def _surface_points(
    phi: NDArray[np.float32], h: NDArray[np.float64], marked: NDArray[np.bool_]
) -> tuple[tuple[NDArray[np.intp], ...], NDArray[np.float64]]:
    """Interface voxels and their Newton projections onto ``phi = 0`` (box-relative mm)."""
    mk = np.nonzero(marked)
    vals = phi[mk].astype(np.float64)
    grad = np.empty((3, vals.size))
    for axis in range(3):
        n = phi.shape[axis]
        ip = list(mk)
        im = list(mk)
        ip[axis] = np.minimum(mk[axis] + 1, n - 1)
        im[axis] = np.maximum(mk[axis] - 1, 0)
        step = (ip[axis] - im[axis]) * h[axis]
        grad[axis] = (phi[tuple(ip)] - phi[tuple(im)]) / np.maximum(step, 1e-12)
    # step |phi| along the unit normal: exact for a distance field; where the field has
    # a kink (edges of a voxel mask, booleans) the averaged normal then lands the point
    # on or just outside the surface, never across it.
    gn = np.maximum(np.sqrt((grad**2).sum(axis=0)), 1e-12)
    step = np.clip(vals, -1.5 * float(h.max()), 1.5 * float(h.max()))
    q = np.stack([mk[a] * h[a] for a in range(3)]) - step * grad / gn
    return mk, q


def _normals_curvature(
    phi: NDArray[np.float32], h: NDArray[np.float64], mk: tuple[NDArray[np.intp], ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit normals (outwards) and mean curvature ``lap(phi) / 2`` (1/mm; NaN where it
    exceeds ``1 / (2 h)``) at interface voxels, from central differences."""
    vals = phi[mk].astype(np.float64)
    grad = np.empty((3, vals.size))
    lap = np.zeros(vals.size)
    for axis in range(3):
        n = phi.shape[axis]
        ip = list(mk)
        im = list(mk)
        ip[axis] = np.minimum(mk[axis] + 1, n - 1)
        im[axis] = np.maximum(mk[axis] - 1, 0)
        fp = phi[tuple(ip)].astype(np.float64)
        fm = phi[tuple(im)].astype(np.float64)
        grad[axis] = (fp - fm) / (2 * h[axis])
        lap += (fp - 2 * vals + fm) / h[axis] ** 2
    norm = np.maximum(np.sqrt((grad**2).sum(axis=0)), 1e-12)
    kappa = 0.5 * lap / norm
    # where the surface bends on the scale of a cell (edges and corners of voxel masks,
    # creases of booleans) the estimate is meaningless: flag it (NaN = use the point)
    kappa[np.abs(kappa) > 0.5 / h.max()] = np.nan
    return grad / norm, kappa


def redistance(
    phi: NDArray[np.float32], h: NDArray[np.float64], margin_mm: float
) -> NDArray[np.float32]:
    """True signed distance to the zero level set of ``phi`` minus ``margin_mm``.

    Exact where refined (the band of +-3 cells around the returned zero level); beyond the
    band the value is the distance to the nearest interface voxel centre, which has the
    right sign. See the module docstring for the closest-point method.
    """
    inside = phi < 0
    marked = _interface(inside)
    if not marked.any():
        return np.where(inside, -1e3, 1e3).astype(np.float32)
    mk, q = _surface_points(phi, h, marked)
    dist_c, feat = edt_with_features(~marked, h)
    sign = np.where(inside, -1.0, 1.0)
    out = sign * dist_c - margin_mm
    band = 3.5 * float(h.max())
    sel = np.nonzero(np.abs(out) <= band)
    qid = np.full(phi.shape, -1, dtype=np.int64)
    qid[mk] = np.arange(mk[0].size)
    fsel = [feat[a][sel] for a in range(3)]
    del feat, dist_c
    x = [sel[a] * h[a] for a in range(3)]
    normal, kappa = _normals_curvature(phi, h, mk)
    d = _nearest_surface_distance(x, fsel, qid, q, phi.shape, normal, kappa)
    out[sel] = sign[sel] * d - margin_mm
    return out.astype(np.float32)


#: offsets of the interface voxels searched around the EDT feature voxel
_NEIGHBOURS_27 = np.array(
    [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.intp
)
_NEIGHBOURS = _NEIGHBOURS_27[np.abs(_NEIGHBOURS_27).sum(axis=1) <= 1]
#: neighbours whose best boxes are tried in the propagation sweep of ``nearest_boxes``
_PROPAGATE = _NEIGHBOURS_27[np.isin(np.abs(_NEIGHBOURS_27).sum(axis=1), (1, 2))]


def _nearest_surface_distance(
    x: Coords,
    feature: Sequence[NDArray[np.intp]],
    qid: NDArray[np.int64],
    q: NDArray[np.float64],
    shape: tuple[int, ...],
    normal: NDArray[np.float64] | None = None,
    kappa: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Unsigned distance from points ``x`` (box mm) to the surface.

    The candidate surface points are the ``q`` of the interface voxels in the
    3 x 3 x 3 neighbourhood of each point's EDT feature voxel; the closest one is kept
    (every ``|x - q|`` is an upper bound of the true distance since ``q`` lies on the
    surface). With ``normal`` and ``kappa`` the remaining sub-cell sampling offset is
    removed by measuring to the osculating sphere at ``q`` (radius ``1/kappa`` along the
    normal; a plane when ``kappa = 0``): exact for spheres and planes, second order
    otherwise, and never above ``|x - q|``.
    """
    best = np.full(x[0].shape, np.inf)
    best_k = np.zeros(x[0].shape, dtype=np.int64)
    for off in _NEIGHBOURS:
        idx = [np.clip(feature[a] + off[a], 0, shape[a] - 1) for a in range(3)]
        k = qid[idx[0], idx[1], idx[2]]
        ok = k >= 0
        kk = np.where(ok, k, 0)
        d2 = (x[0] - q[0][kk]) ** 2 + (x[1] - q[1][kk]) ** 2 + (x[2] - q[2][kk]) ** 2
        d2 = np.where(ok, d2, np.inf)
        better = d2 < best
        best = np.where(better, d2, best)
        best_k = np.where(better, kk, best_k)
    point = np.sqrt(best)
    if normal is None or kappa is None:
        return point
    v = [x[a] - q[a][best_k] for a in range(3)]
    a_n = v[0] * normal[0][best_k] + v[1] * normal[1][best_k] + v[2] * normal[2][best_k]
    b2 = np.maximum(best - a_n**2, 0.0)
    kap = kappa[best_k]
    # keep 1 + kappa * a_n >= 1/2 (stay on this side of the centre of curvature); a
    # convex surface seen from outside (kappa * a_n > 0) needs no limit: clipping it
    # there flattened a small sphere and under-estimated distances several mm away
    with np.errstate(divide="ignore", invalid="ignore"):
        kap = np.where(kap * a_n < -0.5, -0.5 / a_n, kap)
    one = 1.0 + kap * a_n
    signed = (2 * a_n + kap * (a_n**2 + b2)) / (np.sqrt(one**2 + kap**2 * b2) + 1.0)
    return np.where(np.isnan(kap), point, np.minimum(np.abs(signed), point))


def redistance_gauge(
    phi: NDArray[np.float32],
    h: NDArray[np.float64],
    r_plus: NDArray[np.float64],
    r_minus: NDArray[np.float64],
) -> NDArray[np.float32]:
    """Level-set function of the Minkowski sum of ``{phi < 0}`` with an octant ellipsoid.

    The structuring element ``E`` is the union of eight ellipsoid octants; along local
    axis ``a`` its radius is ``r_plus[a]`` towards ``+a`` and ``r_minus[a]`` towards
    ``-a``. Its gauge is ``N(v) = sqrt(sum_a (v_a / r_a(sign v_a))^2)``; ``x`` is in the
    sum iff ``min_q N(x - q) <= 1`` over surface points ``q``. For each distinct octant
    the nearest interface voxel in that octant's (symmetric) ellipsoid metric comes from
    one EDT with ``sampling = h / r_octant``; the true asymmetric gauge is evaluated to
    that voxel's surface point and the minimum over octants taken. The returned value is
    ``|v| (N - 1) / N``: mm along the ray from the surface point, negative inside.
    """
    inside = phi < 0
    marked = _interface(inside)
    if not marked.any():
        return np.where(inside, -1e3, 1e3).astype(np.float32)
    mk, q = _surface_points(phi, h, marked)
    eps = 1e-3
    rp, rm = np.maximum(r_plus, eps), np.maximum(r_minus, eps)
    qid = np.full(phi.shape, -1, dtype=np.int64)
    qid[mk] = np.arange(mk[0].size)
    best = np.full(phi.shape, np.inf)
    band = 3.5 * float(h.max())
    choices = [sorted({float(rp[a]), float(rm[a])}) for a in range(3)]
    for r0 in choices[0]:
        for r1 in choices[1]:
            for r2 in choices[2]:
                r = np.array([r0, r1, r2])
                feat = ndimage.distance_transform_edt(
                    ~marked, sampling=h / r, return_distances=False, return_indices=True
                )
                # coarse value from the feature voxel, refined near the new surface
                ind = np.indices(phi.shape, sparse=True)
                pts = [np.broadcast_to(ind[a] * h[a], phi.shape) for a in range(3)]
                val = _gauge_value(pts, list(feat), _NEIGHBOURS_27[13:14], qid, q, rp, rm)
                sel = np.nonzero(np.abs(val) <= band)
                val[sel] = _gauge_value(
                    [sel[a] * h[a] for a in range(3)],
                    [feat[a][sel] for a in range(3)],
                    _NEIGHBOURS_27,
                    qid,
                    q,
                    rp,
                    rm,
                )
                del feat
                np.minimum(best, val, out=best)
    r_min = float(min(r_plus.min(), r_minus.min()))
    inner = phi.astype(np.float64) - r_min
    out = np.where(inside, np.minimum(inner, np.minimum(best, -1e-6)), best)
    out = np.where(np.isfinite(out), out, -r_min - float(h.max()))
    return out.astype(np.float32)


def _gauge_value(
    pts: Coords,
    feat: Sequence[NDArray[np.intp]],
    offsets: NDArray[np.intp],
    qid: NDArray[np.int64],
    q: NDArray[np.float64],
    rp: NDArray[np.float64],
    rm: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``min |v| (N(v) - 1) / N(v)`` with ``v = x - q`` over the surface points of the
    interface voxels at ``feat + offsets`` (``N``: the octant-ellipsoid gauge)."""
    shape = qid.shape
    val = np.full(pts[0].shape, np.inf)
    for off in offsets:
        idx = [np.clip(feat[a] + off[a], 0, shape[a] - 1) for a in range(3)]
        k = qid[idx[0], idx[1], idx[2]]
        ok = k >= 0
        k = np.where(ok, k, 0)
        n2 = np.zeros(pts[0].shape)
        v2 = np.zeros(pts[0].shape)
        for a in range(3):
            v = pts[a] - q[a][k]
            n2 += (v / np.where(v >= 0, rp[a], rm[a])) ** 2
            v2 += v**2
        nrm = np.sqrt(n2)
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = np.where(nrm > 1e-9, np.sqrt(v2) * (nrm - 1) / nrm, -np.inf)
        np.minimum(val, np.where(ok, cand, np.inf), out=val)
    return val


def box_face_distance(shape: Sequence[int], h: NDArray[np.float64]) -> NDArray[np.float64]:
    """Distance (mm) from each cell centre of a lattice box to the box's outer faces
    (half a cell beyond the outer cell centres)."""
    out = np.full(tuple(shape), np.inf)
    for a in range(3):
        i = np.arange(shape[a])
        d = (np.minimum(i, shape[a] - 1 - i) + 0.5) * float(h[a])
        view = [1, 1, 1]
        view[a] = -1
        out = np.minimum(out, d.reshape(view))
    return out


def mask_phi(fine: NDArray[np.bool_], h: NDArray[np.float64]) -> NDArray[np.float32]:
    """Signed distance of a lattice mask whose surface is the union of its cell faces.

    ``distance_transform_edt`` (with ``sampling=h``) finds, for every cell, the nearest
    cell centre on the other side; within ``2.5 max(h)`` of the surface the distance is
    then taken to the nearest cell *box* (``nearest_boxes``), i.e. to the voxel faces:
    exact at faces, edges and corners alike. Farther, ``d_c - max(h) / 2`` (right sign).
    """
    half = 0.5 * float(np.min(h))
    if fine.all() or not fine.any():
        # no surface in the box: the nearest one lies beyond the box, so every cell is
        # at least as far from it as from the box's outer faces (a bound, of the right
        # sign; never the -h/2 of a cell next to the surface, which would clamp the
        # interior of a structure cropped to this mask)
        sign = -1.0 if fine.all() else 1.0
        return (sign * box_face_distance(fine.shape, h)).astype(np.float32)
    out = np.empty(fine.shape, dtype=np.float32)
    for side in (False, True):
        # cells of this side measure to the nearest box of the other side
        d_c, feat = edt_with_features(fine if side else ~fine, h)
        cells = fine if side else ~fine
        hmax = float(np.max(h))
        approx = np.maximum(d_c - 0.5 * hmax, half)
        band = cells & (d_c <= 3.4 * hmax)  # d_c <= distance + half a cell diagonal
        ring = cells & (d_c <= 4.9 * hmax)
        sel = np.nonzero(band)
        best, _ = nearest_boxes(~cells, feat, band, sel, cost_tables(fine.shape, h), ring)
        approx[sel] = np.sqrt(best)
        sgn = -1.0 if side else 1.0
        out[cells] = sgn * approx[cells]
    return out


def cost_tables(
    shape: Sequence[int],
    h: NDArray[np.float64],
    r_plus: NDArray[np.float64] | None = None,
    r_minus: NDArray[np.float64] | None = None,
) -> list[NDArray[np.float64]]:
    """Per-axis cost of an index offset ``d = cell - box`` (``table[a][d + n_a - 1]``):
    the squared gap ``(max(|d| - 1/2, 0) h_a)^2`` from a cell centre to a cell box, divided
    by the squared margin radius of that side (towards ``+a``: ``r_plus``) for a gauge."""
    out = []
    for a in range(3):
        n = int(shape[a])
        d = np.arange(-(n - 1), n)
        gap = np.maximum(np.abs(d) - 0.5, 0.0) * float(h[a])
        if r_plus is not None and r_minus is not None:
            gap = gap / np.where(d >= 0, r_plus[a], r_minus[a])
        out.append(gap**2)
    return out


def nearest_boxes(
    target: NDArray[np.bool_],
    feat: NDArray[np.intp],
    sel_mask: NDArray[np.bool_],
    sel: IndexArrays,
    tables: Sequence[NDArray[np.float64]],
    ring: NDArray[np.bool_],
    extra_feats: Sequence[NDArray[np.intp]] = (),
    need_box: bool = False,
    sweeps: int = 1,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Minimum cost from the cells ``sel`` to the boxes of the ``target`` cells.

    ``sel`` are index arrays (``sel_mask`` the same cells as a boolean box; ``ring`` a
    boolean box of non-target cells holding ``sel`` and its non-target neighbours); the cost of
    a box is the sum over axes of ``tables[a]`` at the index offset (``cost_tables``:
    squared distance or squared gauge). The distance to a union of boxes is not always
    reached at the box of the nearest *centre* (the EDT feature ``feat``, shape
    ``(3, *box)``): a box seen along its diagonal is up to ``(sqrt(3) - 1) / 2`` cells
    nearer than one seen face on. The candidates are therefore the feature cell (of
    ``feat`` and of ``extra_feats``, other feature maps), then, in one sweep, the best
    boxes found for the 18 face and edge neighbours (vector propagation), repeated
    ``sweeps`` times. Checked against the brute-force minimum over all boxes on random
    box unions (tests): exact for distances after one sweep; the anisotropic gauge, with
    two, within 0.02 mm near the surface. ``feat`` is overwritten (best boxes).

    Returns the minimum cost ``(N,)`` and the best box indices ``(3, N)``.
    """
    shape = np.asarray(target.shape)
    top = shape - 1

    def cost(cell: Sequence[NDArray[np.intp]], box: Sequence[NDArray[np.intp]]
             ) -> NDArray[np.float64]:
        return (tables[0][cell[0] - box[0] + top[0]] + tables[1][cell[1] - box[1] + top[1]]
                + tables[2][cell[2] - box[2] + top[2]])

    def cost_sel(box: Sequence[NDArray[np.intp]]) -> NDArray[np.float64]:
        # cost(sel, box) with the offsets of sel precomputed
        return (tables[0][sel_top[0] - box[0]] + tables[1][sel_top[1] - box[1]]
                + tables[2][sel_top[2] - box[2]])

    # candidates of the cells in sel and of their non-target neighbours (``ring``: a
    # superset of those, whose boxes are propagated; target cells are their own box)
    rsel = np.nonzero(ring)
    best = np.full(rsel[0].size, np.inf)
    box = [np.zeros(rsel[0].size, dtype=np.intp) for _ in range(3)]
    for f_map in (feat, *extra_feats):  # feature cells are target cells
        idx = [f_map[a][rsel] for a in range(3)]
        c = cost(rsel, idx)
        better = c < best
        best = np.where(better, c, best)
        for a in range(3):
            box[a] = np.where(better, idx[a], box[a])
    for a in range(3):
        feat[a][rsel] = box[a]
    keep = sel_mask[rsel]
    best_s = best[keep]
    box_s = [b[keep] for b in box]
    flat_feat = [np.ravel(feat[a]) for a in range(3)]
    sel_top = [sel[a] + top[a] for a in range(3)]
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    flat = sel[0] * strides[0] + sel[1] * strides[1] + sel[2] * strides[2]
    edge = np.nonzero((sel[0] == 0) | (sel[0] == top[0]) | (sel[1] == 0) | (sel[1] == top[1])
                      | (sel[2] == 0) | (sel[2] == top[2]))[0]
    for sweep in range(sweeps):
        if sweep:  # the boxes found so far become the neighbours' candidates
            for a in range(3):
                flat_feat[a][flat] = box_s[a]
        for off in _PROPAGATE:
            nb = flat + int(off @ strides)
            if edge.size:  # cells on the box border: clip instead of wrapping around
                nb[edge] = sum(np.clip(sel[a][edge] + off[a], 0, top[a]) * strides[a]
                               for a in range(3))
            idx = [flat_feat[a][nb] for a in range(3)]
            c = cost_sel(idx)  # feat holds target boxes only
            better = c < best_s
            np.minimum(best_s, c, out=best_s)
            if need_box or sweeps > 1:
                for a in range(3):
                    np.copyto(box_s[a], idx[a], where=better)
    return best_s, np.stack(box_s)


def shape_margin(
    phi: NDArray[np.float32],
    origin_mm: NDArray[np.float64],
    h: NDArray[np.float64],
    distance: Callable[[Coords], NDArray[np.float64]],
    done_mm: float,
    iso_mm: float,
) -> NDArray[np.float32]:
    """Field of an exact shape (``distance``: unsigned distance to it from CT-local
    points) already grown by ``done_mm`` (field ``phi`` on a box whose
    cell ``[0, 0, 0]`` is at ``origin_mm``) grown by ``iso_mm`` more, exact within
    ``2.5 max(h)`` of the new surface.

    Points outside the current structure are at distance ``d(x, shape) - done`` from it
    (a Minkowski sum with a ball), so the new field is ``d(x, shape) - (done + iso)``,
    measured to the shape itself in a shell selected by the lattice distance to the
    current structure; inside the current structure it is ``phi - iso``.
    """
    total = done_mm + iso_mm
    inside = phi < 0
    d_c, _ = edt_with_features(~inside, h)
    band = 2.5 * float(h.max())
    slack = 0.5 * float(np.sqrt((h**2).sum())) + 0.5 * float(h.max())
    out = np.where(inside, phi.astype(np.float64) - iso_mm, d_c - iso_mm)
    shell = ~inside & (d_c >= iso_mm - band - slack) & (d_c <= iso_mm + band + slack)
    sel = np.nonzero(shell)
    local = [origin_mm[a] + sel[a] * h[a] for a in range(3)]
    out[sel] = distance(local) - total
    return out.astype(np.float32)


def cells_margin(
    cells: NDArray[np.bool_],
    h: NDArray[np.float64],
    inner_phi: NDArray[np.float32] | NDArray[np.float64],
    r_plus: NDArray[np.float64],
    r_minus: NDArray[np.float64],
    isotropic: bool,
) -> NDArray[np.float32]:
    """Field of the union of the ``cells``' boxes grown by a margin, exact near its surface.

    The Minkowski sum of a union of boxes with a ball of radius ``r`` (``isotropic``)
    or with the octant ellipsoid (radii ``r_plus`` towards ``+a``, ``r_minus`` towards
    ``-a``) is the set of points within distance (gauge) 1 of one of the boxes. Within
    ``3 max(h)`` of the new surface every cell measures its distance (gauge) to the boxes
    themselves (``nearest_boxes``: the EDT feature cells of each octant metric, their
    neighbours and one propagation sweep), so the grown box corners are the exact
    spherical (ellipsoidal) caps: no under-growth at convex corners and edges, as the
    closest-point redistancing of a voxel-mask field had there (its surface points sit on
    the faces beside a corner, not on it). Isotropic: exact at the cells (brute force on
    random box unions); anisotropic: within 0.02 mm within a cell of the surface, the
    right sign in the band. Elsewhere the value only keeps the right sign.
    Cells of the structure take ``min(inner_phi, 0) - r_min``.

    Returns the new field (mm, negative inside; isotropic: the signed distance minus
    ``r``; anisotropic: ``|v| (N - 1) / N``, mm along the ray from the nearest box point,
    as ``redistance_gauge``).
    """
    r_min = float(min(r_plus.min(), r_minus.min()))
    r_max = float(max(r_plus.max(), r_minus.max()))
    hmax = float(h.max())
    band = 2.5 * hmax  # what contours, volumes, booleans and a later margin read
    half_diag = 0.5 * float(np.sqrt((h**2).sum()))
    d_c, feat = edt_with_features(~cells, h)
    outside = ~cells
    # the surface lies between distance r_min and r_max of the boxes; a box is at most
    # half a cell diagonal nearer than its centre
    shell = outside & (d_c >= r_min - band) & (d_c <= r_max + band + half_diag)
    ring = outside & (d_c >= r_min - band - 1.5 * hmax) & (d_c <= r_max + band + half_diag
                                                           + 1.5 * hmax)
    sel = np.nonzero(shell)
    out = np.where(d_c < r_min, d_c - r_min, d_c - half_diag - r_max)
    out = np.where(cells, np.minimum(inner_phi, 0.0) - r_min, out)
    if isotropic:
        best, _ = nearest_boxes(cells, feat, shell, sel, cost_tables(cells.shape, h), ring)
        out[sel] = np.sqrt(best) - r_min
        return out.astype(np.float32)
    eps = 1e-3
    rp, rm = np.maximum(r_plus, eps), np.maximum(r_minus, eps)
    extra = []
    choices = [sorted({float(rp[a]), float(rm[a])}) for a in range(3)]
    for r0 in choices[0]:
        for r1 in choices[1]:
            for r2 in choices[2]:
                r = np.array([r0, r1, r2])
                extra.append(ndimage.distance_transform_edt(
                    ~cells, sampling=h / r, return_distances=False, return_indices=True))
    tables = cost_tables(cells.shape, h, rp, rm)
    # the gauge's nearest box needs a second propagation sweep (random box unions, radii
    # 1-6 mm: within a cell of the surface 0.2 mm off after one sweep, 0.016 after two)
    best, box = nearest_boxes(cells, feat, shell, sel, tables, ring, extra_feats=extra,
                               need_box=True, sweeps=2)
    del extra
    top = np.asarray(cells.shape) - 1
    v2 = sum(t[sel[a] - box[a] + top[a]] for a, t in enumerate(cost_tables(cells.shape, h)))
    v = np.sqrt(v2)
    n = np.sqrt(best)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where(n > 1e-12, v * (n - 1.0) / n, -r_min)
    out[sel] = val
    return out.astype(np.float32)

