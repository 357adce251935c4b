"""Analytic structure sources: exact signed distance fields of simple shapes.

A lesion known from the PET report by centre and diameter becomes a sphere whose
signed distance ``|x - c| - r`` is written directly on a cropped working lattice, with no
voxelisation error at all; margins, booleans and contouring then work on it like on
any other :class:`~rtplan.structures.SignedDistanceField`. The field remembers the
sphere (a ``ShapePatch``): an isotropic margin or erosion is the sphere of radius
``r +- m`` written anew, and its contours are placed on the exact circle.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rtplan.errors import InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.structures._exact import Sphere
from rtplan.structures._lattice import PAD_CELLS, box_indices, choose_lattice, to_local
from rtplan.structures.field import SignedDistanceField

__all__ = ["sdf_from_sphere"]


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
    return SignedDistanceField.from_shape(grid, h, base, start, np.sqrt(d2) - r,
                                          Sphere(local_c, r))
