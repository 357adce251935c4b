"""Margins: true 3D Euclidean expansion and shrinking of structures, in mm.

Isotropic margins
-----------------
``A + m`` (Minkowski sum with a ball of radius ``m``) is the set where the distance to
``A`` is at most ``m``. The field is first re-distanced (closest-point transform with
sub-cell surface points, see ``rtplan.structures._sdf``) and ``m`` is subtracted:
exact up to the sub-cell sampling, on any voxel spacing, for margins smaller than the
slice spacing too. Shrinking by ``m`` adds ``m`` instead (erosion: points at least ``m``
inside). Each structure is processed in its own cropped box (bounding box + margin +
a few cells), on a working lattice of 0.5 to 1 mm. Measured on the issue's cases
(spheres r 3-15 mm, margins 2/3/5 mm chained twice, 1.5 and 3 mm slices): contour
radii within 0.06 mm of the analytic expanded sphere (points within 0.02 mm);
octant-ellipsoid boundary points within 0.1 mm. Structures from masks (CT voxel masks,
PET delineations) are grown by measuring to their voxel boxes themselves (module notes of
``rtplan.structures._sdf``): the field is exact at the lattice cells, and contour
vertices of a box grown by 5 mm (or 2 + 3 mm) lie within 0.06 mm of the analytic rounded
box (the rest is linear interpolation between cells).

Anisotropic margins
-------------------
Six values ``(right, left, anterior, posterior, superior, inferior)`` in mm, in DICOM
patient directions (LPS: right = -x, left = +x, anterior = -y, posterior = +y,
inferior = -z, superior = +z), as planning systems take them. The expansion is the
Minkowski sum with the *octant ellipsoid*: the union of eight ellipsoid octants whose
semi-axis in each of the six directions is that direction's margin (a ball when all are
equal; convex and smooth across octant boundaries). A point is inside when its
asymmetric gauge distance to the structure is at most 1; this is computed with one
scaled EDT per distinct octant (see ``_redistance_gauge``). The extent along each axis
grows by exactly the margin of that direction; in oblique directions the growth is the
ellipsoid's support value. Shrinking uses the dual: complement, expand with the
reflected element, complement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan.errors import GeometryError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.structures._sdf import (
    _PAD_VOXELS,
    SignedDistanceField,
    _boxes_margin,
    _cells_in_box,
    _cells_margin,
    _fine_mask,
    _mask_phi,
    _merge_overlapping,
    _Patch,
    _redistance,
    _redistance_gauge,
    _resample,
    _trim,
    sdf_from_mask,
)

__all__ = ["MARGIN_DIRECTIONS", "crop_to_mask", "expand", "expand_mask", "shrink"]

#: Order of the six values of an anisotropic margin.
MARGIN_DIRECTIONS = ("right", "left", "anterior", "posterior", "superior", "inferior")

# (LPS axis, sign) of each direction in MARGIN_DIRECTIONS
_DIRECTION_AXES = ((0, -1), (0, 1), (1, -1), (1, 1), (2, 1), (2, -1))
_MAX_MARGIN_MM = 100.0


def _parse_margin(
    margin_mm: float | Sequence[float], grid: Grid
) -> tuple[float | None, NDArray[np.float64], NDArray[np.float64], int]:
    """(isotropic value or None, radii towards +axis, radii towards -axis, sign)."""
    vals = np.atleast_1d(np.asarray(margin_mm, dtype=float))
    if vals.size not in (1, 6) or vals.ndim != 1:
        raise InvalidParameterError(
            f"margin_mm must be one value or six ({', '.join(MARGIN_DIRECTIONS)}), "
            f"got {margin_mm!r}"
        )
    if not np.all(np.isfinite(vals)) or np.any(np.abs(vals) > _MAX_MARGIN_MM):
        raise InvalidParameterError(
            f"margins must be finite and at most {_MAX_MARGIN_MM:g} mm, got {vals.tolist()}"
        )
    if np.any(vals > 0) and np.any(vals < 0):
        raise InvalidParameterError(
            f"margins mix growing and shrinking directions {vals.tolist()}: expand and "
            "shrink in two separate steps"
        )
    sign = -1 if np.any(vals < 0) else 1
    a = np.abs(vals)
    if vals.size == 1 or np.allclose(a, a[0], atol=1e-9):
        r = np.full(3, a[0])
        return float(vals[0]), r, r, sign
    r_plus, r_minus = np.zeros(3), np.zeros(3)
    for axis in range(3):
        d = grid.direction[axis]
        p = int(np.argmax(np.abs(d)))
        if abs(d[p]) < 1 - 1e-3:
            raise GeometryError(
                f"anisotropic margins need a grid aligned with the patient axes; axis "
                f"{axis} points along {np.round(d, 4).tolist()}: use an isotropic margin "
                "or resample the image"
            )
        for value, (lps_axis, lps_sign) in zip(a, _DIRECTION_AXES, strict=True):
            if lps_axis == p:
                if lps_sign * np.sign(d[p]) > 0:
                    r_plus[axis] = value
                else:
                    r_minus[axis] = value
    return None, r_plus, r_minus, sign


def _grown_box(patch: _Patch, grow_lo: NDArray, grow_hi: NDArray) -> tuple | None:
    inside = patch.phi < 0
    if not inside.any():
        return None
    lo, hi = [], []
    for a in range(3):
        nz = np.nonzero(inside.any(axis=tuple(b for b in range(3) if b != a)))[0]
        lo.append(nz[0] - 1)
        hi.append(nz[-1] + 1)
    h = patch.h
    start = np.asarray(patch.start) + np.array(lo) - np.ceil(grow_lo / h - 1e-9).astype(int)
    stop = np.asarray(patch.start) + np.array(hi) + np.ceil(grow_hi / h - 1e-9).astype(int)
    return start - _PAD_VOXELS, stop + _PAD_VOXELS + 1


def _apply_margin(field: SignedDistanceField, margin_mm, sign_expected: int | None):
    iso, r_plus, r_minus, sign = _parse_margin(margin_mm, field.grid)
    if sign_expected is not None and sign != sign_expected and (iso is None or iso != 0):
        raise InvalidParameterError(
            f"margin_mm must be >= 0 here, got {margin_mm!r}: use "
            f"{'shrink' if sign_expected > 0 else 'expand'} instead"
        )
    out = []
    for patch in field.patches:
        if sign > 0:
            box = _grown_box(patch, r_minus, r_plus)
        else:
            box = _grown_box(patch, np.zeros(3), np.zeros(3))
        if box is None:
            continue
        ext = _resample(patch, patch.spacing_mm, patch.base_mm, *box)
        h = patch.h
        cells, grown, boxes = None, 0.0, None
        done = patch.cells_margin_mm
        if patch.cells is not None and (done == 0 or (iso is not None and sign > 0)):
            # a voxel mask (possibly grown isotropically already): grow its boxes exactly;
            # balls add up (B(a) + B(b) = B(a + b)), so a chain of margins stays exact
            cells = _cells_in_box(patch, *box)
            inner = np.where(cells, ext.phi, -1.0)  # any negative inside the boxes
            if iso is not None and sign > 0:
                grown = done + iso
                r = np.full(3, grown)
                phi = (_mask_phi(cells, h) if grown == 0
                       else _cells_margin(cells, h, inner, r, r, True))
            elif sign > 0:
                phi = _cells_margin(cells, h, inner, r_plus, r_minus, False)
                cells = None
            else:  # erosion = complement of the dilated complement (reflected element)
                phi = -_cells_margin(~cells, h, -ext.phi, r_minus, r_plus, iso is not None)
                cells = None
        elif patch.boxes is not None and iso is not None and iso > 0 and sign > 0:
            # a PET delineation: measure to its voxel boxes (exact corners and edges)
            phi, boxes = _boxes_margin(ext, patch.boxes, iso)
        elif iso is not None:
            phi = _redistance(ext.phi, h, iso)
        elif sign > 0:
            phi = _redistance_gauge(ext.phi, h, r_plus, r_minus)
        else:  # erosion = complement of the dilated complement by the reflected element
            phi = -_redistance_gauge(-ext.phi, h, r_minus, r_plus)
        new = _trim(_Patch(patch.spacing_mm, patch.base_mm, ext.start, phi, cells, grown, boxes))
        if new is not None:
            out.append(new)
    return SignedDistanceField(field.grid, _merge_overlapping(out))


def expand(
    field: SignedDistanceField, margin_mm: float | Sequence[float]
) -> SignedDistanceField:
    """Grow a structure by a 3D margin in mm (Minkowski sum), isotropic or anisotropic.

    Parameters
    ----------
    field
        The structure.
    margin_mm
        One value (isotropic, >= 0) or six values ``(right, left, anterior, posterior,
        superior, inferior)`` in mm, each >= 0 (see :data:`MARGIN_DIRECTIONS`).

    Returns
    -------
    SignedDistanceField
        The expanded structure; its field is a true signed distance near its surface.

    Raises
    ------
    InvalidParameterError
        For negative, non-finite, over-large (> 100 mm) or wrongly counted margins.
    GeometryError
        For anisotropic margins on a grid not aligned with the patient axes.

    Notes
    -----
    Isotropic: ``phi_new = d(x, A) - m`` (signed), exact for any grid spacing and any
    margin, including margins smaller than the slice spacing. Anisotropic: Minkowski sum
    with the octant ellipsoid (module notes). Cropped per structure; separate
    structures whose grown boxes overlap are merged.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere
    >>> g = Grid((30, 64, 64), origin_mm=(-31.4, -31.4, -45.0), spacing_mm=(3, 0.98, 0.98))
    >>> gtv = sdf_from_sphere(g, center_mm=(0.2, 0.3, 0.4), radius_mm=5.0)
    >>> ctv = expand(gtv, 3.0)
    >>> round(float(ctv.value_at([0.2, 0.3, 8.4])), 2)  # 8 mm above the centre
    0.0
    >>> ptv = expand(ctv, [2, 2, 2, 2, 5, 1])  # 5 mm superior, 1 mm inferior
    >>> [round(float(ptv.value_at([0.2, 0.3, z])), 1) for z in (13.4, -8.6)]
    [0.0, 0.0]
    """
    return _apply_margin(field, margin_mm, +1)


def shrink(
    field: SignedDistanceField, margin_mm: float | Sequence[float]
) -> SignedDistanceField:
    """Shrink a structure by a 3D margin in mm (erosion), isotropic or anisotropic.

    Parameters
    ----------
    field
        The structure.
    margin_mm
        One value or six values (see :func:`expand`), each >= 0: how far the surface
        moves inwards in each direction.

    Returns
    -------
    SignedDistanceField
        The points whose (gauge) distance to the outside exceeds the margin; may be
        empty.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere
    >>> g = Grid((30, 64, 64), origin_mm=(-31.4, -31.4, -45.0), spacing_mm=(3, 0.98, 0.98))
    >>> s = shrink(sdf_from_sphere(g, center_mm=(0, 0, 0), radius_mm=10.0), 4.0)
    >>> round(float(s.value_at([6.0, 0.0, 0.0])), 2)
    0.0
    """
    _parse_margin(margin_mm, field.grid)  # validates count and range
    vals = np.atleast_1d(np.asarray(margin_mm, dtype=float))
    if np.any(vals < 0):
        raise InvalidParameterError(
            f"shrink takes margins >= 0 (how far to move inwards), got {margin_mm!r}"
        )
    neg = (-vals).tolist() if vals.size > 1 else -float(vals[0])
    return _apply_margin(field, neg, None)


def crop_to_mask(
    field: SignedDistanceField, mask: ArrayLike, inset_mm: float = 0.0
) -> SignedDistanceField:
    """Keep the part of a structure inside a mask, optionally ``inset_mm`` inside it.

    Typical use: crop a PTV to the body outline, pulled a few mm inside the skin. The
    mask is turned into a distance field only in each patch's box (plus the inset), so a
    whole-body mask costs no more than the target's neighbourhood.

    Parameters
    ----------
    field
        The structure.
    mask
        Boolean mask on ``field.grid`` (e.g. the body / EXTERNAL), voxel-edge surface.
    inset_mm
        Keep only points at least this far inside the mask surface (>= 0, mm).

    Returns
    -------
    SignedDistanceField
        ``field`` intersected with ``mask`` shrunk by ``inset_mm``.

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> from rtplan.structures import sdf_from_sphere
    >>> g = Grid((30, 64, 64), origin_mm=(-31.4, -31.4, -45.0), spacing_mm=(3, 0.98, 0.98))
    >>> body = np.zeros(g.shape, bool); body[:, :, :40] = True  # skin face at x = 7.35 mm
    >>> ptv = sdf_from_sphere(g, center_mm=(0, 0, 0), radius_mm=10.0)
    >>> cropped = crop_to_mask(ptv, body, inset_mm=3.0)
    >>> round(float(cropped.value_at([4.35, 0.0, 0.0])), 2)
    0.0
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != field.grid.shape:
        sdf_from_mask(m, field.grid)  # raises the shape mismatch error
    inset = float(inset_mm)
    if not np.isfinite(inset) or inset < 0 or inset > _MAX_MARGIN_MM:
        raise InvalidParameterError(
            f"inset_mm must be between 0 and {_MAX_MARGIN_MM:g} mm, got {inset_mm!r}"
        )
    out = []
    for patch in field.patches:
        h = patch.h
        grow = np.ceil(inset / h - 1e-9).astype(int) + _PAD_VOXELS
        start = np.asarray(patch.start) - grow
        stop = np.asarray(patch.start) + np.asarray(patch.shape) + grow
        fine = _fine_mask(m, field.grid, patch.spacing_mm, patch.base_mm, start, stop)
        phi_body = _mask_phi(fine, h)
        if inset > 0:
            phi_body = _redistance(phi_body, h, -inset)
        body = _Patch(patch.spacing_mm, patch.base_mm, tuple(int(v) for v in start), phi_body)
        stop_p = np.asarray(patch.start) + np.asarray(patch.shape)
        body_on_patch = _resample(body, patch.spacing_mm, patch.base_mm, patch.start, stop_p)
        phi = np.maximum(patch.phi, body_on_patch.phi)
        cells = None
        if patch.cells is not None and patch.cells_margin_mm == 0 and inset == 0:
            # both are unions of the same lattice cells: the intersection is exact
            g = np.asarray(patch.start) - start
            sl = tuple(slice(int(a), int(a) + n) for a, n in zip(g, patch.shape, strict=True))
            cells = patch.cells & fine[sl]
        new = _trim(_Patch(patch.spacing_mm, patch.base_mm, patch.start, phi, cells))
        if new is not None:
            out.append(new)
    return SignedDistanceField(field.grid, tuple(out))


def expand_mask(
    mask: ArrayLike,
    grid: Grid,
    margin_mm: float | Sequence[float],
    *,
    resolution_mm: float | None = None,
) -> NDArray[np.bool_]:
    """Expand (or, with negative values, shrink) a boolean mask on a CT grid.

    Convenience for mask-only callers: :func:`~rtplan.structures.sdf_from_mask`, then
    :func:`expand` / :func:`shrink`, then :func:`~rtplan.structures.rasterize`
    (voxel-centre inside test).

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((7, 11, 11), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> m = np.zeros(g.shape, bool); m[3, 5, 5] = True
    >>> out = expand_mask(m, g, 2.0)
    >>> int(out[3].sum()), int(out[2].sum())  # slab +-0.5 mm grown by 2 mm; next slices
    (21, 9)
    """
    from rtplan.structures.contouring import rasterize

    f = sdf_from_mask(mask, grid, resolution_mm=resolution_mm)
    vals = np.atleast_1d(np.asarray(margin_mm, dtype=float))
    if np.any(vals < 0):
        f = shrink(f, -vals if vals.size == 6 else float(-vals[0]))
    else:
        f = expand(f, margin_mm)
    return rasterize(f)
