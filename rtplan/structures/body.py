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


def _half_thickness_mm(component: NDArray[np.bool_], pixel_mm: tuple[float, float]) -> float:
    """Radius (mm) of the largest disk inside a 2D component (its half thickness)."""
    padded = np.pad(component, 1)
    return float(ndimage.distance_transform_edt(padded, sampling=pixel_mm).max())


def body_mask(
    volume_hu: NDArray,
    grid: Grid,
    *,
    threshold_hu: float = BODY_THRESHOLD_HU,
    opening_mm: float = 3.0,
    min_area_mm2: float = 500.0,
    min_thickness_mm: float = 20.0,
    min_volume_cc: float = 20.0,
) -> NDArray[np.bool_]:
    """Boolean mask ``[slice, row, column]`` of the patient's body.

    Per slice: threshold at ``threshold_hu`` and open with a disk of ``opening_mm``
    (mm) to detach the couch and thin immobilisation. Of the 2D components, the largest
    is kept, and so is every other one of at least ``min_area_mm2`` that is at least
    ``min_thickness_mm`` thick (holds a disk of that diameter): the second leg below the
    pelvis, an arm beside the trunk; a couch top or a thin board is thinner and is left
    out. Holes are filled per slice (lungs, bowel gas). In 3D the largest component is
    kept, with every other one of at least ``min_volume_cc`` that holds such a thick
    secondary part (legs that never join in the field of view; not a stack of couch
    pieces on slices beyond the patient).

    Parameters
    ----------
    volume_hu
        CT volume in HU, indexed ``[slice, row, column]``.
    grid
        Its grid (pixel spacing, mm, for the disks and areas).
    threshold_hu
        Air/tissue threshold (HU).
    opening_mm
        Radius (mm) of the opening disk.
    min_area_mm2, min_thickness_mm, min_volume_cc
        What a body part besides the largest needs: area per slice (mm^2), thickness
        (mm) and, for a part not joined to the largest in 3D, volume (cc).

    Raises
    ------
    InputError
        If the volume does not match the grid, or no voxel is above the threshold.

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

    Two legs (discs of radius 40 mm) and a couch (a slab 8 mm thick) on 2 mm pixels:
    both legs are kept, the couch is not:

    >>> vol = np.full((2, 80, 100), -1000.0)
    >>> yy, xx = np.mgrid[:80, :100] * 2.0
    >>> for cx in (50.0, 150.0):
    ...     vol[:, (yy - 70) ** 2 + (xx - cx) ** 2 <= 40**2] = 20.0
    >>> vol[:, 56:60, :] = 200.0                                 # couch, y 112-118 mm
    >>> m = body_mask(vol, Grid((2, 80, 100), (0, 0, 0), (5, 2, 2)))
    >>> bool(m[0, 35, 25] and m[0, 35, 75]), bool(m[0, 57, 50])
    (True, False)
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
    pixel_mm = (float(grid.spacing_mm[1]), float(grid.spacing_mm[2]))
    footprint = _disk((opening_mm / pixel_mm[0], opening_mm / pixel_mm[1]))
    min_area_px = min_area_mm2 / (pixel_mm[0] * pixel_mm[1])
    out = np.zeros(vol.shape, dtype=bool)
    extra = np.zeros(vol.shape, dtype=bool)  # thick secondary parts (legs, arms)
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
        largest = 1 + int(np.argmax(sizes))
        keep = labels == largest
        for lab, box in enumerate(ndimage.find_objects(labels), start=1):
            if lab == largest or box is None or sizes[lab - 1] < min_area_px:
                continue
            part = labels[box] == lab
            if 2.0 * _half_thickness_mm(part, pixel_mm) >= min_thickness_mm:
                keep[box] |= part
                extra[k][box] |= part
        out[k] = ndimage.binary_fill_holes(keep)
    labels, n = ndimage.label(out)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        largest = 1 + int(np.argmax(sizes))
        voxel_cc = float(np.prod(grid.spacing_mm)) / 1000.0
        with_extra = np.unique(labels[extra])
        keep_labels = [largest] + [int(lab) for lab in with_extra
                                   if lab not in (0, largest)
                                   and sizes[lab - 1] * voxel_cc >= min_volume_cc]
        out = np.isin(labels, keep_labels)
    return out
