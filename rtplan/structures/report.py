"""The structures report (``rtplan structures --report``): models and contour volumes.

Schema: ``schemas/structures/structures_report.json`` (generated from
:class:`StructuresReport`). Two volumes per structure:

* ``volume_cc``: the continuous 3D volume of the structure (its distance field at
  sub-voxel resolution; for a voxel mask, voxel count x voxel volume);
* ``contour_volume_cc``: the volume of the planar contours written to the RTSTRUCT, by
  the slab rule of :mod:`rtplan.dose._roi` (every contour plane stands for a slab as
  thick as the ROI's contour spacing, the smallest gap between its planes, or for a
  single plane the CT slice spacing): the sum over contours of polygon area x slab
  thickness, holes subtracted. This is what a planning system reading the RTSTRUCT sees;
  it differs from ``volume_cc`` by the slab approximation at the ends of a structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rtplan.imaging.grid import Grid
from rtplan.structures.contour import PlanarContour, ROIContours

if TYPE_CHECKING:
    from rtplan.structures.targets import Target

__all__ = [
    "ExclusionSummary",
    "PETUse",
    "RegistrationSummary",
    "StructureRecord",
    "StructuresReport",
    "contour_volume_cc",
    "structure_records",
]

#: Contour planes closer than this (mm) along the normal are one plane.
_PLANE_MERGE_MM = 0.05


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StructureRecord(_Model):
    """One structure of the report."""

    name: str = Field(description="TG-263 ROI name")
    roi_type: str = Field(description="RTROIInterpretedType (GTV, CTV, PTV, EXTERNAL)")
    volume_cc: float = Field(
        description="Continuous 3D volume of the structure (cc): its signed distance field "
        "at sub-voxel resolution (voxel count x voxel volume for a voxel mask)")
    contour_volume_cc: float | None = Field(
        default=None,
        description="Volume of the written planar contours (cc): sum over contours of "
        "polygon area x slab thickness (the ROI's contour spacing, or the CT slice "
        "spacing for a single plane), holes subtracted; null when not contoured")
    lesion_id: str | None = Field(description="Lesion it derives from (null: ENI, SIB, body)")
    source: str = Field(description="How it was made, e.g. 'sphere', 'GTVn1 + 3 mm'")
    margin: str = Field(description="Margin text ('3 mm', 'R1/L2/A3/P4/S5/I6 mm', '')")


class RegistrationSummary(_Model):
    """The PET -> CT transform applied (``RigidTransform.describe()``)."""

    moving_frame: str
    fixed_frame: str
    matrix: list[list[float]] = Field(description="4 x 4, p_ct = M @ [p_pet, 1] (LPS mm)")
    rotation_deg: float
    translation_mm: list[float]
    source: str


class ExclusionSummary(_Model):
    """The exclusion regions put onto the PET grid."""

    sources: list[str]
    pet_voxels: int


class PETUse(_Model):
    """What the structure pipeline did with the PET (the report's ``"pet"`` section)."""

    series_instance_uid: str
    frame_of_reference_uid: str
    registration: RegistrationSummary | None = Field(
        description="PET -> CT transform; null when the PET shares the CT's frame")
    exclusion: ExclusionSummary | None = Field(description="null: no exclusion")


class StructuresReport(_Model):
    """The report of ``rtplan structures`` / :func:`~rtplan.structures.plan_targets`.

    ``pet`` is left out of the JSON when no PET was used.
    """

    structures: list[StructureRecord]
    warnings: list[str]
    rtplan_version: str
    rtstruct: str | None = Field(default=None, description="RTSTRUCT written (path)")
    pet: PETUse | None = None


def _area_mm2(points_mm: np.ndarray, normal: np.ndarray) -> float:
    """Unsigned area (mm2) of a planar polygon (Newell's vector area along ``normal``)."""
    p = np.asarray(points_mm, dtype=float)
    vec = 0.5 * np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0)
    return abs(float(vec @ normal))


def contour_volume_cc(contours: Sequence[PlanarContour], grid: Grid) -> float:
    """Volume (cc) of planar contours by the slab rule of :mod:`rtplan.dose._roi`.

    Each contour plane stands for a slab as thick as the smallest gap between the
    planes (one plane: the grid's slice spacing); a plane's area is its contours' areas,
    holes subtracted.

    Examples
    --------
    Squares of 10 x 10 mm on three slices 2 mm apart: 3 x 100 mm2 x 2 mm = 0.6 cc; one
    square alone stands for one slice spacing of the grid (3 mm): 0.3 cc.

    >>> g = Grid((5, 20, 20), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> sq = lambda z: np.array([[0, 0, z], [10, 0, z], [10, 10, z], [0, 10, z]], float)
    >>> contour_volume_cc([PlanarContour(k, sq(2.0 * k)) for k in range(3)], g)
    0.6
    >>> contour_volume_cc([PlanarContour(0, sq(0.0))], g)
    0.3
    """
    if not contours:
        return 0.0
    normal = np.asarray(grid.direction[0], dtype=float)
    along = np.array([float(np.mean(c.points_mm @ normal)) for c in contours])
    order = np.argsort(along, kind="stable")
    planes: list[float] = []
    for i in order:
        if not planes or along[i] - planes[-1] >= _PLANE_MERGE_MM:
            planes.append(float(along[i]))
    thickness = float(np.min(np.diff(planes))) if len(planes) > 1 else float(
        grid.spacing_mm[0])
    area = sum((-1.0 if c.is_hole else 1.0) * _area_mm2(c.points_mm, normal)
               for c in contours)
    return area * thickness / 1000.0


def structure_records(
    targets: Sequence[Target], rois: Sequence[ROIContours] | None = None
) -> list[StructureRecord]:
    """One :class:`StructureRecord` per target; ``rois`` (same order, from
    :func:`~rtplan.structures.targets_to_rois`) give the contour volumes."""
    if rois is not None and len(rois) != len(targets):
        raise ValueError(f"{len(rois)} ROIs for {len(targets)} targets")
    out = []
    for i, t in enumerate(targets):
        cv = None
        if rois is not None:
            cv = contour_volume_cc(rois[i].contours, t.geometry.grid)
        out.append(StructureRecord(
            name=t.name, roi_type=str(t.roi_type), volume_cc=t.volume_cc(),
            contour_volume_cc=cv, lesion_id=t.lesion_id, source=t.source, margin=t.margin,
        ))
    return out
