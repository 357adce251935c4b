"""Structures as signed distance fields on cropped working lattices.

Representation
--------------
A :class:`SignedDistanceField` is a structure on a CT :class:`~rtplan.imaging.grid.Grid`,
stored as one or more *patches* (``rtplan.structures._patches``). A patch samples the
signed distance to the structure's surface (mm, negative inside) on a small regular box
of a *working lattice* aligned with the grid's axes, in the grid's local frame (mm along
the slice normal, the row and the column direction, measured from the centre of voxel
``[0, 0, 0]``). The lattice subdivides each CT voxel into an integer number of cells per
axis (``rtplan.structures._lattice``; default about 0.5 mm for small lesions, growing to
about 1 mm for structures over 32 mm), so its cells tile every CT voxel exactly. The
structure is the union of its patches; patch boxes never overlap (overlapping ones are
merged), so disjoint lesions far apart cost nothing in between. Each patch box holds the
structure with a margin of a few cells.

Why distance fields
-------------------
* An isotropic margin is exact: the surface of ``A + B(m)`` is the level ``m`` of the
  distance to ``A``, so expanding is ``phi - m`` once ``phi`` is a true distance.
* The zero level set is located to a fraction of a cell (linear interpolation), so
  contours and volumes do not suffer the half-voxel bias of voxel-centre methods, and a
  margin smaller than the slice spacing moves the surface by exactly that margin.
* Booleans are ``min``/``max`` of fields; sampling the field on each CT plane at that
  plane's own position gives sub-voxel contours (marching squares).

Where each part lives
---------------------
Sources (spheres, CT masks, masks on another grid, RTSTRUCT contours):
``rtplan.structures.constructors`` (``sdf_from_sphere`` also in ``rtplan.structures.shapes``);
exact shapes: ``rtplan.structures._exact``; patch kinds and how each grows:
``rtplan.structures._patches``; the distance algorithms: ``rtplan.structures._distance``;
margins: ``rtplan.structures.margins``; booleans, contouring: their modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.imaging.grid import Grid
from rtplan.structures._patches import Patch, field_patch, merge_overlapping

__all__ = ["SignedDistanceField"]


@dataclass(frozen=True, eq=False)
class SignedDistanceField:
    """A structure as a signed distance field (mm, negative inside) on a CT grid.

    Build one with :func:`~rtplan.structures.sdf_from_sphere`,
    :func:`~rtplan.structures.sdf_from_mask` or
    :func:`~rtplan.structures.constructors.sdf_from_contours`; transform it with
    :func:`~rtplan.structures.expand`, :func:`~rtplan.structures.shrink` and the boolean
    operations; read it out with :func:`~rtplan.structures.contours_from_sdf`,
    :func:`~rtplan.structures.rasterize` and :func:`~rtplan.structures.volume_cc`.
    The field is stored per structure in small cropped boxes of a working lattice that
    subdivides the CT voxels (0.5 to 1 mm by default); see the module notes of
    ``rtplan.structures.field`` for the method.

    Parameters
    ----------
    grid
        The CT grid the structure belongs to (contours are produced on its slices).
    patches
        Internal storage; use the constructors above.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> s = sdf_from_sphere(g, center_mm=(0.3, 0.2, 0.1), radius_mm=5.0)
    >>> s.value_at([[0.3, 0.2, 3.1], [0.3, 0.2, 7.1]]).round(3).tolist()
    [-2.0, 2.0]
    >>> s.is_empty
    False
    """

    grid: Grid
    patches: tuple[Patch, ...] = ()

    @classmethod
    def from_patches(cls, grid: Grid, patches: Sequence[Patch | None]) -> SignedDistanceField:
        """The union of patches (empty ones and None dropped, overlapping ones merged)."""
        kept = [p for p in patches if p is not None and not p.is_empty]
        return cls(grid, merge_overlapping(kept))

    @classmethod
    def from_samples(
        cls,
        grid: Grid,
        spacing_mm: ArrayLike,
        base_mm: ArrayLike,
        start: ArrayLike,
        phi: NDArray[np.floating],
    ) -> SignedDistanceField:
        """A structure given by its samples ``phi`` on lattice ``(spacing_mm, base_mm)``
        box starting at cell ``start`` (e.g. an analytic shape)."""
        return cls.from_patches(grid, [field_patch(spacing_mm, base_mm, start, phi)])

    @property
    def is_empty(self) -> bool:
        """True when the structure has no inside cell."""
        return all(p.is_empty for p in self.patches)

    @property
    def n_cells(self) -> int:
        """Total number of working-lattice cells stored (memory is 4 bytes each)."""
        return int(sum(p.phi.size for p in self.patches))

    def value_at(self, points_mm: ArrayLike) -> NDArray[np.float64]:
        """Signed distance (mm, negative inside) at LPS points ``(..., 3)`` (trilinear).

        Far from the surface (beyond a few cells) the value is only guaranteed to have
        the right sign; outside every patch box it is a positive lower bound.
        """
        pts = np.asarray(points_mm, dtype=float)
        local = (pts.reshape(-1, 3) - self.grid.origin_mm) @ self.grid.direction.T
        out = np.full(local.shape[0], np.inf)
        for p in self.patches:
            out = np.minimum(out, p.sample_points(local))
        return out.reshape(pts.shape[:-1])

    def _check_grid(self, other: SignedDistanceField, what: str) -> None:
        """Raise :class:`GridMismatchError` unless ``other`` is on the same CT grid."""
        if other.grid is not self.grid:
            self.grid.check_same(other.grid, what=what)
