"""Move structures onto another grid and frame of reference (e.g. CT ROIs onto the PET).

RTSTRUCT polygons lie on the slice planes of the image they were drawn on; the PET's
slices are elsewhere (and, with a registration, rotated). :func:`polygons_to_grid`
therefore voxelises the polygons on a grid built from their own planes (the *contour
grid*: the planes as slices, 1 mm or finer in plane) with
:func:`~rtplan.structures.rasterize_polygons`, and resamples that mask onto the target
grid by nearest neighbour through the rigid transform
(:func:`~rtplan.structures.sources.resample_mask_nearest`). Each contour stands for a
slab half a plane spacing either side of its plane, the usual RTSTRUCT convention.

:func:`exclusion_mask` uses it to put exclusion ROIs (bladder, kidneys, ...) from an
RTSTRUCT or a NIfTI mask onto the PET grid for seed delineation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtplan._shared.jsonio import check_input_file
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.imaging.registration import RigidTransform, SpatialRegistration, transform_between
from rtplan.lesions import MaskSource, RTStructSource
from rtplan.structures.rtstruct import StructureSet, rasterize_polygons, read_rtstruct
from rtplan.structures.sources import load_mask_source, resample_mask_nearest

__all__ = [
    "ExclusionMask",
    "contour_grid",
    "exclusion_mask",
    "into_frame",
    "polygons_to_grid",
]

_MERGE_PLANES_MM = 0.1
_MULTIPLE_TOL_MM = 0.05


def _normal(polygons: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Unit normal of the largest polygon (Newell's vector area)."""
    best, best_area = None, -1.0
    for p in polygons:
        area = 0.5 * np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0)
        a = float(np.linalg.norm(area))
        if a > best_area:
            best, best_area = area, a
    if best is None or best_area <= 1e-9:
        raise GeometryError("the contours enclose no area: cannot find their plane")
    n = best / best_area
    # a consistent sign: the largest component positive
    return n if n[int(np.argmax(np.abs(n)))] > 0 else -n


def contour_grid(
    polygons_mm: Sequence[ArrayLike],
    *,
    in_plane_mm: float = 1.0,
    single_plane_thickness_mm: float = 1.0,
    plane_tol_mm: float = 0.1,
) -> Grid:
    """A grid whose slices are the planes of the polygons (for exact rasterisation).

    Parameters
    ----------
    polygons_mm
        ``(N, 3)`` LPS points (mm) of planar, parallel contours.
    in_plane_mm
        Row and column spacing (mm).
    single_plane_thickness_mm
        Slice spacing when all contours lie on one plane.
    plane_tol_mm
        Contours closer than this along the normal share a plane.

    Returns
    -------
    Grid
        Regular when the plane gaps are whole multiples of the smallest one (missing
        planes are empty slices), else irregular through the planes. Covers the
        polygons with one voxel of margin in plane.

    Examples
    --------
    >>> sq = lambda z: [[0, 0, z], [10, 0, z], [10, 10, z], [0, 10, z]]
    >>> g = contour_grid([sq(0.0), sq(3.0), sq(9.0)])
    >>> g.shape, g.spacing_mm, g.slice_positions_mm.tolist()
    ((4, 13, 13), (3.0, 1.0, 1.0), [0.0, 3.0, 6.0, 9.0])
    """
    polys = [np.asarray(p, dtype=float) for p in polygons_mm]
    if not polys:
        raise InputError("no contours to rasterise")
    n = _normal(polys)
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = a - (a @ n) * n
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    planes = np.sort([float((p @ n).mean()) for p in polys])
    uniq = [planes[0]]
    for z in planes[1:]:
        if z - uniq[-1] > max(plane_tol_mm, _MERGE_PLANES_MM):
            uniq.append(z)
    pos = np.array(uniq)
    offsets = None
    if pos.size == 1:
        dz = float(single_plane_thickness_mm)
        n_slices = 1
    else:
        gaps = np.diff(pos)
        dz = float(gaps.min())
        steps = (pos - pos[0]) / dz
        if np.all(np.abs(steps - np.round(steps)) * dz <= _MULTIPLE_TOL_MM):
            n_slices = round(float(steps[-1])) + 1
        else:
            n_slices = pos.size
            offsets = pos - pos[0]
    pts = np.concatenate(polys)
    pu, pv = pts @ u, pts @ v
    h = float(in_plane_mm)
    u0, v0 = float(pu.min()) - h, float(pv.min()) - h
    cols = int(np.ceil((float(pu.max()) + h - u0) / h)) + 1
    rows = int(np.ceil((float(pv.max()) + h - v0) / h)) + 1
    origin = pos[0] * n + v0 * v + u0 * u
    return Grid((n_slices, rows, cols), origin_mm=origin, spacing_mm=(dz, h, h),
                direction=np.stack([n, v, u]), slice_offsets_mm=offsets)


def polygons_to_grid(
    polygons_mm: Sequence[ArrayLike],
    grid: Grid,
    transform: RigidTransform | None = None,
    *,
    in_plane_mm: float | None = None,
    plane_tol_mm: float = 0.1,
) -> NDArray[np.bool_]:
    """Voxelise planar contours onto any grid, optionally in another frame of reference.

    Parameters
    ----------
    polygons_mm
        ``(N, 3)`` LPS points (mm) per contour, in the contours' own frame.
    grid
        Target grid (e.g. the PET's).
    transform
        Rigid transform from the contours' frame to the grid's frame (e.g. CT -> PET);
        ``None`` for the same frame.
    in_plane_mm
        In-plane spacing of the contour grid; default ``min(1, smallest grid spacing /
        2)`` mm.
    plane_tol_mm
        Distance along the normal within which contour points count as on one plane.

    Returns
    -------
    numpy.ndarray
        Boolean ``[slice, row, column]`` mask on ``grid``: a voxel is inside when the
        contour-grid voxel nearest to its centre is inside a contour.

    Examples
    --------
    >>> pet = Grid((5, 10, 10), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    >>> sq = lambda z: [[6, 6, z], [26, 6, z], [26, 26, z], [6, 26, z]]   # 20 x 20 mm
    >>> m = polygons_to_grid([sq(z) for z in np.arange(5.0, 11.0, 1.0)], pet)  # 5-10 mm
    >>> int(m.sum()), np.unique(np.argwhere(m)[:, 0]).tolist()   # 5 x 5 voxels, z 8 mm
    (25, [2])
    """
    polys = [np.asarray(p, dtype=float) for p in polygons_mm]
    if not polys:
        return np.zeros(grid.shape, dtype=bool)
    h = in_plane_mm if in_plane_mm is not None else min(1.0, min(grid.spacing_mm) / 2)
    cgrid = contour_grid(polys, in_plane_mm=h, single_plane_thickness_mm=grid.spacing_mm[0],
                         plane_tol_mm=plane_tol_mm)
    mask = rasterize_polygons(polys, cgrid, plane_tol_mm=plane_tol_mm)
    return resample_mask_nearest(mask, cgrid, grid, transform)


def into_frame(
    target_frame_uid: str,
    *,
    registration: SpatialRegistration | None = None,
    transform: RigidTransform | None = None,
    target_label: str = "PET",
    other_label: str = "CT",
) -> Callable[[str], RigidTransform | None]:
    """A function ``frame_uid -> transform into target_frame_uid`` (None: same frame).

    Parameters
    ----------
    target_frame_uid
        The frame everything is mapped into (the PET's).
    registration
        A Spatial Registration object relating the frames (takes precedence).
    transform
        A rigid transform from the target frame to one other frame (PET -> CT, e.g. a
        user matrix); it is inverted. Its frames are checked with
        :meth:`~rtplan.imaging.RigidTransform.oriented` (labels ``target_label`` /
        ``other_label`` match any UID of that role).

    Examples
    --------
    >>> pet_to_ct = RigidTransform.translation([0, 0, 5], "PET", "CT")
    >>> to_pet = into_frame("1.2.1", transform=pet_to_ct)
    >>> to_pet("1.2.1") is None, to_pet("1.2.2").apply([0, 0, 5]).tolist()
    (True, [0.0, 0.0, 0.0])
    """

    def to_target(frame_uid: str) -> RigidTransform | None:
        if not frame_uid or not target_frame_uid or frame_uid == target_frame_uid:
            return None
        return transform_between(frame_uid, target_frame_uid, registration=registration,
                                 transform=transform, transform_maps="fixed_to_moving",
                                 moving_label=other_label, fixed_label=target_label)

    return to_target


@dataclass(frozen=True, eq=False)
class ExclusionMask:
    """An exclusion mask on the PET grid and what it was made of.

    Attributes
    ----------
    mask
        Boolean ``[slice, row, column]`` mask on the PET grid.
    parts
        One line per source: name, frame handling and voxel count.
    """

    mask: NDArray[np.bool_]
    parts: tuple[str, ...]

    @property
    def n_voxels(self) -> int:
        """Number of PET voxels excluded."""
        return int(np.count_nonzero(self.mask))


def exclusion_mask(
    sources: Sequence[RTStructSource | MaskSource],
    pet_grid: Grid,
    *,
    pet_frame_uid: str = "",
    to_pet: Callable[[str], RigidTransform | None] | None = None,
    ct: CTSeries | None = None,
) -> ExclusionMask:
    """Union of exclusion ROIs (RTSTRUCT ROIs, NIfTI masks) on the PET grid.

    Parameters
    ----------
    sources
        :class:`~rtplan.lesions.RTStructSource` (ROI of an RTSTRUCT in any
        registered frame) or :class:`~rtplan.lesions.MaskSource` (NIfTI label
        map on the PET grid, or on the planning CT grid when ``ct`` is given).
    pet_grid, pet_frame_uid
        The PET grid and its FrameOfReferenceUID.
    to_pet
        ``frame_uid -> RigidTransform`` into the PET frame (see :func:`into_frame`);
        default: only the PET's own frame is accepted.
    ct
        The planning CT (:class:`~rtplan.imaging.CTSeries`), for NIfTI masks on its grid.

    Returns
    -------
    ExclusionMask

    Raises
    ------
    GeometryError
        An ROI in another frame without a registration; a NIfTI mask on neither grid.
    InputError
        A missing file or ROI, or an ROI that covers no PET voxel.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> pet = Grid((3, 40, 50), origin_mm=(-245, -195, -200), spacing_mm=(10, 10, 10))
    >>> ex = exclusion_mask([RTStructSource(kind="rtstruct", path=str(get_path("rt_ss")),
    ...                                     roi="patient")], pet)
    >>> ex.n_voxels > 0, ex.parts[0].startswith("rtstruct.dcm:patient")
    (True, True)
    """
    resolve = to_pet or into_frame(pet_frame_uid)
    total = np.zeros(pet_grid.shape, dtype=bool)
    parts = []
    cache: dict[str, StructureSet] = {}
    for src in sources:
        if isinstance(src, RTStructSource):
            path = str(check_input_file(src.path, "RTSTRUCT"))
            if path not in cache:
                cache[path] = read_rtstruct(path)
            ss = cache[path]
            roi = ss.roi(src.roi)
            name = f"{Path(path).name}:{roi.name}"
            if not roi.polygons_mm:
                raise InputError(f"exclusion ROI {name} has no closed planar contours")
            frame = roi.frame_of_reference_uid
            if not frame and len(ss.frame_of_reference_uids) == 1:
                frame = ss.frame_of_reference_uids[0]
            tf = resolve(frame) if frame else None
            how = ("PET frame" if tf is None and frame else
                   "no FrameOfReferenceUID: taken in the PET frame" if not frame else
                   f"frame {frame} -> PET by {tf.source}")  # type: ignore[union-attr]
            m = polygons_to_grid(roi.polygons_mm, pet_grid, tf)
        else:
            name = Path(src.path).name + (f":{src.label}" if src.label is not None else "")
            try:
                m = load_mask_source(src, pet_grid)
                how = "NIfTI on the PET grid"
            except GeometryError as exc_pet:
                if ct is None:
                    raise GeometryError(
                        f"exclusion mask {name} is not on the PET grid ({exc_pet}); resample "
                        f"it onto the PET grid {pet_grid!r} (nearest neighbour)"
                    ) from None
                try:
                    on_ct = load_mask_source(src, ct.grid)
                except GeometryError:
                    raise GeometryError(
                        f"exclusion mask {name} lies on neither the PET grid {pet_grid!r} nor "
                        f"the planning CT grid {ct.grid!r}: resample it onto one of them "
                        "(nearest neighbour)"
                    ) from None
                tf = resolve(ct.frame_of_reference_uid)
                how = "NIfTI on the CT grid" + ("" if tf is None else f", -> PET by {tf.source}")
                m = resample_mask_nearest(on_ct, ct.grid, pet_grid, tf)
        if not m.any():
            raise InputError(
                f"exclusion {name} covers no PET voxel: check that it belongs to this "
                "patient and, for another frame of reference, the registration"
            )
        total |= m
        parts.append(f"{name} ({how}; {int(np.count_nonzero(m))} PET voxels)")
    return ExclusionMask(mask=total, parts=tuple(parts))
