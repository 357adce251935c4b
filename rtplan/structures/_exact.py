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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BoxUnion",
    "ExactShape",
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

    def distance(self, local: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        """Unsigned distance (mm) from CT-local points to the union of slabs (0 inside):
        ``min_j sqrt(d_j(y, x)^2 + dz_j^2)``, ``d_j`` the in-plane distance to slab ``j``'s
        region (0 inside it), ``dz_j`` the distance to its ``z`` range. In-plane
        distances are computed once per distinct ``(y, x)``."""
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
        # slabs in order of z distance, so the pruning below drops most of them
        for j in np.argsort(dz_all.min(axis=1), kind="stable"):
            dz = dz_all[j]
            cand = np.nonzero(dz < best)[0]
            if cand.size == 0:
                continue
            ukey, inv = np.unique(key[cand], return_inverse=True)
            py, px = uy[ukey // ux.size], ux[ukey % ux.size]
            seg = self.segments[j]
            d_plane = segment_distance(py, px, seg)
            inside = even_odd_inside(py, px, seg)
            d_plane = np.where(inside, 0.0, d_plane)[inv.ravel()]
            best[cand] = np.minimum(best[cand], np.sqrt(d_plane**2 + dz[cand] ** 2))
        return best

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
