"""Structures: masks, margins, contours and RTSTRUCT import/export."""

from rtplan.structures.contour import PlanarContour, ROIContours

__all__ = ["PlanarContour", "ROIContours"]
