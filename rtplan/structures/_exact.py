"""Exact shapes behind ``ShapePatch`` (private): structures whose true surface is known
in closed form, so margins can measure to it (see ``_distance.ExactShape``).

* :class:`Sphere`: a lesion from a PET report (centre and diameter); margins and
  erosions only change its radius.
* :class:`BoxUnion`: voxel boxes drawn on another grid (a PET delineation), moved
  rigidly into the CT frame.
* :class:`SlabStack`: planar contours, each standing for a slab along the slice normal
  (the rasterisation convention of ``rtplan.structures.raster``), i.e. a union of prisms.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

__all__ = [
    "BoxUnion",
    "ExactShape",
    "SegmentIndex",
    "SlabStack",
    "Sphere",
    "even_odd_area",
    "even_odd_inside",
    "ring_segments",
    "segment_distance",
]


class ExactShape(Protocol):
    """A structure known exactly (the zero level of its field is the true surface)."""

    def distance(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        """Unsigned distance (mm, 0 inside) from CT-local points (3 arrays, mm)."""
        ...

    def volume_mm3(self) -> float | None:
        """The shape's volume (mm^3) when known exactly, else None."""
        ...

    def union(self, other: ExactShape) -> ExactShape | None:
        """The union as one shape of this kind, or None when they cannot be combined."""
        ...

    def grown(self, margin_mm: float) -> ExactShape | None:
        """The shape grown (``margin_mm > 0``) or shrunk (< 0) by an isotropic margin as a
        shape of this kind in closed form (a sphere's radius changes), or None."""
        ...

    def signed(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64] | None:
        """Signed distance (mm, negative inside) at CT-local points when it has a closed
        form (a sphere), else None (then only :meth:`distance` from outside is exact)."""
        ...


@dataclass(frozen=True, eq=False)
class BoxUnion:
    """The union of boxes ``[lo_i, hi_i]`` (mm, ``(N, 3)``, in the local frame of the grid
    they were drawn on, e.g. the PET voxels of a delineation; only the exposed boxes are
    needed for distances from outside). A CT-local point ``x`` (mm along the CT grid's
    axes) is at ``a_mat @ x + b_vec`` in that frame (a rigid map)."""

    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    a_mat: NDArray[np.float64]
    b_vec: NDArray[np.float64]

    def distance(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        """Unsigned distance (mm) from CT-local points (3 arrays) to the union of boxes
        (0 inside), the minimum over the boxes (brute force, in chunks)."""
        pts = np.stack([np.asarray(c, dtype=float).ravel() for c in local])
        ml = self.a_mat @ pts + self.b_vec[:, None]
        out = np.empty(ml.shape[1])
        step = max(1, 2_000_000 // max(1, self.lo.shape[0]))
        for i in range(0, ml.shape[1], step):
            p = ml[:, i : i + step].T[:, None, :]
            gap = np.maximum(np.maximum(self.lo[None] - p, p - self.hi[None]), 0.0)
            out[i : i + step] = np.sqrt((gap**2).sum(axis=2).min(axis=1))
        return out

    def volume_mm3(self) -> float | None:
        return None  # only the exposed boxes are kept

    def union(self, other: ExactShape) -> ExactShape | None:
        if not (isinstance(other, BoxUnion) and np.array_equal(self.a_mat, other.a_mat)
                and np.array_equal(self.b_vec, other.b_vec)):
            return None
        return BoxUnion(np.concatenate([self.lo, other.lo]), np.concatenate([self.hi, other.hi]),
                        self.a_mat, self.b_vec)

    def grown(self, margin_mm: float) -> ExactShape | None:
        return None

    def signed(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64] | None:
        return None


#: points x segments handled at once by the brute-force distances
_CHUNK = 2_000_000


def segment_distance(
    y: NDArray[np.float64], x: NDArray[np.float64], seg: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distance (mm) from 2D points to the nearest of segments ``seg`` ``(S, 4)``
    ``(y0, x0, y1, x1)`` (brute force, in chunks)."""
    out = np.full(y.shape, np.inf)
    if seg.shape[0] == 0 or y.size == 0:
        return out
    ay, ax, by, bx = (seg[:, i][None, :] for i in range(4))
    dy, dx = by - ay, bx - ax
    len2 = np.maximum(dy * dy + dx * dx, 1e-300)
    step = max(1, _CHUNK // seg.shape[0])
    for i in range(0, y.size, step):
        py, px = y[i : i + step, None], x[i : i + step, None]
        t = np.clip(((py - ay) * dy + (px - ax) * dx) / len2, 0.0, 1.0)
        d2 = (py - ay - t * dy) ** 2 + (px - ax - t * dx) ** 2
        out[i : i + step] = np.sqrt(d2.min(axis=1))
    return out


def even_odd_inside(
    y: NDArray[np.float64], x: NDArray[np.float64], seg: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Even-odd inside test of 2D points for the rings whose edges are ``seg`` (the
    crossing rule of ``raster.fill_even_odd``: an edge counts when
    ``min(y0, y1) <= y < max(y0, y1)`` and it crosses at or right of the point)."""
    out = np.zeros(y.shape, dtype=bool)
    keep = seg[:, 0] != seg[:, 2]
    seg = seg[keep]
    if seg.shape[0] == 0 or y.size == 0:
        return out
    ay, ax, by, bx = (seg[:, i][None, :] for i in range(4))
    lo, hi = np.minimum(ay, by), np.maximum(ay, by)
    step = max(1, _CHUNK // seg.shape[0])
    for i in range(0, y.size, step):
        py, px = y[i : i + step, None], x[i : i + step, None]
        span = (lo <= py) & (py < hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            cx = ax + (py - ay) * (bx - ax) / (by - ay)
        out[i : i + step] = (np.count_nonzero(span & (cx >= px), axis=1) % 2).astype(bool)
    return out


#: candidate samples per query point of :class:`SegmentIndex` (then more, then brute force)
_K_SAMPLES = (12, 32, 128)


class SegmentIndex:
    """Exact nearest-segment distances and even-odd inside tests for the rings whose
    edges are ``seg`` ``(S, 4)`` ``(y0, x0, y1, x1)``, with a spatial index: the same
    results as :func:`segment_distance` and :func:`even_odd_inside` (same arithmetic
    on a subset of the segments that provably holds the answer), far fewer pairs.

    Distances: every segment is sampled at spacing at most ``step`` (its ends
    included; a sample shared by several segments belongs to all), so each point of a
    segment is within ``step / 2`` of one of its samples. The point-to-segment
    distances are computed for the segments of the ``k`` nearest samples (a k-d tree),
    ``d_c`` their minimum; every other segment has all its samples at least ``d_k``
    (the ``k``-th sample distance) away, hence is at least ``d_k - step / 2`` away, so
    ``d_c`` is exact when ``d_k > d_c + step / 2``. Points where that is not met retry
    with more samples, then fall back to brute force.

    Inside tests: the edges are bucketed into horizontal bands by their ``y`` span; a
    point is tested (same crossing rule) only against the edges of its band.
    """

    def __init__(self, seg: NDArray[np.float64]) -> None:
        self.seg = np.asarray(seg, dtype=np.float64).reshape(-1, 4)
        s = self.seg
        n = s.shape[0]
        self._dy = s[:, 2] - s[:, 0]
        self._dx = s[:, 3] - s[:, 1]
        self._len2 = np.maximum(self._dy * self._dy + self._dx * self._dx, 1e-300)
        self._tree: cKDTree | None = None
        if n:
            length = np.sqrt(self._dy**2 + self._dx**2)
            pos = length[length > 0]
            step = float(np.clip(np.median(pos), 0.25, 4.0)) if pos.size else 1.0
            per = np.maximum(np.ceil(length / step), 1).astype(np.int64)  # intervals
            # samples at t = i / per, i <= per: every point of a segment is within
            # ``self.step / 2`` of one of its own samples
            self.step = float(np.max(length / per))
            owner = np.repeat(np.arange(n), per + 1)
            first = np.concatenate([[0], np.cumsum(per + 1)[:-1]])
            t = (np.arange(owner.size) - np.repeat(first, per + 1)) / per[owner]
            pts = np.column_stack([s[owner, 0] + t * self._dy[owner],
                                   s[owner, 1] + t * self._dx[owner]])
            # one sample per distinct point (coincident samples of different edges), with
            # the segments it lies on as columns (padded by repeating the first)
            upts, inv = np.unique(pts, axis=0, return_inverse=True)
            inv = inv.ravel()
            order = np.argsort(inv, kind="stable")
            mult = np.bincount(inv, minlength=upts.shape[0])
            start = np.concatenate([[0], np.cumsum(mult)[:-1]])
            width = int(mult.max())
            col = np.minimum(np.arange(width)[None, :], mult[:, None] - 1)
            self._owner = owner[order][start[:, None] + col]  # (samples, width)
            self._tree = cKDTree(upts)
        # even-odd bands over the non-horizontal edges
        keep = np.nonzero(s[:, 0] != s[:, 2])[0]
        self._eo = keep
        lo = np.minimum(s[keep, 0], s[keep, 2])
        hi = np.maximum(s[keep, 0], s[keep, 2])
        if keep.size:
            span = float(hi.max() - lo.min())
            typical = float(np.median(hi - lo))
            n_band = int(np.clip(span / max(2.0 * typical, 1e-9), 1, 4096))
            self._y0 = float(lo.min())
            self._bh = max(span / n_band, 1e-12)
            self._n_band = n_band
            b_lo = self._band(lo)
            b_hi = self._band(hi)
            cnt = b_hi - b_lo + 1
            edge = np.repeat(np.arange(keep.size), cnt)
            first = np.concatenate([[0], np.cumsum(cnt)[:-1]])
            band = np.repeat(b_lo, cnt) + np.arange(edge.size) - np.repeat(first, cnt)
            order = np.argsort(band, kind="stable")
            self._band_edges = keep[edge[order]]
            self._band_start = np.searchsorted(band[order], np.arange(n_band + 1))

    def _band(self, y: NDArray[np.float64]) -> NDArray[np.int64]:
        b = np.floor((y - self._y0) / self._bh)
        return np.clip(b, 0, self._n_band - 1).astype(np.int64)

    def _pair_distance(self, y: NDArray[np.float64], x: NDArray[np.float64],
                       cand: NDArray[np.int64]) -> NDArray[np.float64]:
        """Minimum distance from each point to its candidate segments ``(N, K)`` (the
        arithmetic of :func:`segment_distance`)."""
        s = self.seg
        ay, ax = s[cand, 0], s[cand, 1]
        dy, dx, len2 = self._dy[cand], self._dx[cand], self._len2[cand]
        py, px = y[:, None], x[:, None]
        t = np.clip(((py - ay) * dy + (px - ax) * dx) / len2, 0.0, 1.0)
        d2 = (py - ay - t * dy) ** 2 + (px - ax - t * dx) ** 2
        return np.asarray(np.sqrt(d2.min(axis=1)), dtype=np.float64)

    def distance(self, y: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Distance (mm) from 2D points to the nearest segment (inf without segments)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        x = np.asarray(x, dtype=np.float64).ravel()
        out = np.full(y.shape, np.inf)
        if self._tree is None or y.size == 0:
            return out
        todo = np.arange(y.size)
        n_samples = self._owner.shape[0]
        for k in _K_SAMPLES:
            if todo.size == 0:
                return out
            k = min(k, n_samples)
            d, idx = self._tree.query(np.column_stack([y[todo], x[todo]]), k=k)
            d = d.reshape(todo.size, k)
            idx = idx.reshape(todo.size, k)
            d_c = self._pair_distance(y[todo], x[todo],
                                      self._owner[idx].reshape(todo.size, -1))
            # exact when no other segment can be nearer (slack for rounding), or when
            # the k samples are all the samples
            ok = (d[:, -1] > d_c + 0.5 * self.step + 1e-6) | (k == n_samples)
            out[todo[ok]] = d_c[ok]
            todo = todo[~ok]
        if todo.size:
            out[todo] = segment_distance(y[todo], x[todo], self.seg)
        return out

    def near(self, y: NDArray[np.float64], x: NDArray[np.float64], radius_mm: float
             ) -> tuple[list[tuple[NDArray[np.intp], NDArray[np.int64]]], NDArray[np.bool_]]:
        """Candidate segments holding every segment within ``radius_mm`` of each point:
        groups ``(rows, candidates (len(rows), C))`` (with repeats), and whether that
        holds for each point (else the caller must fall back)."""
        n_samples = self._owner.shape[0] if self._tree is not None else 0
        ok = np.ones(y.size, dtype=bool)
        if n_samples == 0 or y.size == 0:
            return [], ok
        assert self._tree is not None
        # a segment within radius has a sample within radius + step / 2; first enough
        # samples for a contour crossing the disk once, then four times as many
        bound = radius_mm + 0.5 * self.step + 1e-6
        pts = np.column_stack([y, x])
        groups = []
        rows = np.arange(y.size)
        k = int(min(n_samples, max(8, np.ceil(2 * bound / self.step) + 4)))
        for _ in range(2):
            d, idx = self._tree.query(pts[rows], k=k)
            d, idx = d.reshape(rows.size, k), idx.reshape(rows.size, k)
            good = (d[:, -1] > bound) | (k == n_samples)
            groups.append((rows[good], self._owner[idx[good]].reshape(int(good.sum()), -1)))
            rows = rows[~good]
            if rows.size == 0:
                break
            k = int(min(n_samples, 4 * k))
        ok[rows] = False
        return groups, ok

    def inside(self, y: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Even-odd inside test (the rule of :func:`even_odd_inside`)."""
        y = np.asarray(y, dtype=np.float64).ravel()
        x = np.asarray(x, dtype=np.float64).ravel()
        out = np.zeros(y.shape, dtype=bool)
        if self._eo.size == 0 or y.size == 0:
            return out
        band = self._band(y)
        cnt = self._band_start[band + 1] - self._band_start[band]
        s = self.seg
        csum = np.cumsum(cnt)
        # chunks of points holding at most _CHUNK pairs
        bounds = np.searchsorted(csum, np.arange(0, int(csum[-1]) + _CHUNK, _CHUNK),
                                 side="right")
        bounds = np.unique(np.concatenate([[0], np.clip(bounds, 0, y.size), [y.size]]))
        for i0, i1 in itertools.pairwise(bounds):
            c = cnt[i0:i1]
            if c.sum() == 0:
                continue
            pt = np.repeat(np.arange(i0, i1), c)
            first = np.concatenate([[0], np.cumsum(c)[:-1]])
            e = self._band_edges[np.repeat(self._band_start[band[i0:i1]], c)
                                 + np.arange(pt.size) - np.repeat(first, c)]
            ay, ax, by, bx = s[e, 0], s[e, 1], s[e, 2], s[e, 3]
            py, px = y[pt], x[pt]
            lo, hi = np.minimum(ay, by), np.maximum(ay, by)
            span = (lo <= py) & (py < hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                cx = ax + (py - ay) * (bx - ax) / (by - ay)
            hits = np.bincount(pt - i0, weights=(span & (cx >= px)).astype(np.float64),
                               minlength=i1 - i0)
            out[i0:i1] = (hits.astype(np.int64) % 2).astype(bool)
        return out


def ring_segments(rings: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Edges ``(S, 4)`` ``(y0, x0, y1, x1)`` of closed rings given as ``(M, 2)`` (y, x)."""
    if not rings:
        return np.zeros((0, 4))
    return np.concatenate([np.hstack([r, np.roll(r, -1, axis=0)]) for r in rings])


def even_odd_area(rings: Sequence[NDArray[np.float64]]) -> float:
    """Area (mm^2) of the even-odd region of non-crossing rings: each ring's area counts
    with the sign of its nesting depth (a hole subtracts, an island adds back)."""
    total = 0.0
    for i, r in enumerate(rings):
        a = 0.5 * abs(float(np.sum(r[:, 1] * np.roll(r[:, 0], -1) - np.roll(r[:, 1], -1)
                                   * r[:, 0])))
        others = [q for k, q in enumerate(rings) if k != i]
        depth = int(even_odd_inside(r[:1, 0], r[:1, 1], ring_segments(others))[0]) if others \
            else 0
        # depth parity from the even-odd test of the other rings at one vertex
        total += -a if depth else a
    return total


def _disk_entry(oy: NDArray[np.float64], ox: NDArray[np.float64], uy: NDArray[np.float64],
                ux: NDArray[np.float64], r: float) -> NDArray[np.float64]:
    """Smallest ``t >= 0`` with ``|o + t u| <= r`` (inf when none), ``o`` the start
    relative to the disk's centre."""
    a = uy * uy + ux * ux
    b = oy * uy + ox * ux
    c = oy * oy + ox * ox - r * r
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-b - root) / a
        t2 = (-b + root) / a
    hit = (disc >= 0) & (t2 >= 0) & (a > 0)
    return np.asarray(np.where(hit, np.maximum(t1, 0.0), np.inf), dtype=np.float64)


def _capsule_entry(start: NDArray[np.float64], u: NDArray[np.float64],
                   seg: NDArray[np.float64], cand: NDArray[np.int64],
                   r: float) -> NDArray[np.float64]:
    """Smallest ``t >= 0`` where ``start + t u`` (``(N, 2)``) enters one of the capsules
    of radius ``r`` around the candidate segments ``cand`` ``(N, C)`` of ``seg`` (two
    disks and a rectangle each; inf when none)."""
    ay, ax, by, bx = (seg[cand, i] for i in range(4))
    py, px = start[:, 0:1], start[:, 1:2]
    uy, ux = u[:, 0:1], u[:, 1:2]
    t = np.minimum(_disk_entry(py - ay, px - ax, uy, ux, r),
                   _disk_entry(py - by, px - bx, uy, ux, r))
    ey, ex = by - ay, bx - ax
    seg_len = np.sqrt(ey * ey + ex * ex)
    with np.errstate(divide="ignore", invalid="ignore"):
        ey, ex = ey / seg_len, ex / seg_len
        # along the edge s in [0, len], across it w in [-r, r] (Liang-Barsky)
        s0, s1 = (py - ay) * ey + (px - ax) * ex, uy * ey + ux * ex
        w0, w1 = (py - ay) * ex - (px - ax) * ey, uy * ex - ux * ey
        t_in = np.zeros(t.shape)
        t_out = np.full(t.shape, np.inf)
        for a0, a1, lo, hi in ((s0, s1, 0.0, seg_len), (w0, w1, -r, r)):
            flat = a1 == 0
            ta = np.where(flat, -np.inf, (lo - a0) / a1)
            tb = np.where(flat, np.inf, (hi - a0) / a1)
            t_lo, t_hi = np.minimum(ta, tb), np.maximum(ta, tb)
            miss = flat & ((a0 < lo) | (a0 > hi))
            t_lo = np.where(miss, np.inf, t_lo)
            t_in = np.maximum(t_in, t_lo)
            t_out = np.minimum(t_out, t_hi)
    rect = np.where((t_in <= t_out) & (seg_len > 0), t_in, np.inf)
    return np.asarray(np.minimum(t, rect).min(axis=1), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class SlabStack:
    """A union of prisms: slab ``j`` is the even-odd region of its in-plane rings (CT-local
    ``(y, x)`` mm: row and column axes) times ``[z_lo[j], z_hi[j])`` along the slice normal.

    Built from planar contours, one slab per contour plane (``sources.sdf_from_contours``),
    the slabs do not overlap and ``volume`` is the exact volume; a union of stacks keeps
    the distances exact (minimum over the slabs) but no volume.
    """

    z_lo: NDArray[np.float64]
    z_hi: NDArray[np.float64]
    segments: tuple[NDArray[np.float64], ...]
    volume: float | None = None
    _index: dict[int, SegmentIndex] = field(default_factory=dict, init=False, repr=False,
                                           compare=False)

    def index(self, j: int) -> SegmentIndex:
        """The spatial index of slab ``j``'s edges (built on first use, then kept)."""
        idx = self._index.get(j)
        if idx is None:
            idx = self._index[j] = SegmentIndex(self.segments[j])
        return idx

    def distance(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        """Unsigned distance (mm) from CT-local points to the union of slabs (0 inside):
        ``min_j sqrt(d_j(y, x)^2 + dz_j^2)``, ``d_j`` the in-plane distance to slab ``j``'s
        region (0 inside it), ``dz_j`` the distance to its ``z`` range. In-plane
        distances are computed once per distinct ``(y, x)``, with each slab's
        :class:`SegmentIndex` (exact: the brute-force result)."""
        z = np.asarray(local[0], dtype=float).ravel()
        y = np.broadcast_to(np.asarray(local[1], dtype=float), np.shape(local[0])).ravel()
        x = np.broadcast_to(np.asarray(local[2], dtype=float), np.shape(local[0])).ravel()
        best = np.full(z.shape, np.inf)
        dz_all = np.maximum(np.maximum(self.z_lo[:, None] - z[None], z[None] - self.z_hi[:, None]),
                            0.0)
        # one integer key per distinct (y, x) (1D uniques: far faster than rows)
        uy, cy = np.unique(y, return_inverse=True)
        ux, cx = np.unique(x, return_inverse=True)
        key = cy.ravel().astype(np.int64) * ux.size + cx.ravel()
        if z.size == 0 or self.z_lo.size == 0:
            return best
        # first each point's nearest slab along the normal (a tight bound at once, also
        # for points on many planes), then the others in order of z distance while they
        # can still be nearer: the pruning drops most of them
        nearest = np.argmin(dz_all, axis=0)
        for j in np.unique(nearest):
            self._visit(int(j), np.nonzero(nearest == j)[0], dz_all[j], key, uy, ux, best)
        dz_min = dz_all.min(axis=1)
        worst = float(best.max())
        for j in np.argsort(dz_min, kind="stable"):
            if dz_min[j] >= worst:
                break  # this slab and all later ones are too far for every point
            cand = np.nonzero((dz_all[j] < best) & (nearest != j))[0]
            if cand.size:
                self._visit(int(j), cand, dz_all[j], key, uy, ux, best)
        return best

    def _visit(self, j: int, cand: NDArray[np.intp], dz: NDArray[np.float64],
               key: NDArray[np.int64], uy: NDArray[np.float64], ux: NDArray[np.float64],
               best: NDArray[np.float64]) -> None:
        """``best[cand]`` lowered to the distance to slab ``j`` (in place)."""
        ukey, inv = np.unique(key[cand], return_inverse=True)
        py, px = uy[ukey // ux.size], ux[ukey % ux.size]
        index = self.index(j)
        d_plane = np.zeros(py.shape)
        out = ~index.inside(py, px)  # 0 inside the region: distances only outside it
        d_plane[out] = index.distance(py[out], px[out])
        d_plane = d_plane[inv.ravel()]
        best[cand] = np.minimum(best[cand], np.sqrt(d_plane**2 + dz[cand] ** 2))

    def entry(self, z: float, start: NDArray[np.float64], end: NDArray[np.float64],
              margin_mm: float) -> NDArray[np.float64]:
        """Where the planar segments ``start -> end`` (``(N, 2)`` ``(y, x)`` mm in the
        plane at ``z``) first enter the stack grown by ``margin_mm``: the fraction
        ``t`` in ``[0, 1]`` along each, NaN when it does not enter or cannot be told
        (then the caller solves numerically), also when ``start`` is not outside the
        grown stack (inside a slab's region or a capsule, both tested here).

        In the plane the grown stack is the union over slabs ``j`` with ``dz_j <=
        margin`` of slab ``j``'s region grown by ``r_j = sqrt(margin^2 - dz_j^2)``,
        i.e. the region and the capsules (radius ``r_j``) of its edges. From outside,
        the first entry is into a capsule (the region's boundary lies in them), so
        ``t`` is the smallest entry into a capsule (two disks and a rectangle, closed
        form) among the edges within ``r_j + |end - start|`` of ``start``."""
        n = start.shape[0]
        best = np.full(n, np.inf)
        unknown = np.zeros(n, dtype=bool)
        u = end - start
        length = np.sqrt((u**2).sum(axis=1))
        reach = float(length.max()) if n else 0.0
        dz = np.maximum(np.maximum(self.z_lo - z, z - self.z_hi), 0.0)
        for j in np.nonzero(dz < margin_mm)[0]:
            r = float(np.sqrt(margin_mm**2 - dz[j] ** 2))
            index = self.index(int(j))
            groups, ok = index.near(start[:, 0], start[:, 1], r + reach)
            # a start inside the region is inside the grown stack: not for this method
            unknown |= ~ok | index.inside(start[:, 0], start[:, 1])
            for rows, cand in groups:
                if rows.size and cand.shape[1]:
                    best[rows] = np.minimum(best[rows], _capsule_entry(
                        start[rows], u[rows], index.seg, cand, r))
        # t = 0: the start lies in a capsule (inside or on the grown surface): unknown
        out = np.where((best > 0) & (best <= 1.0 + 1e-9), np.minimum(best, 1.0), np.nan)
        return np.where(unknown, np.nan, out)

    def volume_mm3(self) -> float | None:
        return self.volume

    def union(self, other: ExactShape) -> ExactShape | None:
        if not isinstance(other, SlabStack):
            return None
        return SlabStack(np.concatenate([self.z_lo, other.z_lo]),
                         np.concatenate([self.z_hi, other.z_hi]),
                         self.segments + other.segments, None)

    def grown(self, margin_mm: float) -> ExactShape | None:
        return None

    def signed(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64] | None:
        return None


@dataclass(frozen=True, eq=False)
class Sphere:
    """The ball of ``radius_mm`` around ``centre`` (CT-local mm); empty when the radius
    is not positive (a sphere shrunk away)."""

    centre: NDArray[np.float64]
    radius_mm: float

    def signed(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        """``|x - c| - r`` (per-axis arrays, broadcast)."""
        d2 = sum((np.asarray(local[a], dtype=float) - self.centre[a]) ** 2 for a in range(3))
        return np.asarray(np.sqrt(d2) - self.radius_mm, dtype=np.float64)

    def distance(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        return np.maximum(self.signed(local), 0.0)

    def volume_mm3(self) -> float | None:
        # None: volume_cc integrates the sampled field as for any structure (within
        # 0.03 % of 4/3 pi r^3, as before), so that a sphere and the same sphere after
        # a boolean or a crop measure alike
        return None

    def union(self, other: ExactShape) -> ExactShape | None:
        return None

    def grown(self, margin_mm: float) -> ExactShape | None:
        return Sphere(self.centre, self.radius_mm + margin_mm)
