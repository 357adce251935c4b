"""Exact shapes behind ``ShapePatch`` (private): structures whose true surface is known
in closed form, so margins can measure to it (see ``_distance.ExactShape``).

* :class:`BoxUnion`: voxel boxes drawn on another grid (a PET delineation), moved
  rigidly into the CT frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtplan.structures._distance import ExactShape

__all__ = ["BoxUnion"]


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
