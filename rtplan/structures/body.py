"""The body outline (external contour) from a CT volume."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from rtplan.errors import InputError
from rtplan.imaging.grid import Grid

__all__ = ["BODY_THRESHOLD_HU", "body_mask"]

#: HU threshold between air and tissue used for the outline (air -1000, fat about -100).
BODY_THRESHOLD_HU = -350.0


def _disk(radius_px: tuple[float, float]) -> NDArray[np.bool_]:
    ry, rx = (max(1, int(np.ceil(r))) for r in radius_px)
    y, x = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    return (y / max(radius_px[0], 1e-9)) ** 2 + (x / max(radius_px[1], 1e-9)) ** 2 <= 1.0


def body_mask(
    volume_hu: NDArray,
    grid: Grid,
    *,
    threshold_hu: float = BODY_THRESHOLD_HU,
    opening_mm: float = 3.0,
) -> NDArray[np.bool_]:
    """Boolean mask ``[slice, row, column]`` of the patient's body.

    Per slice: threshold at ``threshold_hu``, open with a disk of ``opening_mm`` (mm)
    to detach the couch and thin immobilisation, keep the largest 2D component and
    fill its holes (lungs, bowel gas); then keep the largest 3D component.

    Parameters
    ----------
    volume_hu
        CT volume in HU, indexed ``[slice, row, column]``.
    grid
        Its grid (spacing is used for the opening disk, in mm).

    Examples
    --------
    >>> from rtplan.imaging.grid import Grid
    >>> vol = np.full((3, 40, 40), -1000.0)
    >>> yy, xx = np.mgrid[:40, :40]
    >>> vol[:, (yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = 0.0     # a cylinder, r 10 px
    >>> vol[:, 18:22, 18:22] = -1000.0                           # air inside: filled
    >>> m = body_mask(vol, Grid((3, 40, 40), (0, 0, 0), (3, 1, 1)))
    >>> int(m[1].sum()) == int(((yy - 20) ** 2 + (xx - 20) ** 2 <= 100).sum())
    True
    """
    vol = np.asarray(volume_hu)
    if vol.shape != grid.shape:
        raise InputError(f"volume shape {vol.shape} does not match grid shape {grid.shape}")
    above = vol > threshold_hu
    if not above.any():
        raise InputError(
            f"no voxel above {threshold_hu:g} HU: is this a CT in Hounsfield units? "
            "Give the body as an ROI or use --body none"
        )
    footprint = _disk((opening_mm / grid.spacing_mm[1], opening_mm / grid.spacing_mm[2]))
    out = np.zeros(vol.shape, dtype=bool)
    for k in range(vol.shape[0]):
        sl = above[k]
        if not sl.any():
            continue
        opened = ndimage.binary_opening(sl, structure=footprint)
        if not opened.any():
            opened = sl
        labels, n = ndimage.label(opened)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        keep = labels == (1 + int(np.argmax(sizes)))
        out[k] = ndimage.binary_fill_holes(keep)
    labels, n = ndimage.label(out)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        out = labels == (1 + int(np.argmax(sizes)))
    return out
