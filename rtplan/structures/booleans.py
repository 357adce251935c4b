"""Boolean operations on structures: union, intersection, difference (with a gap).

On signed distance fields (negative inside) the set operations are pointwise
``min`` (union), ``max`` (intersection) and ``max(a, -b)`` (difference). They keep the
zero level set exact (to the sub-cell interpolation of both fields), so the results
contour and measure as accurately as the operands. Away from the surface the values
are no longer true distances, which is why every margin re-distances first.

Work stays cropped: patches whose boxes do not overlap are combined without touching
the space in between (the boost PTV of five lesions across the pelvis is five small
boxes); overlapping boxes are resampled (trilinear) onto the lattice of the larger one.
"""

from __future__ import annotations

import numpy as np

from rtplan.errors import InvalidParameterError
from rtplan.structures.field import SignedDistanceField
from rtplan.structures.margins import expand

__all__ = ["difference", "intersection", "union"]


def _same_grid(fields: tuple[SignedDistanceField, ...]) -> None:
    if not fields:
        raise InvalidParameterError("give at least one structure")
    for f in fields[1:]:
        fields[0]._check_grid(f, what="structure grids")


def union(*fields: SignedDistanceField) -> SignedDistanceField:
    """Union of structures on the same CT grid.

    Parameters
    ----------
    *fields
        One or more structures.

    Returns
    -------
    SignedDistanceField
        Inside where any operand is inside (``min`` of the fields).

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere, volume_cc
    >>> g = Grid((40, 64, 64), origin_mm=(-31.4, -31.4, -60.0), spacing_mm=(3, 0.98, 0.98))
    >>> a = sdf_from_sphere(g, (-5, 0, 0), 6.0)
    >>> b = sdf_from_sphere(g, (5, 0, 0), 6.0)
    >>> round(volume_cc(union(a, b)), 3)  # 2 * 4/3 pi 6^3 - lens = 1.7739 cc
    1.774
    """
    _same_grid(fields)
    return SignedDistanceField.from_patches(fields[0].grid, [p for f in fields for p in f.patches])


def intersection(*fields: SignedDistanceField) -> SignedDistanceField:
    """Intersection of structures on the same CT grid.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere, volume_cc
    >>> g = Grid((40, 64, 64), origin_mm=(-31.4, -31.4, -60.0), spacing_mm=(3, 0.98, 0.98))
    >>> a = sdf_from_sphere(g, (-5, 0, 0), 6.0)
    >>> lens = intersection(a, sdf_from_sphere(g, (5, 0, 0), 6.0))
    >>> round(volume_cc(lens) * 1000)  # pi (2r - d)^2 (d^2 + 4 d r) / (12 d) = 35.6 mm^3
    35
    """
    _same_grid(fields)
    current = fields[0]
    for other in fields[1:]:
        out = []
        for pa in current.patches:
            for pb in other.patches:
                box = pa.overlap_box(pb)
                if box is None:
                    continue
                a = pa.resample(pa.spacing_mm, pa.base_mm, *box)
                b = pb.resample(pa.spacing_mm, pa.base_mm, *box)
                out.append(a.with_phi(np.maximum(a.phi, b.phi)))
        current = SignedDistanceField.from_patches(current.grid, out)
    return current


def difference(
    a: SignedDistanceField, b: SignedDistanceField, *, gap_mm: float = 0.0
) -> SignedDistanceField:
    """``a`` minus ``b``, optionally keeping a gap of ``gap_mm`` from ``b``.

    Parameters
    ----------
    a, b
        Structures on the same CT grid.
    gap_mm
        Remove ``b`` expanded by this margin (mm, >= 0), e.g. the elective PTV minus the
        boost PTV with a gap.

    Returns
    -------
    SignedDistanceField
        Inside where ``a`` is inside and ``b`` (+ gap) is not: ``max(phi_a, -phi_b)``.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere, volume_cc
    >>> g = Grid((40, 64, 64), origin_mm=(-31.4, -31.4, -60.0), spacing_mm=(3, 0.98, 0.98))
    >>> big = sdf_from_sphere(g, (0, 0, 0), 10.0)
    >>> small = sdf_from_sphere(g, (0, 0, 0), 4.0)
    >>> round(volume_cc(difference(big, small, gap_mm=1.0)), 2)  # 4/3 pi (10^3 - 5^3) mm^3
    3.67
    """
    _same_grid((a, b))
    gap = float(gap_mm)
    if not np.isfinite(gap) or gap < 0:
        raise InvalidParameterError(f"gap_mm must be >= 0 mm, got {gap_mm!r}")
    if gap > 0:
        b = expand(b, gap)
    out = []
    for pa in a.patches:
        phi = pa.phi
        for pb in b.patches:
            if pa.overlaps(pb):
                phi = np.maximum(phi, -pb.resample(pa.spacing_mm, pa.base_mm, pa.start,
                                                   pa.stop).phi)
        new = pa.with_phi(phi)
        if not new.is_empty:
            out.append(new)
    return SignedDistanceField(a.grid, tuple(out))
