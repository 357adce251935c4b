"""Target construction: GTV -> CTV -> PTV per lesion, ENI with SIB, body cropping.

The protocol (paper in ``shared/papers``): every PSMA-positive lesion is a GTV;
CTV = GTV + 2-3 mm; PTV = CTV + 2-3 mm; elective nodal irradiation (ENI) gets a 5 mm
PTV margin, with a simultaneous integrated boost (SIB) to the lesions. With SIB the boost
PTV is the union of the lesion PTVs and the elective PTV is PTV_ENI minus the boost PTV
(optionally minus a gap).

All geometry is carried as signed distance fields on the planning CT grid (see
:class:`~rtplan.structures.SignedDistanceField`): margins are exact 3D Euclidean
expansions in mm, and contours are extracted on every CT slice plane at sub-voxel
accuracy. The body outline (External) is carried as its voxel mask
(:class:`VoxelMask`): it needs contours and a volume, not a whole-body distance field.
The whole ``rtplan structures`` run (PET, registration, exclusion, report) is
:func:`rtplan.structures.plan_targets`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtplan import __version__
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.imaging.pet import PETVolume
from rtplan.imaging.registration import RigidTransform
from rtplan.lesions import (
    AnisotropicMargin,
    ENISpec,
    Lesion,
    LesionsFile,
    RTStructSource,
    margin_warnings,
)
from rtplan.structures._sdf import SignedDistanceField, sdf_from_mask
from rtplan.structures.body import body_mask
from rtplan.structures.booleans import difference, union
from rtplan.structures.contour import PlanarContour, ROIContours
from rtplan.structures.contouring import contours_from_sdf, volume_cc
from rtplan.structures.margins import crop_to_mask, expand
from rtplan.structures.naming import (
    RoiType,
    colour_for,
    site_classifier,
    site_indicator,
    target_name,
)
from rtplan.structures.outline import mask_volume_cc, outline_contours
from rtplan.structures.report import PETUse, StructuresReport, structure_records
from rtplan.structures.rtstruct import StructureSet
from rtplan.structures.sources import (
    delineate_gtv,
    lesion_gtv,
    load_mask_source,
    pet_to_ct_transform,
    resample_mask_nearest,
    rtstruct_sdf,
    source_mask,
)

__all__ = [
    "MAX_OUTSIDE_BODY_FRACTION",
    "Target",
    "TargetSet",
    "VoxelMask",
    "build_targets",
    "lesion_gtv",
    "load_mask_source",
    "pet_to_ct_transform",
    "resample_mask_nearest",
    "roi_description",
    "source_mask",
    "targets_to_rois",
]

Margin = float | AnisotropicMargin

#: A lesion whose GTV lies more than this fraction outside the body outline is an error
#: (a GTV mostly outside the patient means wrong coordinates or a wrong body outline).
MAX_OUTSIDE_BODY_FRACTION = 0.5
#: Part of a target's volume the body crop may remove before a warning (1 %).
_WARN_OUTSIDE_BODY_FRACTION = 0.01


def _margin_arg(m: Margin) -> float | tuple[float, ...]:
    return m.as_tuple() if isinstance(m, AnisotropicMargin) else float(m)


def _margin_text(m: Margin) -> str:
    if isinstance(m, AnisotropicMargin):
        return "R{:g}/L{:g}/A{:g}/P{:g}/S{:g}/I{:g} mm".format(*m.as_tuple())
    return f"{m:g} mm"


@dataclass(frozen=True, eq=False)
class VoxelMask:
    """A structure known as voxels of the CT grid (e.g. the body outline), no distance field.

    Building a distance field of a whole-body mask costs seconds; a structure that only
    needs its contours and volume (the External ROI) is carried as its mask.

    Attributes
    ----------
    mask
        Boolean ``[slice, row, column]`` mask on ``grid``.
    grid
        The CT grid (LPS mm).

    Examples
    --------
    >>> g = Grid((3, 8, 8), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> m = np.zeros(g.shape, bool); m[1, 2:5, 3:6] = True         # 9 voxels of 2 mm3
    >>> vm = VoxelMask(m, g)
    >>> vm.volume_cc(), len(vm.contours()), vm.is_empty
    (0.018, 1, False)
    """

    mask: NDArray[np.bool_]
    grid: Grid

    def __post_init__(self) -> None:
        m = np.asarray(self.mask, dtype=bool)
        if m.shape != self.grid.shape:
            raise GeometryError(
                f"mask shape {m.shape} does not match the CT grid {self.grid.shape}"
            )
        object.__setattr__(self, "mask", m)

    @property
    def is_empty(self) -> bool:
        """True when no voxel is set."""
        return not bool(self.mask.any())

    def volume_cc(self) -> float:
        """Volume in cc: the voxel boxes (irregular slices: half-way to the neighbours)."""
        return mask_volume_cc(self.mask, self.grid)

    def contours(self) -> list[PlanarContour]:
        """Planar contours exactly along the voxel edges, on each CT slice (no distance
        field: :func:`~rtplan.structures.outline.outline_contours`)."""
        return outline_contours(self.mask, self.grid)

    def to_sdf(self) -> SignedDistanceField:
        """The mask as a signed distance field (costly for large masks)."""
        return sdf_from_mask(self.mask, self.grid)


#: What a target's geometry can be.
Geometry = SignedDistanceField | VoxelMask


@dataclass(frozen=True, eq=False)
class Target:
    """One target structure.

    Attributes
    ----------
    name
        TG-263 name (``GTVn1``, ``PTV_6120``, ...).
    roi_type
        RTROIInterpretedType.
    geometry
        The structure on the CT grid: a :class:`~rtplan.structures.SignedDistanceField`
        (targets) or a :class:`VoxelMask` (the body outline).
    lesion_id
        Lesion it derives from (None for ENI, SIB composites and the body).
    source
        How it was made, e.g. ``"sphere"``, ``"GTVn1 + 3 mm"``, ``"union(PTVn1, PTV1_Bone)"``.
    margin
        Margin text for tables (``"3 mm"``, ``""``).
    chain
        The whole derivation for the ROI description, e.g.
        ``"GTVn1 + 3 mm (CTV) + 3 mm (PTV)"`` (empty: ``source``).
    """

    name: str
    roi_type: RoiType
    geometry: Geometry
    lesion_id: str | None
    source: str
    margin: str = ""
    chain: str = ""

    @property
    def sdf(self) -> SignedDistanceField:
        """The structure as a signed distance field (built from a :class:`VoxelMask`)."""
        g = self.geometry
        return g if isinstance(g, SignedDistanceField) else g.to_sdf()

    def volume_cc(self) -> float:
        """Volume in cm^3: the continuous 3D volume of the structure."""
        g = self.geometry
        return g.volume_cc() if isinstance(g, VoxelMask) else float(volume_cc(g))

    def contours(self) -> list[PlanarContour]:
        """Planar contours on every CT slice plane the structure crosses."""
        g = self.geometry
        return g.contours() if isinstance(g, VoxelMask) else contours_from_sdf(g)


@dataclass(frozen=True, eq=False)
class TargetSet:
    """The targets built for one patient, with the warnings to show the user.

    Attributes
    ----------
    targets
        In the order they are written.
    warnings
        Margins outside the protocol, targets partly cut by the body, PET notes.
    body
        The body mask the targets were cropped to (None: no cropping).
    pet
        What :func:`~rtplan.structures.plan_targets` did with a PET (the report's
        ``"pet"`` section), or None.
    """

    targets: list[Target]
    warnings: list[str] = field(default_factory=list)
    body: NDArray[np.bool_] | None = None
    pet: PETUse | None = None

    def by_name(self, name: str) -> Target:
        """The target called ``name``."""
        for t in self.targets:
            if t.name == name:
                return t
        raise InputError(f"no target {name!r}; targets: {[t.name for t in self.targets]}")

    def report_model(
        self, rois: Sequence[ROIContours] | None = None, rtstruct: str | None = None
    ) -> StructuresReport:
        """The report as a model (:class:`~rtplan.structures.StructuresReport`).

        ``rois`` (:func:`targets_to_rois` of these targets) give each structure's
        ``contour_volume_cc``; without them it is None.
        """
        return StructuresReport(
            structures=structure_records(self.targets, rois),
            warnings=list(self.warnings),
            rtplan_version=__version__,
            rtstruct=rtstruct,
            pet=self.pet,
        )

    def report(
        self, rois: Sequence[ROIContours] | None = None, rtstruct: str | None = None
    ) -> dict:
        """The ``report`` JSON: ``{"structures": [...], "warnings": [...], ...}``.

        Schema ``schemas/structures/structures_report.json``; the ``"pet"`` key is
        present only when a PET was used.
        """
        return self.report_model(rois, rtstruct).model_dump(
            mode="json", exclude={"pet"} if self.pet is None else set())


def _too_small(lesion: Lesion, grid: Grid) -> str:
    """The message for a GTV that covers no sample of the grid (not a body problem)."""
    size = getattr(lesion.source, "diameter_mm", None)
    given = f" (diameter {size:g} mm)" if size is not None else ""
    voxel = " x ".join(f"{v:g}" for v in grid.spacing_mm[::-1])
    return (
        f"lesion {lesion.id}'s GTV{given} is smaller than the CT grid resolves: it "
        f"covers no sample point of the {voxel} mm voxels, so it cannot be represented "
        "(its CTV and PTV would be empty): check its size (diameter_mm is a diameter in "
        "mm) or use a CT with finer voxels"
    )


def _check_crop(
    whole: SignedDistanceField,
    cropped: SignedDistanceField,
    lesion_id: str | None,
    name: str,
    body: str | NDArray[np.bool_] | None,
    inside_skin_mm: float,
    *,
    is_gtv: bool = False,
) -> str | None:
    """A target the body crop removes entirely is an error, a GTV more than half
    outside too; a target partly removed (over 1 %) gives the returned warning."""
    what = f"lesion {lesion_id}'s {name}" if lesion_id is not None else name
    how = "the body outline found on the CT (body='auto')" if isinstance(body, str) else (
        "the body ROI")
    skin = f" pulled {inside_skin_mm:g} mm inside the skin (inside_skin_mm=)" if (
        inside_skin_mm) else ""
    fix = ("check the lesion position (DICOM patient LPS mm) and the body outline (give "
           "the body as an ROI mask, body=mask), or use body='none' for a CT whose field "
           "of view cuts through the patient")
    if cropped.is_empty:
        raise InputError(f"{what} lies entirely outside {how}{skin}, so it would vanish: "
                         f"{fix}")
    full = float(volume_cc(whole))
    lost = full - float(volume_cc(cropped))
    if full > 0 and is_gtv and lost > MAX_OUTSIDE_BODY_FRACTION * full:
        raise InputError(
            f"{what}: {100 * lost / full:.0f} % of its {full:.2f} cc lies outside {how}"
            f"{skin}; a GTV more than {100 * MAX_OUTSIDE_BODY_FRACTION:.0f} % outside the "
            f"patient is refused: {fix}"
        )
    if full > 0 and lost > _WARN_OUTSIDE_BODY_FRACTION * full:
        if not is_gtv:  # margins reaching beyond the skin are cut there, as planned
            return (f"{what}: {100 * lost / full:.0f} % of its {full:.2f} cc lies outside "
                    f"{how}{skin} and was cut off (the written ROI is the cut one)")
        return (f"{what}: {100 * lost / full:.0f} % of its {full:.2f} cc lies outside {how}"
                f"{skin} and was cut; check the lesion position and the body outline")
    return None


def build_targets(
    spec: LesionsFile,
    ct: CTSeries,
    *,
    eni: ENISpec | None = None,
    body: str | NDArray[np.bool_] | None = "auto",
    inside_skin_mm: float = 0.0,
    pet: PETVolume | None = None,
    pet_transform: RigidTransform | NDArray[np.float64] | None = None,
    pet_exclusion: NDArray[np.bool_] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TargetSet:
    """Build GTV/CTV/PTV per lesion, and ENI/SIB volumes, on the planning CT.

    Parameters
    ----------
    spec
        The lesions file (margins from ``spec.margins``; ENI from ``eni`` or
        ``spec.eni``).
    ct
        The planning CT.
    body
        ``"auto"`` (outline from the CT), ``None``/``"none"`` (no cropping, for a CT
        whose field of view cuts through the patient), or a boolean body mask on the CT
        grid.
    inside_skin_mm
        Pull targets this many mm inside the skin (0 = crop at the skin).
    pet
        The PET (:func:`rtplan.imaging.load_pet`) for ``pet_seed`` lesions; their
        ``point_mm`` are in the PET's frame of reference.
    pet_transform
        Rigid PET -> CT transform (:class:`~rtplan.imaging.RigidTransform` or 4 x 4
        matrix), required when the PET and CT frames of reference differ.
    pet_exclusion
        Boolean mask on the PET grid (e.g. bladder) that no PET delineation includes
        or crosses.
    progress
        Called with a short message before each long step.

    Returns
    -------
    TargetSet
        With warnings for margins outside the protocol and for targets partly cut by
        the body crop.

    Raises
    ------
    InputError
        When cropping to the body removes a lesion's GTV (or the ENI CTV) entirely: a
        target must never vanish silently.

    Examples
    --------
    A sphere GTV of radius 5 mm with margins 2 + 3 mm: the CTV and PTV are spheres of
    radius 7 and 10 mm, 4/3 pi r^3 = 0.524, 1.437 and 4.189 cm3.

    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(os.path.join(tempfile.mkdtemp(), "ct"), np.zeros(g.shape), g)
    >>> spec = LesionsFile.model_validate({
    ...     "lesions": [{"id": "L1", "site": "pelvic_node", "source": {
    ...         "kind": "sphere", "center_mm": [0.3, -0.2, 0.5], "diameter_mm": 10}}],
    ...     "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}})
    >>> ts = build_targets(spec, ct, body=None)
    >>> [(t.name, t.source, round(t.volume_cc(), 3)) for t in ts.targets]
    [('GTVn1', 'sphere', 0.524), ('CTVn1', 'GTVn1 + 2 mm', 1.437), ('PTVn1', 'CTVn1 + 3 mm', 4.189)]
    >>> [round(4 / 3 * np.pi * r**3 / 1000, 3) for r in (5, 7, 10)]
    [0.524, 1.437, 4.189]
    """
    say = progress or (lambda _msg: None)
    eni = eni if eni is not None else spec.eni
    warnings = margin_warnings(spec.margins)
    cache: dict[str, StructureSet] = {}
    grid = ct.grid

    body_arr: NDArray[np.bool_] | None
    if isinstance(body, str):
        if body == "auto":
            say("finding the body outline")
            body_arr = body_mask(ct.volume_hu, grid)
        elif body == "none":
            body_arr = None
        else:
            raise InputError(f"body= must be 'auto', 'none' or a mask, got {body!r}")
    elif body is None:
        body_arr = None
    else:
        body_arr = np.asarray(body, dtype=bool)
        if body_arr.shape != grid.shape:
            raise GeometryError(
                f"body mask shape {body_arr.shape} does not match the CT grid {grid.shape}"
            )
    if inside_skin_mm and body_arr is None:
        raise InputError("pulling targets inside the skin (inside_skin_mm=) needs a body "
                         "outline: give body='auto' or body=mask, not body='none'")

    def crop(sdf: SignedDistanceField) -> SignedDistanceField:
        return sdf if body_arr is None else crop_to_mask(sdf, body_arr, inside_skin_mm)

    def check(whole: SignedDistanceField, cropped: SignedDistanceField, lesion_id: str | None,
              name: str, is_gtv: bool) -> None:
        if body_arr is not None:
            w = _check_crop(whole, cropped, lesion_id, name, body, inside_skin_mm,
                            is_gtv=is_gtv)
            if w:
                warnings.append(w)

    ctv_m, ptv_m = spec.margins.ctv_margin_mm, spec.margins.ptv_margin_mm
    targets: list[Target] = []
    numbers: dict[str, int] = {}
    lesion_ptvs: list[Target] = []

    for lesion in spec.lesions:
        cls = site_classifier(lesion.site)
        numbers[cls] = numbers.get(cls, 0) + 1
        k = numbers[cls]
        say(f"lesion {lesion.id}: GTV, CTV (+{_margin_text(ctv_m)}), PTV (+{_margin_text(ptv_m)})")
        delineated = delineate_gtv(lesion, ct, cache, pet, pet_transform=pet_transform,
                                   pet_exclusion=pet_exclusion)
        warnings.extend(delineated.warnings)
        gtv = delineated.sdf
        if gtv.is_empty:
            raise InputError(_too_small(lesion, grid))
        ctv = expand(gtv, _margin_arg(ctv_m))
        ptv = expand(ctv, _margin_arg(ptv_m))
        ind = site_indicator(lesion.site)
        gname, cname, pname = (target_name(t, cls, k, indicator=ind)
                               for t in ("GTV", "CTV", "PTV"))
        kind = lesion.source.kind
        gtv_cropped = crop(gtv)
        check(gtv, gtv_cropped, lesion.id, gname, True)
        ptv_cropped = crop(ptv)
        if not gtv_cropped.is_empty:
            check(ptv, ptv_cropped, lesion.id, pname, False)
        ctv_chain = f"{gname} + {_margin_text(ctv_m)} (CTV)"
        made = [
            Target(gname, RoiType.GTV, gtv_cropped, lesion.id, kind, "",
                   f"lesion {lesion.id}, {lesion.site}: {kind}"),
            Target(cname, RoiType.CTV, crop(ctv), lesion.id, f"{gname} + {_margin_text(ctv_m)}",
                   _margin_text(ctv_m), ctv_chain),
            Target(pname, RoiType.PTV, ptv_cropped, lesion.id,
                   f"{cname} + {_margin_text(ptv_m)}", _margin_text(ptv_m),
                   f"{ctv_chain} + {_margin_text(ptv_m)} (PTV)"),
        ]
        targets += made
        lesion_ptvs.append(made[2])

    if eni is not None:
        if eni.ctv is None:
            raise InputError(
                "ENI needs the elective nodal CTV: give eni= with its ctv (an RTSTRUCT ROI "
                "or a NIfTI mask), or an 'eni': {'ctv': ...} section in the lesions file"
            )
        say("elective nodal CTV and PTV")
        # an RTSTRUCT CTV from its polygons (slab stack) as lesion GTVs are: through CT
        # voxels the PTV_ENI of the demo atlas came out 5 % too large (404.8 cc against
        # 385.6 cc from a shapely expansion of the slabs); a NIfTI mask is its voxels
        ctv_eni = (rtstruct_sdf(eni.ctv, ct, cache) if isinstance(eni.ctv, RTStructSource)
                   else sdf_from_mask(source_mask(eni.ctv, ct, cache), grid))
        ptv_eni = crop(expand(ctv_eni, _margin_arg(eni.margin_mm)))
        dose = eni.elective_dose_gy
        cname = target_name("CTV", "n", dose_gy=dose)
        pname = target_name("PTV", "n", dose_gy=dose)
        eni_src = eni.ctv.roi if isinstance(eni.ctv, RTStructSource) else Path(eni.ctv.path).name
        ctv_eni_cropped = crop(ctv_eni)
        check(ctv_eni, ctv_eni_cropped, None, cname, False)
        targets.append(Target(cname, RoiType.CTV, ctv_eni_cropped, None, f"ENI CTV ({eni_src})"))
        targets.append(
            Target(pname, RoiType.PTV, ptv_eni, None, f"{cname} + {_margin_text(eni.margin_mm)}",
                   _margin_text(eni.margin_mm),
                   f"{cname} ({eni_src}) + {_margin_text(eni.margin_mm)} (PTV)")
        )
        if eni.margin_mm != 5.0 and not isinstance(eni.margin_mm, AnisotropicMargin):
            warnings.append(
                f"ENI PTV margin {eni.margin_mm:g} mm differs from the protocol's 5 mm"
            )
        if eni.sib:
            say("SIB: boost PTV and elective PTV")
            boost = union(*[t.sdf for t in lesion_ptvs])
            bname = target_name("PTV", dose_gy=eni.boost_dose_gy)
            ename = target_name("PTV", dose_gy=eni.elective_dose_gy)
            if bname == ename:
                raise InputError("boost and elective doses must differ for SIB names")
            elective = difference(ptv_eni, boost, gap_mm=eni.gap_mm)
            gap = f" - {eni.gap_mm:g} mm gap" if eni.gap_mm > 0 else ""
            targets.append(Target(bname, RoiType.PTV, boost, None,
                                  "union(" + ", ".join(t.name for t in lesion_ptvs) + ")"))
            targets.append(Target(ename, RoiType.PTV, elective, None, f"{pname} - {bname}{gap}"))

    if body_arr is not None:
        targets.append(
            Target("External", RoiType.EXTERNAL, VoxelMask(body_arr, grid), None,
                   "body outline" if isinstance(body, str) else "body ROI")
        )
    return TargetSet(targets=targets, warnings=warnings, body=body_arr)


#: DICOM ROIDescription (3006,0028) is a Long String: at most 64 characters
_MAX_DESCRIPTION = 64


def roi_description(derivation: str, version: str = __version__) -> str:
    """ROI description: how the structure was made, and the rtplan version, in 64 characters.

    The version is always kept. A derivation too long for the rest is written without
    spaces and slashes (``R1L2A3P4S5I6mm``), and if still too long, shortened in the
    middle with ``...``.

    Examples
    --------
    >>> roi_description("GTVn1 + 3 mm (CTV) + 3 mm (PTV)", "0.1.0")
    'GTVn1 + 3 mm (CTV) + 3 mm (PTV); rtplan 0.1.0'
    >>> d = roi_description("GTVn1 + R1/L2/A3/P4/S5/I6 mm (CTV) + R1/L2/A3/P4/S5/I6 mm (PTV)",
    ...                     "0.1.0")
    >>> d, len(d)
    ('GTVn1+R1L2A3P4S5I6mm(CTV)+R1L2A3P4S5I6mm(PTV); rtplan 0.1.0', 59)
    >>> roi_description("union(" + ", ".join(f"PTVn{k}" for k in range(1, 13)) + ")", "0.1.0")
    'union(PTVn1, PTVn2, PTVn...PTVn10, PTVn11, PTVn12); rtplan 0.1.0'
    """
    suffix = f"; rtplan {version}"
    room = _MAX_DESCRIPTION - len(suffix)
    text = derivation
    if len(text) > room:
        text = text.replace(" ", "").replace("/", "")
    if len(text) > room:
        keep = room - 3
        text = derivation[: (keep + 1) // 2] + "..." + derivation[len(derivation) - keep // 2:]
    return text + suffix


def targets_to_rois(
    targets: TargetSet | Sequence[Target],
    *,
    progress: Callable[[str], None] | None = None,
) -> list[ROIContours]:
    """Contour every target on the CT slices, with TG-263 names, ROI types and colours.

    Examples
    --------
    The targets of a sphere GTV (centre z = 0.5 mm, radius 5 mm) grown by 2 + 3 mm, on
    CT slices every 3 mm (z = 0, +-3, +-6, ...): the GTV (z -4.5..5.5 mm) crosses 3
    slices, the CTV (radius 7 mm) 5, the PTV (radius 10 mm) 7.

    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(os.path.join(tempfile.mkdtemp(), "ct"), np.zeros(g.shape), g)
    >>> spec = LesionsFile.model_validate({
    ...     "lesions": [{"id": "L1", "site": "pelvic_node", "source": {
    ...         "kind": "sphere", "center_mm": [0.3, -0.2, 0.5], "diameter_mm": 10}}],
    ...     "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}})
    >>> rois = targets_to_rois(build_targets(spec, ct, body=None))
    >>> [(r.name, r.roi_type, len(r.contours)) for r in rois]
    [('GTVn1', 'GTV', 3), ('CTVn1', 'CTV', 5), ('PTVn1', 'PTV', 7)]
    >>> rois[2].description
    'GTVn1 + 2 mm (CTV) + 3 mm (PTV); rtplan ...'
    """
    say = progress or (lambda _msg: None)
    items = targets.targets if isinstance(targets, TargetSet) else list(targets)
    counters: dict[RoiType, int] = {}
    rois = []
    for t in items:
        say(f"contouring {t.name}")
        i = counters.get(t.roi_type, 0)
        counters[t.roi_type] = i + 1
        rois.append(
            ROIContours(
                name=t.name,
                roi_type=str(t.roi_type),
                color=colour_for(t.roi_type, i),
                contours=t.contours(),
                description=roi_description(t.chain or t.source),
            )
        )
    return rois
