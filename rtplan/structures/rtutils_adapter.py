"""Adapter between rtplan and rt-utils (``rt_utils.RTStruct``).

rt-utils keeps masks as ``[row, column, slice]``; rtplan as ``[slice, row, column]``.
The conversion happens here and nowhere else.

rt-utils is used only where it is right. Its own mask reader
(``RTStruct.get_roi_mask_by_name``) needs a ContourImageSequence in every contour and
returns ``(Columns, Rows, slices)`` arrays that crop non-square images, and its writer
(``RTStruct.add_roi``) draws contours through voxel centres, writes decimal strings
longer than DICOM's 16 characters and leaves RTROIInterpretedType blank. So
:func:`masks_from_rtutils` reads the rt-utils object's dataset with rtplan's reader,
and :func:`to_rtutils` wraps an RTSTRUCT that rtplan built.

rt-utils is imported lazily (it pulls in OpenCV).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from rtplan._shared.optional import import_optional
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries, ct_series_from_datasets
from rtplan.imaging.grid import Grid
from rtplan.structures.contour import ROIContours
from rtplan.structures.rtstruct import build_rtstruct, read_rtstruct, rtstruct_masks

__all__ = [
    "ct_from_rtutils",
    "mask_from_rtutils_layout",
    "mask_to_rtutils_layout",
    "masks_from_rtutils",
    "to_rtutils",
]

_FEATURE = "the rt-utils adapter"


def mask_to_rtutils_layout(mask: NDArray) -> NDArray:
    """Reorder an rtplan ``[slice, row, column]`` mask to rt-utils' ``[row, column, slice]``.

    This is the layout ``rt_utils.RTStruct.add_roi`` expects (OpenCV reads each
    ``mask[:, :, k]`` as rows x columns), also for non-square images.

    Examples
    --------
    >>> mask_to_rtutils_layout(np.zeros((3, 4, 5), bool)).shape
    (4, 5, 3)
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise GeometryError(f"a mask must be 3-D [slice, row, column], got shape {m.shape}")
    return np.moveaxis(m, 0, -1)


def mask_from_rtutils_layout(mask: NDArray, grid: Grid | None = None) -> NDArray:
    """Reorder an rt-utils ``[row, column, slice]`` mask to rtplan's ``[slice, row, column]``.

    Parameters
    ----------
    mask
        rt-utils mask.
    grid
        When given, the result must have ``grid.shape``. rt-utils' own reader returns
        ``(Columns, Rows, slices)`` arrays, cropped, for non-square images; such a mask
        is refused with an explanation.

    Examples
    --------
    >>> mask_from_rtutils_layout(np.zeros((4, 5, 3), bool)).shape
    (3, 4, 5)
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise GeometryError(f"an rt-utils mask is 3-D [row, column, slice], got {m.shape}")
    out = np.moveaxis(m, -1, 0)
    if grid is not None and out.shape != grid.shape:
        hint = ""
        if out.shape == (grid.shape[0], grid.shape[2], grid.shape[1]):
            hint = (
                ": rt-utils' get_roi_mask_by_name makes (Columns, Rows) masks and crops "
                "non-square images; use masks_from_rtutils() instead"
            )
        raise GeometryError(
            f"rt-utils mask of shape {m.shape} gives {out.shape}, the grid is {grid.shape}"
            + hint
        )
    return out


def ct_from_rtutils(rtstruct: Any) -> CTSeries:
    """The CT series an ``rt_utils.RTStruct`` was built on, as a :class:`CTSeries`.

    Uses the slices' own datasets (``rtstruct.series_data``), checked and sorted as
    :func:`rtplan.imaging.load_ct_series` does.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> g = Grid((3, 4, 6), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.zeros(g.shape), g)
    >>> ct_from_rtutils(to_rtutils(ct, [])).grid.shape
    (3, 4, 6)
    """
    series = getattr(rtstruct, "series_data", None)
    if not series:
        raise InputError("expected an rt_utils RTStruct with series_data (its CT slices)")
    if any("PixelData" not in ds for ds in series):
        raise InputError(
            "the RTStruct's series_data has no pixel data (headers only): load the CT "
            "with rtplan.imaging.load_ct_series instead"
        )
    return ct_series_from_datasets(series)


def masks_from_rtutils(
    rtstruct: Any,
    names: Sequence[str] | None = None,
    *,
    plane_tol_mm: float = 0.1,
) -> tuple[CTSeries, dict[str, NDArray[np.bool_]]]:
    """rtplan masks ``[slice, row, column]`` and CT from an ``rt_utils.RTStruct``.

    The structure set (``rtstruct.ds``) is read with rtplan's reader: contours are
    matched to slices by their plane (no per-contour image reference needed), holes by
    even-odd nesting, voxels by their centres, non-square images kept whole.

    Parameters
    ----------
    rtstruct
        An ``rt_utils.RTStruct`` (from ``RTStructBuilder.create_from`` or ``create_new``).
    names
        ROI names (default: all with contours).
    plane_tol_mm
        See :func:`rtplan.structures.rasterize_polygons`.

    Returns
    -------
    (CTSeries, dict)
        The CT and ROI name -> boolean mask on its grid.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> from rtplan.structures import PlanarContour
    >>> g = Grid((2, 4, 6), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.zeros(g.shape), g)
    >>> sq = PlanarContour(1, [[0.5, 0.5, 2], [3.5, 0.5, 2], [3.5, 2.5, 2], [0.5, 2.5, 2]])
    >>> rt = to_rtutils(ct, [ROIContours("Box", "ORGAN", (9, 9, 9), [sq])])
    >>> ct, masks = masks_from_rtutils(rt)
    >>> masks["Box"].shape, int(masks["Box"].sum())
    ((2, 4, 6), 6)
    """
    ct = ct_from_rtutils(rtstruct)
    ss = read_rtstruct(rtstruct.ds)
    return ct, rtstruct_masks(ss, ct, names, plane_tol_mm=plane_tol_mm)


def to_rtutils(ct: CTSeries, rois: Sequence[ROIContours], **options: object) -> Any:
    """An ``rt_utils.RTStruct`` holding rtplan's RTSTRUCT for ``rois`` on ``ct``.

    The dataset is :func:`rtplan.structures.build_rtstruct`'s (valid DICOM, contours on
    structure boundaries, ROI types set); rt-utils wraps it with the CT slice headers
    in its own slice order (ascending along the slice normal, as rtplan's). ROIs that
    a caller later adds with rt-utils' ``add_roi`` are rt-utils' own (contours through
    voxel centres, blank ROI type): prefer rtplan's writer for those too.

    Parameters
    ----------
    ct
        The CT.
    rois
        ROIs on ``ct``'s grid.
    **options
        Passed to :func:`rtplan.structures.build_rtstruct`.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> from rtplan.structures import PlanarContour
    >>> g = Grid((2, 6, 6), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.zeros(g.shape), g)
    >>> sq = PlanarContour(0, [[0.5, 0.5, 0], [4.5, 0.5, 0], [4.5, 4.5, 0], [0.5, 4.5, 0]])
    >>> rt = to_rtutils(ct, [ROIContours("Box", "ORGAN", (9, 9, 9), [sq])])
    >>> rt.get_roi_names()
    ['Box']
    """
    rt_utils = import_optional("rt_utils", feature=_FEATURE)
    ds = build_rtstruct(ct, rois, **options)  # type: ignore[arg-type]
    series: list[pydicom.Dataset]
    if ct.paths and all(p and Path(p).is_file() for p in ct.paths):
        series = [pydicom.dcmread(p) for p in ct.paths]  # with pixels, as rt-utils holds
    else:
        series = list(ct.headers)
    return rt_utils.RTStruct(series, ds)
