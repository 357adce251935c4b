"""Target construction: GTV -> CTV -> PTV per lesion, ENI with SIB, body cropping.

The protocol (paper in ``shared/papers``): every PSMA-positive lesion is a GTV;
CTV = GTV + 2-3 mm; PTV = CTV + 2-3 mm; elective nodal irradiation (ENI) gets a 5 mm
PTV margin, with a simultaneous integrated boost (SIB) to the lesions. With SIB the boost
PTV is the union of the lesion PTVs and the elective PTV is PTV_ENI minus the boost PTV
(optionally minus a gap).

All geometry is carried as signed distance fields on the planning CT grid (see
:class:`~rtplan.structures.SignedDistanceField`): margins are exact 3D Euclidean
expansions in mm, and contours are extracted on every CT slice plane at sub-voxel
accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtplan import __version__
from rtplan._shared.optional import import_optional
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform
from rtplan.structures.body import body_mask
from rtplan.structures.contour import ROIContours
from rtplan.structures.naming import (
    RoiType,
    colour_for,
    site_classifier,
    site_indicator,
    target_name,
)
from rtplan.structures.spec import (
    AnisotropicMargin,
    ENISpec,
    Lesion,
    LesionsFile,
    MaskSource,
    PETSeedSource,
    RTStructSource,
    SphereSource,
    margin_warnings,
)

__all__ = [
    "Target",
    "TargetSet",
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


def _ops():
    # the geometry kernels live in rtplan.structures (margins, booleans, contouring)
    import rtplan.structures as s

    return s


def _margin_arg(m: Margin) -> float | tuple[float, ...]:
    return m.as_tuple() if isinstance(m, AnisotropicMargin) else float(m)


def _margin_text(m: Margin) -> str:
    if isinstance(m, AnisotropicMargin):
        return "R{:g}/L{:g}/A{:g}/P{:g}/S{:g}/I{:g} mm".format(*m.as_tuple())
    return f"{m:g} mm"


@dataclass(frozen=True, eq=False)
class Target:
    """One target structure.

    Attributes
    ----------
    name
        TG-263 name (``GTVn1``, ``PTV_6120``, ...).
    roi_type
        RTROIInterpretedType.
    sdf
        The structure as a signed distance field on the CT grid.
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
    sdf: object
    lesion_id: str | None
    source: str
    margin: str = ""
    chain: str = ""

    def volume_cc(self) -> float:
        """Volume in cm^3."""
        return float(_ops().volume_cc(self.sdf))


@dataclass(frozen=True, eq=False)
class TargetSet:
    """The targets built for one patient, with warnings to show the user."""

    targets: list[Target]
    warnings: list[str] = field(default_factory=list)
    body: NDArray[np.bool_] | None = None

    def by_name(self, name: str) -> Target:
        """The target called ``name``."""
        for t in self.targets:
            if t.name == name:
                return t
        raise InputError(f"no target {name!r}; targets: {[t.name for t in self.targets]}")

    def report(self) -> dict:
        """The ``--report`` JSON: ``{"structures": [...], "warnings": [...]}``."""
        return {
            "structures": [
                {
                    "name": t.name,
                    "roi_type": str(t.roi_type),
                    "volume_cc": t.volume_cc(),
                    "lesion_id": t.lesion_id,
                    "source": t.source,
                    "margin": t.margin,
                }
                for t in self.targets
            ],
            "warnings": list(self.warnings),
            "rtplan_version": __version__,
        }


# ----------------------------------------------------------------------------- sources
def load_mask_source(src: MaskSource, grid: Grid) -> NDArray[np.bool_]:
    """A NIfTI label map on the CT grid as a boolean ``[slice, row, column]`` mask.

    The NIfTI affine (RAS) must map the image onto the CT grid by an axis permutation
    and flips with the same voxel centres (within 0.05 mm); otherwise resample the mask
    onto the planning CT first. Needs nibabel (``pip install 'rtplan[nifti]'``).

    Examples
    --------
    A label map written in NIfTI's (x, y, z) order and RAS affine, read back onto the
    ``[slice, row, column]`` LPS grid; ``label`` picks one label:

    >>> import os, tempfile
    >>> import nibabel as nib
    >>> g = Grid((4, 6, 8), origin_mm=(-3.5, -2.5, 0), spacing_mm=(2, 1, 1))
    >>> labels = np.zeros(g.shape, np.uint8)
    >>> labels[1:3, 2:4, 3:6] = 2; labels[0, 0, 0] = 1          # 2 x 2 x 3 voxels of label 2
    >>> ras = np.diag([-1.0, -1.0, 2.0, 1.0]); ras[:3, 3] = [3.5, 2.5, 0.0]   # LPS -> RAS
    >>> path = os.path.join(tempfile.mkdtemp(), "gtv.nii.gz")
    >>> nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), ras), path)
    >>> m = load_mask_source(MaskSource(kind="mask", path=path, label=2), g)
    >>> int(m.sum()), bool((m == (labels == 2)).all())
    (12, True)
    """
    nib = import_optional("nibabel", feature="reading mask (NIfTI) lesion sources")
    path = Path(src.path)
    if not path.is_file():
        raise InputError(f"mask file '{path}' does not exist")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for bad files
        raise InputError(f"cannot read mask '{path}' as NIfTI: {exc}") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"mask '{path}' must be 3D, got shape {data.shape}")
    labels = (data == src.label) if src.label is not None else (data != 0)
    # voxel index (i, j, k) of NIfTI -> LPS of each axis step and origin
    aff = np.asarray(img.affine, dtype=float)
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    steps = ras_to_lps @ aff[:3, :3]  # columns: LPS step per NIfTI axis
    origin = ras_to_lps @ aff[:3, 3]
    # express in grid local frame (mm along slice, row, column axes)
    local_steps = grid.direction @ steps  # rows: grid axes, cols: nifti axes
    spacing = np.asarray(grid.spacing_mm)
    perm = [-1, -1, -1]
    flips = [False, False, False]
    for nax in range(3):
        col = local_steps[:, nax]
        gax = int(np.argmax(np.abs(col)))
        if not np.allclose(np.delete(col, gax), 0, atol=1e-3) or not np.isclose(
            abs(col[gax]), spacing[gax], atol=0.05
        ):
            raise GeometryError(
                f"mask '{path}' is not on the planning CT grid (its axes/spacing differ): "
                "resample it onto the CT (nearest neighbour) and try again"
            )
        perm[gax] = nax
        flips[gax] = col[gax] < 0
    if sorted(perm) != [0, 1, 2] or not grid.is_regular:
        raise GeometryError(f"mask '{path}' axes do not map one-to-one onto the CT grid")
    arr = np.transpose(labels, perm)
    for gax in range(3):
        if flips[gax]:
            arr = np.flip(arr, axis=gax)
    if arr.shape != grid.shape:
        raise GeometryError(
            f"mask '{path}' has shape {arr.shape} on the CT axes, the CT grid {grid.shape}: "
            "resample it onto the planning CT"
        )
    # the voxel that lands at index [0,0,0] must sit at the grid origin
    first = np.array([0 if not flips[g] else grid.shape[g] - 1 for g in range(3)])
    nifti_index = np.zeros(3)
    for g in range(3):
        nifti_index[perm[g]] = first[g]
    pos = origin + steps @ nifti_index
    if not np.allclose(pos, grid.origin_mm, atol=0.05):
        raise GeometryError(
            f"mask '{path}' is offset from the planning CT by "
            f"{np.round(pos - grid.origin_mm, 2).tolist()} mm: resample it onto the CT"
        )
    return np.ascontiguousarray(arr, dtype=bool)


def source_mask(
    src: RTStructSource | MaskSource,
    ct: CTSeries,
    cache: dict | None = None,
) -> NDArray[np.bool_]:
    """Mask of an ROI (RTSTRUCT) or label map (NIfTI) on the CT grid.

    RTSTRUCT contours are rasterised with the voxel-centre rule; ``cache`` (path ->
    read RTSTRUCT) avoids reading one file again for several sources. An empty mask
    raises :class:`~rtplan.errors.InputError`.

    Examples
    --------
    A 10 x 10 mm square ROI on slices 1-3 covers the 10 x 10 voxel centres of each:

    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> from rtplan.structures import PlanarContour, write_rtstruct
    >>> d = tempfile.mkdtemp()
    >>> g = Grid((5, 12, 12), origin_mm=(-5.5, -5.5, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(os.path.join(d, "ct"), np.zeros(g.shape), g)
    >>> sq = np.array([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]])
    >>> node = [PlanarContour(k, np.column_stack([sq, np.full(4, 2.0 * k)])) for k in (1, 2, 3)]
    >>> rs = write_rtstruct(os.path.join(d, "RS.dcm"), ct,
    ...                     [ROIContours("Node", "GTV", (255, 0, 0), node)])
    >>> m = source_mask(RTStructSource(kind="rtstruct", path=str(rs), roi="Node"), ct)
    >>> int(m.sum()), sorted({int(k) for k in np.argwhere(m)[:, 0]})
    (300, [1, 2, 3])
    """
    from rtplan.structures.rtstruct import read_rtstruct, rtstruct_masks

    if isinstance(src, MaskSource):
        mask = load_mask_source(src, ct.grid)
    else:
        cache = {} if cache is None else cache
        path = str(Path(src.path))
        if not os.path.isfile(path):
            raise InputError(f"RTSTRUCT '{path}' does not exist")
        if path not in cache:
            cache[path] = read_rtstruct(path)
        mask = rtstruct_masks(cache[path], ct, [src.roi])[cache[path].roi(src.roi).name]
    if not mask.any():
        where = src.roi if isinstance(src, RTStructSource) else src.path
        raise InputError(f"source {where!r} is empty on the planning CT grid")
    return mask


def _as_transform(transform: object) -> RigidTransform:
    if isinstance(transform, RigidTransform):
        return transform
    return RigidTransform(np.asarray(transform, dtype=float), source="4 x 4 matrix")


def resample_mask_nearest(
    mask: NDArray[np.bool_],
    source: Grid,
    target: Grid,
    transform: RigidTransform | NDArray[np.float64] | None = None,
) -> NDArray[np.bool_]:
    """Resample a boolean mask to another grid, optionally in another frame of reference.

    Each target voxel takes the value of the source voxel containing its centre
    (nearest neighbour): the centre is mapped back into the source frame with the
    inverse of ``transform``, then to a source index. Only the target voxels within the
    bounding box of the mask's box (plus one source voxel) mapped forward are visited.

    Parameters
    ----------
    mask
        Boolean ``[slice, row, column]`` mask on ``source``.
    source, target
        Grids of the mask and of the result (LPS mm, each in its own frame).
    transform
        Rigid transform (:class:`~rtplan.imaging.RigidTransform` or a 4 x 4 matrix)
        mapping *source-frame* points to *target-frame* points, e.g. PET -> CT. ``None``:
        both grids are in the same frame of reference.

    Returns
    -------
    numpy.ndarray
        Boolean mask on ``target``.

    Examples
    --------
    >>> src = Grid((4, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    >>> dst = Grid((8, 8, 8), origin_mm=(-1, -1, -1), spacing_mm=(2, 2, 2))
    >>> m = np.zeros(src.shape, bool); m[1, 1, 1] = True      # box 2..6 mm on each axis
    >>> int(resample_mask_nearest(m, src, dst).sum())          # centres 3 and 5 mm: 2^3
    8
    >>> shift = np.eye(4); shift[2, 3] = 4.0                   # source z + 4 mm = target z
    >>> out = resample_mask_nearest(m, src, dst, shift)
    >>> np.argwhere(out)[:, 0].min(), np.argwhere(out)[:, 0].max()   # slices at z 7, 9 mm
    (np.int64(4), np.int64(5))
    """
    m = np.asarray(mask, dtype=bool)
    out = np.zeros(target.shape, dtype=bool)
    idx = np.argwhere(m)
    if idx.size == 0:
        return out
    tf = None if transform is None else _as_transform(transform)
    lo, hi = idx.min(axis=0) - 1.0, idx.max(axis=0) + 1.0
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    world = source.index_to_world(corners)
    if tf is not None:
        world = tf.apply(world)
    t_idx = target.world_to_index(world)
    t_lo = np.clip(np.floor(t_idx.min(axis=0)).astype(int), 0, np.array(target.shape) - 1)
    t_hi = np.clip(np.ceil(t_idx.max(axis=0)).astype(int) + 1, 0, np.array(target.shape))
    if np.any(t_hi <= t_lo):
        return out
    kk, ii, jj = np.meshgrid(*[np.arange(a, b) for a, b in zip(t_lo, t_hi, strict=True)],
                             indexing="ij")
    pts = target.index_to_world(np.stack([kk, ii, jj], axis=-1).astype(float))
    if tf is not None:
        pts = tf.inverse().apply(pts)
    s_idx = np.rint(source.world_to_index(pts)).astype(int)
    inside = np.all((s_idx >= 0) & (s_idx < np.array(source.shape)), axis=-1)
    vals = np.zeros(inside.shape, dtype=bool)
    si = s_idx[inside]
    vals[inside] = m[si[:, 0], si[:, 1], si[:, 2]]
    out[t_lo[0]:t_hi[0], t_lo[1]:t_hi[1], t_lo[2]:t_hi[2]] = vals
    return out


def pet_to_ct_transform(
    pet: object, ct: CTSeries, transform: RigidTransform | NDArray[np.float64] | None
) -> RigidTransform | None:
    """The PET -> CT transform to use, checked against both frames of reference.

    ``None`` when the PET and the CT share a frame (or one has no FrameOfReferenceUID)
    and no transform is given. A transform stated CT -> PET (e.g. a matrix file with
    ``"from_frame": "CT"``) is inverted; one relating other frames is refused.

    Raises
    ------
    GeometryError
        Different frames and no transform, or a transform for other frames.

    Examples
    --------
    >>> import datetime as dt, os, tempfile
    >>> from rtplan.imaging import write_ct_series, write_pet_series
    >>> d = tempfile.mkdtemp()
    >>> g = Grid((2, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    >>> ct = write_ct_series(os.path.join(d, "ct"), np.zeros(g.shape), g)
    >>> pet = write_pet_series(                                 # a new frame of reference
    ...     os.path.join(d, "pet"), np.ones(g.shape), g, weight_kg=80, injected_dose_bq=150e6,
    ...     injection_datetime=dt.datetime(2025, 3, 4, 9),
    ...     series_datetime=dt.datetime(2025, 3, 4, 10), nuclide="Ga68")
    >>> pet_to_ct_transform(pet, ct, None)
    Traceback (most recent call last):
    ...
    rtplan.errors.GeometryError: PET (FrameOfReferenceUID ...) ... different frames of reference...
    >>> tf = RigidTransform.translation([0, 0, 5], "CT", "PET")   # stated CT -> PET
    >>> pet_to_ct_transform(pet, ct, tf).apply([0, 0, 0]).tolist()   # inverted: PET -> CT
    [0.0, 0.0, -5.0]
    """
    pet_for = str(getattr(pet, "frame_of_reference_uid", "") or "")
    ct_for = ct.frame_of_reference_uid or ""
    if transform is None:
        if pet_for and ct_for and pet_for != ct_for:
            raise GeometryError(
                f"PET (FrameOfReferenceUID {pet_for}) and planning CT ({ct_for}) are in "
                "different frames of reference: give the rigid PET -> CT registration, a "
                "DICOM Spatial Registration (--registration REG.dcm) or a 4 x 4 matrix "
                "(--pet-to-ct-matrix FILE; library: pet_transform=)"
            )
        return None
    return _as_transform(transform).oriented(pet_for, ct_for, moving_label="PET",
                                             fixed_label="CT")


def _pet_gtv(
    src: PETSeedSource,
    lesion_id: str,
    ct: CTSeries,
    pet,
    transform: RigidTransform | NDArray[np.float64] | None = None,
    exclusion_mask: NDArray[np.bool_] | None = None,
    notes: list[str] | None = None,
) -> object:
    """GTV field of a pet_seed lesion: the union of its PET voxel boxes, in CT space.

    Built on the working lattice (:func:`~rtplan.structures.sdf_from_foreign_mask`), not
    on CT voxels: no CT-voxel quantisation of the 4 mm PET boxes.
    """
    from rtplan.imaging.pet_lesions import segment_seed
    from rtplan.structures._sdf import sdf_from_foreign_mask

    if pet is None:
        raise InputError(
            f"lesion {lesion_id} is a pet_seed source: give the PET series (--pet DIR)"
        )
    tf = pet_to_ct_transform(pet, ct, transform)
    seg = segment_seed(pet.suv, pet.grid, src.point_mm, method=src.method, level=src.level,
                       max_radius_mm=src.max_radius_mm, background_suv=src.background_suv,
                       exclusion_mask=exclusion_mask)
    if notes is not None:
        same = pet.frame_of_reference_uid and pet.frame_of_reference_uid == (
            ct.frame_of_reference_uid)
        if tf is not None and same and not tf.is_identity:
            notes.append(f"lesion {lesion_id}: PET and CT share FrameOfReferenceUID "
                         f"{ct.frame_of_reference_uid}, yet the given PET -> CT transform "
                         f"({tf!r}) was applied; check it is wanted")
        if seg.excluded_voxels:
            notes.append(f"lesion {lesion_id}: {seg.excluded_voxels} hot PET voxels left out "
                         "by the exclusion mask")
        if seg.touches_radius:
            notes.append(f"lesion {lesion_id}: the PET delineation reaches max_radius_mm "
                         f"{src.max_radius_mm:g} and was cut by it; check it")
    gtv = sdf_from_foreign_mask(seg.mask, pet.grid, ct.grid, tf)
    if gtv.is_empty:
        raise GeometryError(
            f"lesion {lesion_id}: the PET delineation lies outside the planning CT"
            + ("" if tf is None else " after the PET -> CT registration: check its direction")
        )
    return gtv


def lesion_gtv(
    lesion: Lesion,
    ct: CTSeries,
    cache: dict | None = None,
    pet: object | None = None,
    *,
    pet_transform: RigidTransform | NDArray[np.float64] | None = None,
    pet_exclusion: NDArray[np.bool_] | None = None,
    notes: list[str] | None = None,
) -> object:
    """The GTV of a lesion as a signed distance field on the CT grid.

    ``pet`` (a :class:`~rtplan.imaging.PETVolume`) is needed for ``pet_seed`` sources:
    the lesion is delineated on the native PET grid from ``point_mm`` (PET frame LPS
    mm), outside ``pet_exclusion`` (boolean mask on the PET grid), and the GTV is the
    union of the delineated PET voxel boxes mapped into CT space, sampled on the
    distance field's ~0.5 mm working lattice
    (:func:`~rtplan.structures.sdf_from_foreign_mask`; no resampling onto CT voxels,
    whose 1.5 mm pixels would quantise 4 mm PET boxes). When the PET and CT frames of
    reference differ, ``pet_transform`` (PET -> CT, see
    :func:`~rtplan.imaging.read_spatial_registration`) is required. Warnings (voxels
    excluded, radius reached) are appended to ``notes``.

    Examples
    --------
    A sphere of diameter 10 mm: its volume is 4/3 pi 5^3 = 523.6 mm3 = 0.524 cm3.

    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> from rtplan.structures import volume_cc
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(os.path.join(tempfile.mkdtemp(), "ct"), np.zeros(g.shape), g)
    >>> lesion = Lesion(id="L1", site="pelvic_node", source={
    ...     "kind": "sphere", "center_mm": (0.3, -0.2, 0.5), "diameter_mm": 10})
    >>> round(volume_cc(lesion_gtv(lesion, ct)), 3)
    0.524
    """
    s = _ops()
    src = lesion.source
    if isinstance(src, PETSeedSource):
        return _pet_gtv(src, lesion.id, ct, pet, pet_transform, pet_exclusion, notes)
    if isinstance(src, SphereSource):
        idx = ct.grid.world_to_index(np.asarray(src.center_mm))
        if np.any(idx < -0.5) or np.any(idx > np.asarray(ct.grid.shape) - 0.5):
            raise GeometryError(
                f"lesion {lesion.id}: centre {list(src.center_mm)} mm lies outside the "
                "planning CT: check the coordinates (DICOM patient LPS, mm)"
            )
        return s.sdf_from_sphere(ct.grid, center_mm=src.center_mm, radius_mm=src.diameter_mm / 2)
    return s.sdf_from_mask(source_mask(src, ct, cache), ct.grid)


# ----------------------------------------------------------------------------- pipeline
def _check_crop(
    whole: object,
    cropped: object,
    lesion_id: str | None,
    name: str,
    body: object,
    inside_skin_mm: float,
    warnings: list[str],
) -> None:
    """A target the body crop removes is an error; a partly removed one a warning."""
    s = _ops()
    what = f"lesion {lesion_id}'s {name}" if lesion_id is not None else name
    how = "the body outline found on the CT (--body auto)" if isinstance(body, str) else (
        "the body ROI")
    skin = f" pulled {inside_skin_mm:g} mm inside the skin" if inside_skin_mm else ""
    if cropped.is_empty:
        raise InputError(
            f"{what} lies entirely outside {how}{skin}, so it would vanish: check the "
            "lesion position (DICOM patient LPS mm) and the body outline (give the body "
            "as an ROI with --body RS.dcm:ROI), or use --body none for a CT whose field of "
            "view cuts through the patient"
        )
    full = float(s.volume_cc(whole))
    lost = full - float(s.volume_cc(cropped))
    if full > 0 and lost > 0.01 * full:
        warnings.append(
            f"{what}: {100 * lost / full:.0f} % of its {full:.2f} cc lies outside {how}"
            f"{skin} and was cut; check the lesion position and the body outline"
        )


def build_targets(
    spec: LesionsFile,
    ct: CTSeries,
    *,
    eni: ENISpec | None = None,
    body: str | NDArray[np.bool_] | None = "auto",
    inside_skin_mm: float = 0.0,
    pet: object | None = None,
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
    s = _ops()
    say = progress or (lambda _msg: None)
    eni = eni if eni is not None else spec.eni
    warnings = margin_warnings(spec.margins)
    cache: dict = {}
    grid = ct.grid

    body_arr: NDArray[np.bool_] | None
    if isinstance(body, str):
        if body == "auto":
            say("finding the body outline")
            body_arr = body_mask(ct.volume_hu, grid)
        elif body == "none":
            body_arr = None
        else:
            raise InputError(f"body must be 'auto', 'none' or a mask, got {body!r}")
    elif body is None:
        body_arr = None
    else:
        body_arr = np.asarray(body, dtype=bool)
        if body_arr.shape != grid.shape:
            raise GeometryError(
                f"body mask shape {body_arr.shape} does not match the CT grid {grid.shape}"
            )
    if inside_skin_mm and body_arr is None:
        raise InputError("pulling targets inside the skin needs a body outline (not 'none')")

    def crop(sdf):
        return sdf if body_arr is None else s.crop_to_mask(sdf, body_arr, inside_skin_mm)

    ctv_m, ptv_m = spec.margins.ctv_margin_mm, spec.margins.ptv_margin_mm
    targets: list[Target] = []
    numbers: dict[str, int] = {}
    lesion_ptvs: list[Target] = []

    for lesion in spec.lesions:
        cls = site_classifier(lesion.site)
        numbers[cls] = numbers.get(cls, 0) + 1
        k = numbers[cls]
        say(f"lesion {lesion.id}: GTV, CTV (+{_margin_text(ctv_m)}), PTV (+{_margin_text(ptv_m)})")
        gtv = lesion_gtv(lesion, ct, cache, pet, pet_transform=pet_transform,
                         pet_exclusion=pet_exclusion, notes=warnings)
        ctv = s.expand(gtv, _margin_arg(ctv_m))
        ptv = s.expand(ctv, _margin_arg(ptv_m))
        ind = site_indicator(lesion.site)
        gname, cname, pname = (target_name(t, cls, k, indicator=ind)
                               for t in ("GTV", "CTV", "PTV"))
        kind = lesion.source.kind
        gtv_cropped = crop(gtv)
        if body_arr is not None:
            _check_crop(gtv, gtv_cropped, lesion.id, gname, body, inside_skin_mm, warnings)
        ctv_chain = f"{gname} + {_margin_text(ctv_m)} (CTV)"
        made = [
            Target(gname, RoiType.GTV, gtv_cropped, lesion.id, kind, "",
                   f"lesion {lesion.id}, {lesion.site}: {kind}"),
            Target(cname, RoiType.CTV, crop(ctv), lesion.id, f"{gname} + {_margin_text(ctv_m)}",
                   _margin_text(ctv_m), ctv_chain),
            Target(pname, RoiType.PTV, crop(ptv), lesion.id, f"{cname} + {_margin_text(ptv_m)}",
                   _margin_text(ptv_m), f"{ctv_chain} + {_margin_text(ptv_m)} (PTV)"),
        ]
        targets += made
        lesion_ptvs.append(made[2])

    if eni is not None:
        if eni.ctv is None:
            raise InputError(
                "ENI needs the elective nodal CTV: give --eni-ctv RS.dcm:ROI (or a .nii.gz "
                "mask), or an 'eni': {'ctv': ...} section in the lesions file"
            )
        say("elective nodal CTV and PTV")
        ctv_eni = s.sdf_from_mask(source_mask(eni.ctv, ct, cache), grid)
        ptv_eni = crop(s.expand(ctv_eni, _margin_arg(eni.margin_mm)))
        dose = eni.elective_dose_gy
        cname = target_name("CTV", "n", dose_gy=dose)
        pname = target_name("PTV", "n", dose_gy=dose)
        eni_src = eni.ctv.roi if isinstance(eni.ctv, RTStructSource) else Path(eni.ctv.path).name
        ctv_eni_cropped = crop(ctv_eni)
        if body_arr is not None:
            _check_crop(ctv_eni, ctv_eni_cropped, None, cname, body, inside_skin_mm, warnings)
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
            boost = s.union(*[t.sdf for t in lesion_ptvs])
            bname = target_name("PTV", dose_gy=eni.boost_dose_gy)
            ename = target_name("PTV", dose_gy=eni.elective_dose_gy)
            if bname == ename:
                raise InputError("boost and elective doses must differ for SIB names")
            elective = s.difference(ptv_eni, boost, gap_mm=eni.gap_mm)
            gap = f" - {eni.gap_mm:g} mm gap" if eni.gap_mm > 0 else ""
            targets.append(Target(bname, RoiType.PTV, boost, None,
                                  "union(" + ", ".join(t.name for t in lesion_ptvs) + ")"))
            targets.append(Target(ename, RoiType.PTV, elective, None, f"{pname} - {bname}{gap}"))

    if body_arr is not None:
        targets.append(
            Target("External", RoiType.EXTERNAL, s.sdf_from_mask(body_arr, grid), None,
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
    s = _ops()
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
                contours=s.contours_from_sdf(t.sdf),
                description=roi_description(t.chain or t.source),
            )
        )
    return rois
