"""Analytic structure sources: exact signed distance fields of simple shapes.

(The constructor lives with the other sources in ``rtplan.structures.constructors``.) A
lesion known from the PET report by centre and diameter becomes a sphere whose
signed distance ``|x - c| - r`` is written directly on a cropped working lattice, with no
voxelisation error at all; margins, booleans and contouring then work on it like on
any other :class:`~rtplan.structures.SignedDistanceField`. The field remembers the
sphere (a ``ShapePatch``): an isotropic margin or erosion is the sphere of radius
``r +- m`` written anew.
"""

from __future__ import annotations

from rtplan.structures.constructors import sdf_from_sphere

__all__ = ["sdf_from_sphere"]
