"""Former home of the geometry core, kept as an import path (private).

``rtplan.structures.__init__`` and ``rtplan.structures.targets`` import the names below
from here. The code now lives in ``rtplan.structures.field`` (:class:`SignedDistanceField`),
``rtplan.structures.constructors`` (masks, foreign masks, RTSTRUCT contours) and the private
modules ``_lattice``, ``_patches``, ``_distance`` and ``_exact`` (see their notes).
"""

from rtplan.structures.constructors import (
    sdf_from_contours,
    sdf_from_foreign_mask,
    sdf_from_mask,
    sdf_from_rtstruct,
)
from rtplan.structures.field import SignedDistanceField

__all__ = [
    "SignedDistanceField",
    "sdf_from_contours",
    "sdf_from_foreign_mask",
    "sdf_from_mask",
    "sdf_from_rtstruct",
]
