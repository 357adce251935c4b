"""From a lesion source to a mask or a distance field on the planning CT grid.

The handlers of the lesions file's source kinds (:mod:`rtplan.lesions`): NIfTI label
maps (:func:`load_mask_source`), RTSTRUCT ROIs and masks on the CT
(:func:`source_mask`), a lesion's GTV whatever its source (:func:`delineate_gtv`), and
masks moved between grids and frames of reference (:func:`resample_mask_nearest`,
:func:`pet_to_ct_transform`). A lower layer: it never imports the target pipeline
(:mod:`rtplan.structures.targets`, :mod:`rtplan.structures.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtplan._shared.jsonio import check_input_file
from rtplan._shared.optional import import_optional
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform, as_rigid_transform, transform_between
from rtplan.lesions import Lesion, MaskSource, PETSeedSource, RTStructSource, SphereSource
from rtplan.structures._sdf import SignedDistanceField, sdf_from_foreign_mask, sdf_from_mask
from rtplan.structures.shapes import sdf_from_sphere

if TYPE_CHECKING:
    from rtplan.imaging.pet import PETVolume
    from rtplan.structures.rtstruct import StructureSet

__all__ = [
    "LesionGTV",
    "delineate_gtv",
    "lesion_gtv",
    "load_mask_source",
    "pet_to_ct_transform",
    "resample_mask_nearest",
    "rtstruct_sdf",
    "source_mask",
]


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
    path = check_input_file(src.path, "mask file")
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
    >>> from rtplan.structures import PlanarContour, ROIContours, write_rtstruct
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
        path = str(check_input_file(src.path, "RTSTRUCT"))
        if path not in cache:
            cache[path] = read_rtstruct(path)
        mask = rtstruct_masks(cache[path], ct, [src.roi])[cache[path].roi(src.roi).name]
    if not mask.any():
        where = src.roi if isinstance(src, RTStructSource) else src.path
        raise InputError(f"source {where!r} is empty on the planning CT grid")
    return mask


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
    tf = None if transform is None else as_rigid_transform(transform)
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
    pet: PETVolume, ct: CTSeries, transform: RigidTransform | NDArray[np.float64] | None
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
    pet_for = pet.frame_of_reference_uid or ""
    ct_for = ct.frame_of_reference_uid or ""
    if transform is None:
        if pet_for and ct_for and pet_for != ct_for:
            raise GeometryError(
                f"PET (FrameOfReferenceUID {pet_for}) and planning CT ({ct_for}) are in "
                "different frames of reference: give the rigid PET -> CT registration "
                "(registration= or pet_transform=: a DICOM Spatial Registration or a 4 x 4 "
                "matrix)"
            )
        return None
    return transform_between(pet_for, ct_for, transform=transform, moving_label="PET",
                             fixed_label="CT")


def _pet_gtv(
    src: PETSeedSource,
    lesion_id: str,
    ct: CTSeries,
    pet: PETVolume | None,
    transform: RigidTransform | NDArray[np.float64] | None = None,
    exclusion_mask: NDArray[np.bool_] | None = None,
) -> LesionGTV:
    """GTV field of a pet_seed lesion: the union of its PET voxel boxes, in CT space.

    Built on the working lattice (:func:`~rtplan.structures.sdf_from_foreign_mask`), not
    on CT voxels: no CT-voxel quantisation of the 4 mm PET boxes.
    """
    from rtplan.imaging.pet_lesions import segment_seed

    if pet is None:
        raise InputError(
            f"lesion {lesion_id} is a pet_seed source: give the PET series (pet=)"
        )
    tf = pet_to_ct_transform(pet, ct, transform)
    seg = segment_seed(pet.suv, pet.grid, src.point_mm, method=src.method, level=src.level,
                       max_radius_mm=src.max_radius_mm, background_suv=src.background_suv,
                       exclusion_mask=exclusion_mask)
    notes: list[str] = []
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
    return LesionGTV(gtv, tuple(notes))


@dataclass(frozen=True, eq=False)
class LesionGTV:
    """The GTV of one lesion and the warnings its delineation raised.

    Attributes
    ----------
    sdf
        The GTV as a signed distance field on the CT grid.
    warnings
        E.g. hot PET voxels left out by the exclusion, a delineation cut by its radius.
    """

    sdf: SignedDistanceField
    warnings: tuple[str, ...] = ()


def delineate_gtv(
    lesion: Lesion,
    ct: CTSeries,
    cache: dict[str, StructureSet] | None = None,
    pet: PETVolume | None = None,
    *,
    pet_transform: RigidTransform | NDArray[np.float64] | None = None,
    pet_exclusion: NDArray[np.bool_] | None = None,
) -> LesionGTV:
    """The GTV of a lesion on the CT grid, with the warnings of its delineation.

    One handler per source kind of :data:`rtplan.lesions.LesionSource`: a ``sphere`` is an
    exact sphere field; an ``rtstruct`` ROI goes from its polygons to the distance field
    directly (:func:`~rtplan.structures.sdf_from_rtstruct`: each contour a slab half the
    contour spacing either side, margins measured to the polygons); a ``mask`` label map is
    a voxel mask on the CT grid (:func:`source_mask`); a ``pet_seed`` is delineated on the
    native PET grid from ``point_mm`` (PET frame LPS mm), outside ``pet_exclusion`` (boolean
    mask on the PET grid), and the GTV is the union of the delineated PET voxel boxes mapped
    into CT space, sampled on the distance field's ~0.5 mm working lattice
    (:func:`~rtplan.structures.sdf_from_foreign_mask`; no resampling onto CT voxels, whose
    1.5 mm pixels would quantise 4 mm PET boxes). ``pet`` (a
    :class:`~rtplan.imaging.PETVolume`) is needed for ``pet_seed`` sources; when the PET and
    CT frames of reference differ, ``pet_transform`` (PET -> CT, see
    :func:`pet_to_ct_transform`) is required.

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
    >>> gtv = delineate_gtv(lesion, ct)
    >>> round(volume_cc(gtv.sdf), 3), gtv.warnings
    (0.524, ())
    """
    src = lesion.source
    if isinstance(src, PETSeedSource):
        return _pet_gtv(src, lesion.id, ct, pet, pet_transform, pet_exclusion)
    if isinstance(src, SphereSource):
        idx = ct.grid.world_to_index(np.asarray(src.center_mm))
        if np.any(idx < -0.5) or np.any(idx > np.asarray(ct.grid.shape) - 0.5):
            raise GeometryError(
                f"lesion {lesion.id}: centre {list(src.center_mm)} mm lies outside the "
                "planning CT: check the coordinates (DICOM patient LPS, mm)"
            )
        return LesionGTV(sdf_from_sphere(ct.grid, center_mm=src.center_mm,
                                         radius_mm=src.diameter_mm / 2))
    if isinstance(src, RTStructSource):
        return LesionGTV(rtstruct_sdf(src, ct, cache))
    return LesionGTV(sdf_from_mask(source_mask(src, ct, cache), ct.grid))


def rtstruct_sdf(
    src: RTStructSource, ct: CTSeries, cache: dict[str, StructureSet] | None = None
) -> SignedDistanceField:
    """An RTSTRUCT ROI straight from its polygons to the distance field (each contour a
    slab half the contour spacing either side), not through CT voxels.

    ``cache`` (path -> read RTSTRUCT) avoids reading one file twice. An ROI empty on the
    CT raises :class:`~rtplan.errors.InputError`.

    Examples
    --------
    A 10 x 10 mm square on slices 1-3 (2 mm apart): three slabs of 2 x 100 mm3 = 0.6 cc.

    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> from rtplan.structures import PlanarContour, ROIContours, volume_cc, write_rtstruct
    >>> d = tempfile.mkdtemp()
    >>> g = Grid((5, 12, 12), origin_mm=(-5.5, -5.5, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(os.path.join(d, "ct"), np.zeros(g.shape), g)
    >>> sq = np.array([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]])
    >>> node = [PlanarContour(k, np.column_stack([sq, np.full(4, 2.0 * k)])) for k in (1, 2, 3)]
    >>> rs = write_rtstruct(os.path.join(d, "RS.dcm"), ct,
    ...                     [ROIContours("Node", "GTV", (255, 0, 0), node)])
    >>> round(volume_cc(rtstruct_sdf(RTStructSource(kind="rtstruct", path=str(rs),
    ...                                             roi="Node"), ct)), 3)
    0.6
    """
    from rtplan.structures.constructors import sdf_from_rtstruct
    from rtplan.structures.rtstruct import read_rtstruct

    cache = {} if cache is None else cache
    path = str(check_input_file(src.path, "RTSTRUCT"))
    if path not in cache:
        cache[path] = read_rtstruct(path)
    sdf = sdf_from_rtstruct(cache[path], src.roi, ct)
    if sdf.is_empty:
        raise InputError(f"source {src.roi!r} is empty on the planning CT grid")
    return sdf


def lesion_gtv(
    lesion: Lesion,
    ct: CTSeries,
    cache: dict[str, StructureSet] | None = None,
    pet: PETVolume | None = None,
    *,
    pet_transform: RigidTransform | NDArray[np.float64] | None = None,
    pet_exclusion: NDArray[np.bool_] | None = None,
) -> SignedDistanceField:
    """The GTV of a lesion as a signed distance field (:func:`delineate_gtv` without
    its warnings).

    Examples
    --------
    >>> import os, tempfile
    >>> from rtplan.imaging import write_ct_series
    >>> from rtplan.structures import volume_cc
    >>> g = Grid((20, 40, 40), origin_mm=(-20, -20, -30), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(os.path.join(tempfile.mkdtemp(), "ct"), np.zeros(g.shape), g)
    >>> lesion = Lesion(id="L1", site="bone", source={
    ...     "kind": "sphere", "center_mm": (0, 0, 0), "diameter_mm": 10})
    >>> round(volume_cc(lesion_gtv(lesion, ct)), 3)    # 4/3 pi 5^3 mm3
    0.524
    """
    return delineate_gtv(lesion, ct, cache, pet, pet_transform=pet_transform,
                         pet_exclusion=pet_exclusion).sdf
