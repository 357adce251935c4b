"""Planar contours in DICOM patient coordinates: the exchange format between
contouring (mask -> contours), RTSTRUCT export and RTSTRUCT import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rtplan.errors import GeometryError

__all__ = ["PlanarContour", "ROIContours"]


@dataclass(frozen=True, eq=False)
class PlanarContour:
    """One closed planar polygon lying on one image slice.

    Parameters
    ----------
    slice_index
        Index ``k`` of the image slice the contour lies on (its plane is that slice's
        own plane, at that slice's own position along the normal).
    points_mm
        ``(N, 3)`` LPS points in mm, N >= 3, the polygon closed implicitly (the first
        point is not repeated), as DICOM CLOSED_PLANAR ContourData.
    is_hole
        True when the polygon is a hole inside another contour of the same ROI on the
        same slice. DICOM stores holes as further contours of the ROI (nested
        contours); readers fill by even-odd nesting.

    Examples
    --------
    >>> c = PlanarContour(0, [[0, 0, 5], [10, 0, 5], [0, 10, 5]])
    >>> c.n_points, c.is_hole
    (3, False)
    """

    slice_index: int
    points_mm: NDArray[np.float64]
    is_hole: bool = False

    def __post_init__(self) -> None:
        pts = np.asarray(self.points_mm, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise GeometryError(f"contour points must be (N, 3) mm, got shape {pts.shape}")
        if pts.shape[0] < 3:
            raise GeometryError(
                f"a closed planar contour needs at least 3 points, got {pts.shape[0]}"
            )
        if not np.all(np.isfinite(pts)):
            raise GeometryError("contour points must be finite")
        pts.setflags(write=False)
        object.__setattr__(self, "points_mm", pts)
        object.__setattr__(self, "slice_index", int(self.slice_index))

    @property
    def n_points(self) -> int:
        """Number of points."""
        return int(self.points_mm.shape[0])


@dataclass(frozen=True, eq=False)
class ROIContours:
    """A named region of interest as a set of planar contours, ready for RTSTRUCT.

    Parameters
    ----------
    name
        ROIName (TG-263 style, at most 16 characters for targets).
    roi_type
        RTROIInterpretedType: ``GTV``, ``CTV``, ``PTV``, ``EXTERNAL``, ``ORGAN``, ...
    color
        ROIDisplayColor as (R, G, B), 0-255.
    contours
        The contours; may be empty only for an ROI that is written without a
        ContourSequence.
    description
        ROIDescription (e.g. margins and the rtplan version).

    Examples
    --------
    >>> tri = PlanarContour(0, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    >>> roi = ROIContours("GTV_1", "GTV", (255, 0, 0), [tri])
    >>> roi.name, len(roi.contours)
    ('GTV_1', 1)
    """

    name: str
    roi_type: str
    color: tuple[int, int, int]
    contours: list[PlanarContour] = field(default_factory=list)
    description: str = ""
    generation_algorithm: str = "SEMIAUTOMATIC"

    def __post_init__(self) -> None:
        col = tuple(int(c) for c in self.color)
        if len(col) != 3 or not all(0 <= c <= 255 for c in col):
            raise GeometryError(f"ROI colour must be three values 0-255, got {self.color}")
        object.__setattr__(self, "color", col)
        object.__setattr__(self, "contours", list(self.contours))


