"""Seed-based PET lesion delineation and measurement on the native PET grid.

A physician clicks a point (or the PET report lists one) inside a PSMA-positive
lesion. :func:`segment_seed` climbs from the seed to the local SUV maximum, thresholds
around it, and keeps the component connected to that maximum, bounded by a radius and
an exclusion mask (e.g. the bladder). :func:`measure_lesion` gives SUVmax, SUVpeak,
SUVmean, metabolic volume and equivalent diameter, and flags lesions too small for
threshold volumes to be trusted. :func:`detect_candidates` lists hot regions as
suggestions for review; nothing it finds is ever accepted silently. Hot regions that
overlap a delineated lesion (the lesion and its partial-volume rim) are marked as
already delineated, not suggested again.

Defaults and their sources
--------------------------
- Preset ``adaptive`` (the default): ``background_adaptive`` at 40 %, threshold =
  B + 0.40 (SUVmax - B), B the median SUV in a 10 mm shell outside ``max_radius_mm``.
  No PSMA-specific validation of this level is known to us. Its basis is FDG/18F
  phantom work: a relative threshold of 41 +/- 2.5 % of the background-subtracted signal
  best reproduced source diameters >= 12.5 mm and over-estimated smaller ones
  (Radiother Oncol 2006, PubMed 16876272). Read it as a convention carried over from
  FDG, not a validated PSMA-PET level.
- Presets ``sensitive`` (20 % of SUVmax) and ``specific`` (45 % of SUVmax, middle of
  the 40-50 % range): Zamboglou C et al., "Validation of different PSMA-PET/CT-based
  contouring techniques for intraprostatic tumor definition using histopathology as
  standard of reference", Radiother Oncol 2019;141:208-213,
  doi:10.1016/j.radonc.2019.07.002. With [68Ga]PSMA-11 and co-registered histology
  (n = 20, primary intraprostatic tumours, not metastases), 20 % of SUVmax gave 100 %
  sensitivity and 40-50 % gave 100 % specificity.
- ``CANDIDATE_SUV`` = 3.0: SUV >= 3 as the candidate flag is a configurable convention
  of this package (issue 5), not a published cut-off; change it with ``threshold_suv``
  (CLI ``--candidates SUV``).
- Partial-volume flag: equivalent diameter below 2 x FWHM of the PET resolution;
  threshold volumes of such lesions are unreliable.
- Oligometastatic: at most 5 metastases (Heidelberg PSMA-guided RT series, "a maximum
  of 5 metastases"); the prostate bed is a local recurrence, not a metastasis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from rtplan.errors import GeometryError, GridMismatchError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.lesions import (
    THRESHOLD_PRESETS,
    Lesion,
    LesionSite,
    PETSeedSource,
    SegmentationMethod,
    ThresholdPreset,
    duplicate_ids,
)

__all__ = [
    "CANDIDATE_SUV",
    "OLIGOMETASTATIC_MAX",
    "SUVPEAK_VOLUME_CC",
    "THRESHOLD_PRESETS",
    "Candidate",
    "LesionMeasures",
    "LesionSite",
    "OligometastaticCheck",
    "PETLesion",
    "PETLesionReport",
    "PETLesionResult",
    "PETSeedSource",
    "SeedSegmentation",
    "SegmentationMethod",
    "ThresholdPreset",
    "apply_default_preset",
    "detect_candidates",
    "measure_lesion",
    "measure_pet_lesions",
    "mitnm_labels",
    "oligometastatic_check",
    "segment_seed",
    "suv_peak",
]

#: SUV at or above which a region is listed as a candidate (suggestion only): a
#: configurable convention of this package (issue 5), not a published cut-off.
CANDIDATE_SUV = 3.0
#: Maximum number of metastases for the oligometastatic state (Heidelberg series).
OLIGOMETASTATIC_MAX = 5
#: Volume of the SUVpeak sphere (ml).
SUVPEAK_VOLUME_CC = 1.0
#: A local SUVmax at most this multiple of the surrounding background is flat background
#: (no lesion): refused.
_FLAT_CONTRAST = 1.1
#: Below this multiple of the surrounding background a lesion is doubtful: a warning.
_LOW_CONTRAST = 1.5
_BACKGROUND_SHELL_MM = 10.0


@dataclass(frozen=True, eq=False)
class SeedSegmentation:
    """Result of :func:`segment_seed`.

    Attributes
    ----------
    mask
        Boolean ``[slice, row, column]`` mask on the PET grid.
    threshold_suv
        The SUV threshold applied.
    peak_index
        ``(k, i, j)`` of the local maximum reached from the seed.
    suv_max
        SUV at ``peak_index``.
    background_suv
        Background used (``None`` unless background-adaptive).
    touches_radius
        True when the component reaches ``max_radius_mm``: it was cut by the radius.
    excluded_voxels
        Voxels above threshold removed because they were in the exclusion mask.
    warnings
        Suspicious but usable results (e.g. a lesion barely above its background).
    """

    mask: NDArray[np.bool_]
    threshold_suv: float
    peak_index: tuple[int, int, int]
    suv_max: float
    background_suv: float | None
    touches_radius: bool
    excluded_voxels: int
    warnings: tuple[str, ...] = ()


class LesionMeasures(BaseModel):
    """Measures of one delineated lesion (SUV in the volume's normalization)."""

    model_config = ConfigDict(frozen=True)

    suv_max: float
    suv_peak: float | None
    suv_mean: float
    volume_cc: float
    equivalent_diameter_mm: float
    n_voxels: int
    fwhm_mm: float
    partial_volume_warning: bool = Field(
        description="equivalent diameter < 2 x FWHM: threshold volume unreliable"
    )
    peak_point_mm: tuple[float, float, float]


class Candidate(BaseModel):
    """A hot region: proposed for review, never a lesion until a user accepts it.

    ``status`` is ``"suggestion"``, or ``"already_delineated"`` when the region overlaps
    a delineated lesion (``delineated_as`` lists their ids): such a region is that
    lesion with its partial-volume rim, not a new finding.
    """

    model_config = ConfigDict(frozen=True)

    status: Literal["suggestion", "already_delineated"] = "suggestion"
    peak_point_mm: tuple[float, float, float] = Field(
        description="centre of the hottest voxel (LPS, mm)")
    centroid_mm: tuple[float, float, float] = Field(
        description="mean position of the region's voxel centres (LPS, mm)")
    suv_max: float
    volume_cc: float
    n_voxels: int
    delineated_as: tuple[str, ...] = Field(
        default=(), description="ids of the delineated lesions the region overlaps")


class OligometastaticCheck(BaseModel):
    """Outcome of :func:`oligometastatic_check`."""

    model_config = ConfigDict(frozen=True)

    n_metastases: int
    max_metastases: int
    oligometastatic: bool
    warning: str | None


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _check_volume(suv: ArrayLike, grid: Grid) -> NDArray[np.float64]:
    arr = np.asarray(suv)
    if arr.shape != grid.shape:
        raise GridMismatchError(f"SUV array shape {arr.shape} does not match grid {grid.shape}")
    return arr


def _check_mask(mask: ArrayLike | None, grid: Grid, what: str) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != grid.shape:
        raise GridMismatchError(f"{what} shape {m.shape} does not match the PET grid {grid.shape}")
    return m


def _box(grid: Grid, center: Sequence[int], radius_mm: float) -> tuple[slice, ...]:
    """Index box around ``center`` holding a ball of ``radius_mm``."""
    if grid.is_regular:
        step = np.asarray(grid.spacing_mm)
    else:
        step = np.array([np.diff(grid.slice_positions_mm).min(), *grid.spacing_mm[1:]])
    half = np.ceil(radius_mm / step).astype(int) + 1
    return tuple(
        slice(max(0, c - h), min(n, c + h + 1))
        for c, h, n in zip(center, half, grid.shape, strict=True)
    )


def _distances_mm(grid: Grid, box: tuple[slice, ...], point_mm: NDArray[np.float64]):
    k, i, j = np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij")
    world = grid.index_to_world(np.stack([k, i, j], axis=-1).astype(float))
    return np.linalg.norm(world - point_mm, axis=-1)


def _sphere_kernel(grid: Grid, radius_mm: float, supersample: int = 5) -> NDArray[np.float64]:
    """Weights = fraction of each voxel inside a ball (regular grid), summing to 1."""
    sp = np.asarray(grid.spacing_mm)
    half = np.ceil(radius_mm / sp - 0.5).astype(int) + 1
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    axes = []
    for h, s in zip(half, sp, strict=True):
        centers = np.arange(-h, h + 1) * s
        axes.append((centers[:, None] + sub[None, :] * s).ravel())
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    inside = (zz**2 + yy**2 + xx**2) <= radius_mm**2
    n = [2 * h + 1 for h in half]
    w = inside.reshape(n[0], supersample, n[1], supersample, n[2], supersample).mean(
        axis=(1, 3, 5)
    )
    return w / w.sum()


def _hill_climb(suv: NDArray, allowed: NDArray[np.bool_], start: tuple[int, int, int]):
    """Steepest ascent over 26-neighbours inside ``allowed``; returns the local max."""
    pos = start
    shape = suv.shape
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
               if (a, b, c) != (0, 0, 0)]
    for _ in range(suv.size):
        best, best_v = pos, suv[pos]
        for o in offsets:
            q = (pos[0] + o[0], pos[1] + o[1], pos[2] + o[2])
            if all(0 <= q[d] < shape[d] for d in range(3)) and allowed[q] and suv[q] > best_v:
                best, best_v = q, suv[q]
        if best == pos:
            return pos
        pos = best
    return pos


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------
def segment_seed(
    suv: ArrayLike,
    grid: Grid,
    point_mm: ArrayLike,
    *,
    method: SegmentationMethod | str = "background_adaptive",
    level: float = 0.4,
    max_radius_mm: float = 25.0,
    exclusion_mask: ArrayLike | None = None,
    background_suv: float | None = None,
) -> SeedSegmentation:
    """Delineate the lesion around a seed point on the PET grid.

    Parameters
    ----------
    suv
        SUV volume ``[slice, row, column]`` on ``grid``.
    grid
        The PET grid.
    point_mm
        Seed (LPS, mm). It need not be the hottest voxel: the algorithm climbs to the
        local maximum (26-neighbour steepest ascent) within ``max_radius_mm``.
    method, level
        ``"percent_max"``: threshold = level x SUVmax (level 0-1); ``"absolute"``:
        threshold = level (SUV); ``"background_adaptive"``: threshold = B + level x
        (SUVmax - B).
    max_radius_mm
        Nothing farther than this from the seed belongs to the lesion.
    exclusion_mask
        Boolean mask on ``grid`` (e.g. bladder) never included, and not crossed.
    background_suv
        Background B for the adaptive method; default the median SUV in a 10 mm shell
        just outside ``max_radius_mm`` (excluding ``exclusion_mask``).

    Returns
    -------
    SeedSegmentation
        Mask of the component of ``suv >= threshold`` (6-connected) that holds the
        local maximum, inside the radius and outside the exclusion mask.

    Raises
    ------
    GeometryError
        The seed is outside the grid or inside the exclusion mask.
    InvalidParameterError
        A level outside its domain, a threshold at or above SUVmax, ``max_radius_mm``
        smaller than the largest voxel spacing, a non-finite seed, or a seed in flat
        background (local SUVmax within 10 % of the median of a 10 mm shell around
        the radius). Below 1.5 x that background the result carries a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((9, 9, 9), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> suv = np.ones(g.shape); suv[3:6, 3:6, 3:6] = 5.0; suv[4, 4, 4] = 9.0
    >>> seg = segment_seed(suv, g, (6.0, 6.0, 6.0), method="percent_max", level=0.5)
    >>> int(seg.mask.sum()), seg.suv_max, seg.threshold_suv
    (27, 9.0, 4.5)
    """
    arr = _check_volume(suv, grid)
    excl = _check_mask(exclusion_mask, grid, "exclusion mask")
    try:
        method = SegmentationMethod(str(getattr(method, "value", method)))
    except ValueError:
        raise InvalidParameterError(
            f"unknown segmentation method {method!r}: use "
            + ", ".join(m.value for m in SegmentationMethod)
        ) from None
    if method is not SegmentationMethod.ABSOLUTE and not 0 < level < 1:
        raise InvalidParameterError(
            f"{method.value} level must be a fraction in (0, 1), got {level}: e.g. 0.4 for 40 %"
        )
    if not (np.isfinite(level) and level > 0) or not (
        np.isfinite(max_radius_mm) and max_radius_mm > 0
    ):
        raise InvalidParameterError(
            f"level and max_radius_mm must be finite and > 0, got {level} and {max_radius_mm}"
        )
    largest_step = float(max(grid.spacing_mm))
    if max_radius_mm < largest_step:
        raise InvalidParameterError(
            f"max_radius_mm {max_radius_mm:g} mm is smaller than the PET voxel "
            f"({largest_step:g} mm): the lesion would be cut to a voxel or two; give at "
            f"least {largest_step:g} mm (default 25 mm)"
        )
    try:
        point = np.asarray(point_mm, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"seed point_mm must be 3 numbers (LPS mm), got {point_mm!r}"
        ) from None
    if not np.all(np.isfinite(point)):
        raise InvalidParameterError(
            f"seed point_mm {point.tolist()} holds NaN or infinite values: give 3 finite "
            "numbers (LPS mm)"
        )
    idx = np.rint(grid.world_to_index(point)).astype(int)
    if np.any(idx < 0) or np.any(idx >= np.asarray(grid.shape)):
        raise GeometryError(
            f"seed {point.tolist()} mm is outside the PET volume (index {idx.tolist()}, "
            f"shape {grid.shape}): check the coordinates are LPS mm of this PET series"
        )
    seed = (int(idx[0]), int(idx[1]), int(idx[2]))
    if excl is not None and excl[seed]:
        raise GeometryError(f"seed {point.tolist()} mm lies inside the exclusion mask")

    outer = max_radius_mm + (_BACKGROUND_SHELL_MM
                             if method is SegmentationMethod.BACKGROUND_ADAPTIVE else 0.0)
    box = _box(grid, seed, outer)
    sub = np.asarray(arr[box], dtype=float)
    dist = _distances_mm(grid, box, point)
    sub_excl = excl[box] if excl is not None else np.zeros(sub.shape, bool)
    inside = (dist <= max_radius_mm) & ~sub_excl
    local_seed = tuple(int(s - b.start) for s, b in zip(seed, box, strict=True))
    inside[local_seed] = True  # the voxel holding the seed always counts
    peak = _hill_climb(sub, inside, local_seed)  # type: ignore[arg-type]
    suv_max = float(sub[peak])
    if not np.isfinite(suv_max):
        raise InvalidParameterError(
            f"the SUV at the seed's local maximum is {suv_max}: the PET holds NaN or "
            "infinite values there"
        )
    shell = (dist > max_radius_mm) & (dist <= outer) & ~sub_excl
    if not shell.any():  # percent_max/absolute: a 10 mm shell for the contrast check
        ring_box = _box(grid, seed, max_radius_mm + _BACKGROUND_SHELL_MM)
        ring_dist = _distances_mm(grid, ring_box, point)
        ring_excl = excl[ring_box] if excl is not None else np.zeros(ring_dist.shape, bool)
        ring_sel = (ring_dist > max_radius_mm) & (
            ring_dist <= max_radius_mm + _BACKGROUND_SHELL_MM) & ~ring_excl
        shell_values = np.asarray(arr[ring_box], dtype=float)[ring_sel]
    else:
        shell_values = sub[shell]
    local_bg = float(np.median(shell_values)) if shell_values.size else None

    warnings: list[str] = []
    if local_bg is not None and local_bg > 0:
        contrast = suv_max / local_bg
        if contrast <= _FLAT_CONTRAST:
            raise InvalidParameterError(
                f"the seed {point.tolist()} mm is in flat background: its local SUVmax "
                f"{suv_max:.3g} is within {100 * (_FLAT_CONTRAST - 1):.0f} % of the "
                f"surrounding background {local_bg:.3g} SUV (median of a "
                f"{_BACKGROUND_SHELL_MM:g} mm shell): the seed is not in a hot lesion; "
                "check the seed coordinates"
            )
        if contrast < _LOW_CONTRAST:
            warnings.append(
                f"SUVmax {suv_max:.3g} is only {contrast:.2f} x the surrounding background "
                f"{local_bg:.3g}: a doubtful lesion; check the seed"
            )
    bg = None
    if method is SegmentationMethod.PERCENT_MAX:
        threshold = level * suv_max
    elif method is SegmentationMethod.ABSOLUTE:
        threshold = float(level)
    else:
        if background_suv is None:
            if local_bg is None:
                raise GeometryError(
                    "no background voxels around the seed (the volume ends within "
                    f"{outer:g} mm): give background_suv"
                )
            bg = local_bg
        else:
            bg = float(background_suv)
        threshold = bg + level * (suv_max - bg)
    if threshold >= suv_max or threshold <= 0:
        raise InvalidParameterError(
            f"threshold {threshold:.3g} SUV is not between 0 and the local SUVmax "
            f"{suv_max:.3g}: the seed is not in a hot lesion, or the level is wrong"
        )
    above = sub >= threshold
    candidate = above & inside
    labels, _ = ndimage.label(candidate)  # 6-connectivity (faces)
    if labels[peak] == 0:  # pragma: no cover - the peak is inside and above threshold
        raise InvalidParameterError(
            f"no voxel at or above the threshold {threshold:.3g} SUV holds the seed "
            f"{point.tolist()} mm: check the seed and max_radius_mm"
        )
    comp = labels == labels[peak]
    excluded = int(np.count_nonzero(above & (dist <= max_radius_mm) & sub_excl))
    # touching the radius: a component voxel with an above-threshold neighbour outside it
    ring = ndimage.binary_dilation(comp) & above & (dist > max_radius_mm) & ~sub_excl
    mask = np.zeros(grid.shape, dtype=bool)
    mask[box] = comp
    return SeedSegmentation(
        mask=mask,
        threshold_suv=float(threshold),
        peak_index=tuple(int(p + b.start) for p, b in zip(peak, box, strict=True)),  # type: ignore[arg-type]
        suv_max=suv_max,
        background_suv=bg,
        touches_radius=bool(ring.any()),
        excluded_voxels=excluded,
        warnings=tuple(warnings),
    )


def suv_peak(
    suv: ArrayLike, grid: Grid, mask: ArrayLike, volume_cc: float = SUVPEAK_VOLUME_CC
) -> float:
    """SUVpeak: highest mean SUV in a sphere of ``volume_cc`` centred in the lesion.

    The sphere is centred on each voxel of ``mask`` in turn; voxels are weighted by the
    fraction of their volume inside the sphere (5 x 5 x 5 supersampling). Needs a
    regular grid.

    Examples
    --------
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((15, 15, 15), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> suv = np.full(g.shape, 3.0)
    >>> m = np.zeros(g.shape, bool); m[7, 7, 7] = True
    >>> round(suv_peak(suv, g, m), 6)
    3.0
    """
    arr = _check_volume(suv, grid)
    m = _check_mask(mask, grid, "lesion mask")
    if m is None or not m.any():
        raise InvalidParameterError("the lesion mask is empty: nothing to measure")
    if not grid.is_regular:
        raise GeometryError("SUVpeak needs a regular slice spacing: resample first")
    radius = (3.0 * volume_cc * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    kernel = _sphere_kernel(grid, radius)
    half = [(n - 1) // 2 for n in kernel.shape]
    nz = np.argwhere(m)
    lo = np.maximum(nz.min(axis=0) - half, 0)
    hi = np.minimum(nz.max(axis=0) + np.array(half) + 1, grid.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    means = ndimage.correlate(np.asarray(arr[box], float), kernel, mode="nearest")
    return float(means[m[box]].max())


def measure_lesion(
    suv: ArrayLike, grid: Grid, mask: ArrayLike, *, fwhm_mm: float = 6.0
) -> LesionMeasures:
    """SUVmax, SUVpeak, SUVmean, metabolic volume and equivalent diameter of a mask.

    Parameters
    ----------
    suv, grid
        SUV volume and its grid.
    mask
        Boolean lesion mask on ``grid``.
    fwhm_mm
        Spatial resolution (FWHM, mm) of the PET; lesions whose equivalent diameter is
        below ``2 * fwhm_mm`` get ``partial_volume_warning``.

    Returns
    -------
    LesionMeasures
        ``volume_cc`` = voxels x voxel volume / 1000; equivalent diameter
        ``(6 V / pi)^(1/3)``. SUVpeak is ``None`` on irregular grids.

    Examples
    --------
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((10, 10, 10), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    >>> suv = np.ones(g.shape); m = np.zeros(g.shape, bool); m[2:7, 2:7, 2:7] = True
    >>> suv[m] = 6.0
    >>> r = measure_lesion(suv, g, m)
    >>> r.volume_cc, r.suv_mean, round(r.equivalent_diameter_mm, 2)
    (8.0, 6.0, 24.81)
    """
    arr = _check_volume(suv, grid)
    m = _check_mask(mask, grid, "lesion mask")
    if m is None or not m.any():
        raise InvalidParameterError("the lesion mask is empty: nothing to measure")
    if not fwhm_mm > 0:
        raise InvalidParameterError(f"fwhm_mm must be > 0, got {fwhm_mm}")
    values = np.asarray(arr[m], dtype=float)
    n = int(values.size)
    volume_mm3 = n * grid.voxel_volume_mm3
    diameter = (6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0)
    flat = int(np.argmax(np.where(m, arr, -np.inf)))
    peak_idx = np.unravel_index(flat, grid.shape)
    peak_pt = grid.index_to_world(np.array(peak_idx, dtype=float))
    return LesionMeasures(
        suv_max=float(values.max()),
        suv_peak=suv_peak(arr, grid, m) if grid.is_regular else None,
        suv_mean=float(values.mean()),
        volume_cc=volume_mm3 / 1000.0,
        equivalent_diameter_mm=diameter,
        n_voxels=n,
        fwhm_mm=float(fwhm_mm),
        partial_volume_warning=diameter < 2.0 * fwhm_mm,
        peak_point_mm=tuple(float(v) for v in peak_pt),  # type: ignore[arg-type]
    )


def mitnm_labels(sites: Sequence[LesionSite | str]) -> list[str]:
    """miTNM (PROMISE) label of every lesion from its site.

    ``prostate_bed`` -> ``miTr`` (local recurrence); ``pelvic_node`` -> ``miN1a`` when it
    is the only pelvic nodal lesion, ``miN1b`` when there are several (lesions stand in
    for nodal regions); ``distant_node`` -> ``miM1a``; ``bone`` -> ``miM1b``;
    ``visceral`` -> ``miM1c``.

    Examples
    --------
    >>> mitnm_labels(["pelvic_node", "bone", "pelvic_node", "prostate_bed"])
    ['miN1b', 'miM1b', 'miN1b', 'miTr']
    >>> mitnm_labels(["pelvic_node", "visceral"])
    ['miN1a', 'miM1c']
    """
    parsed = []
    for s in sites:
        try:
            parsed.append(LesionSite(str(getattr(s, "value", s))))
        except ValueError:
            raise InvalidParameterError(
                f"unknown lesion site {s!r}: use " + ", ".join(x.value for x in LesionSite)
            ) from None
    n_pelvic = sum(s is LesionSite.PELVIC_NODE for s in parsed)
    table = {
        LesionSite.PROSTATE_BED: "miTr",
        LesionSite.PELVIC_NODE: "miN1a" if n_pelvic == 1 else "miN1b",
        LesionSite.DISTANT_NODE: "miM1a",
        LesionSite.BONE: "miM1b",
        LesionSite.VISCERAL: "miM1c",
    }
    return [table[s] for s in parsed]


def oligometastatic_check(
    sites: Sequence[LesionSite | str], max_metastases: int = OLIGOMETASTATIC_MAX
) -> OligometastaticCheck:
    """Whether the lesions fit the oligometastatic state (at most ``max_metastases``).

    Prostate-bed lesions (local recurrence) are not counted as metastases.

    Examples
    --------
    >>> c = oligometastatic_check(["bone"] * 6)
    >>> c.oligometastatic, c.warning
    (False, '6 metastases > 5: not oligometastatic as defined in the Heidelberg series; ...')
    """
    labels = mitnm_labels(sites)
    n = sum(lab != "miTr" for lab in labels)
    ok = n <= max_metastases
    warning = None if ok else (
        f"{n} metastases > {max_metastases}: not oligometastatic as defined in the "
        "Heidelberg series; metastasis-directed radiotherapy of every lesion is outside "
        "the protocol"
    )
    return OligometastaticCheck(
        n_metastases=n, max_metastases=max_metastases, oligometastatic=ok, warning=warning
    )


def detect_candidates(
    suv: ArrayLike,
    grid: Grid,
    *,
    threshold_suv: float = CANDIDATE_SUV,
    min_volume_cc: float = 0.0,
    exclusion_mask: ArrayLike | None = None,
    delineated: Mapping[str, ArrayLike] | None = None,
) -> list[Candidate]:
    """Connected regions with SUV >= ``threshold_suv``, as suggestions for review.

    The regions (26-connected) are labelled on the whole volume, with only the
    ``exclusion_mask`` voxels removed. A region that overlaps a ``delineated`` lesion
    mask is that lesion together with its partial-volume rim: it gets ``status ==
    "already_delineated"`` and the lesion ids in ``delineated_as``, instead of being
    suggested again. The rest have ``status == "suggestion"``: a user must accept one
    (e.g. by adding a ``pet_seed`` lesion) before it becomes a target. Sorted by SUVmax,
    highest first.

    Parameters
    ----------
    suv, grid
        SUV volume ``[slice, row, column]`` and its grid.
    threshold_suv
        SUV at or above which a voxel is hot. The default, 3.0, is a configurable
        convention of this package, not a published cut-off.
    min_volume_cc
        Regions smaller than this (cc) are left out.
    exclusion_mask
        Boolean mask on ``grid`` (e.g. bladder) whose voxels are never part of a region.
    delineated
        Lesion id -> boolean mask on ``grid`` of the lesions already delineated.

    Returns
    -------
    list of Candidate
        With the hottest voxel (``peak_point_mm``) and the mean voxel position
        (``centroid_mm``) in LPS mm.

    Notes
    -----
    A lesion that is not delineated but joins a delineated one above ``threshold_suv``
    falls in the same region and is reported with it as ``already_delineated``; compare
    the region's ``volume_cc`` with the lesion's, or raise ``threshold_suv``.

    Examples
    --------
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((8, 8, 8), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> suv = np.ones(g.shape); suv[1:3, 1:3, 1:3] = 5.0; suv[6, 6, 6] = 8.0
    >>> [(c.suv_max, c.n_voxels, c.centroid_mm) for c in detect_candidates(suv, g)]
    [(8.0, 1, (12.0, 12.0, 12.0)), (5.0, 8, (3.0, 3.0, 3.0))]
    >>> lesion = np.zeros(g.shape, bool); lesion[6, 6, 6] = True
    >>> [(c.status, c.delineated_as) for c in detect_candidates(suv, g, delineated={"L1": lesion})]
    [('already_delineated', ('L1',)), ('suggestion', ())]
    """
    try:
        t, v = float(threshold_suv), float(min_volume_cc)
    except (TypeError, ValueError, OverflowError):
        t = v = math.nan
    if not (math.isfinite(t) and t > 0 and math.isfinite(v) and v >= 0):
        raise InvalidParameterError(
            f"threshold_suv must be a finite SUV > 0 and min_volume_cc finite and >= 0, got "
            f"{threshold_suv!r} and {min_volume_cc!r}: a threshold <= 0 marks the whole "
            "volume, NaN marks nothing"
        )
    arr = np.asarray(_check_volume(suv, grid), dtype=float)
    excl = _check_mask(exclusion_mask, grid, "exclusion mask")
    masks = {str(k): _check_mask(v, grid, f"mask of lesion {k}") for k, v in
             (delineated or {}).items()}
    hot = arr >= threshold_suv
    if excl is not None:
        hot &= ~excl
    labels, n = ndimage.label(hot, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    maxima = ndimage.maximum(arr, labels, index)
    positions = ndimage.maximum_position(arr, labels, index)
    # centroid: row/column positions are linear in the index; slice positions may not be
    per_slice = np.stack([np.bincount(labels[k].ravel(), minlength=n + 1)[1:]
                          for k in range(grid.shape[0])])  # (slices, regions)
    mean_slice_mm = (per_slice.T @ np.asarray(grid.slice_positions_mm, float)) / counts
    com = np.array(ndimage.center_of_mass(np.ones(arr.shape), labels, index)).reshape(n, 3)
    d = grid.direction
    centroids = (grid.origin_mm + mean_slice_mm[:, None] * d[0]
                 + (com[:, 1] * grid.spacing_mm[1])[:, None] * d[1]
                 + (com[:, 2] * grid.spacing_mm[2])[:, None] * d[2])
    owners: dict[int, list[str]] = {}
    for lesion_id, m in masks.items():
        if m is None:
            continue
        for lab in np.unique(labels[m]):
            if lab:
                owners.setdefault(int(lab), []).append(lesion_id)
    out = []
    for lab, (cnt, mx, pos, cen) in enumerate(
        zip(counts, maxima, positions, centroids, strict=True), start=1
    ):
        vol = float(cnt) * grid.voxel_volume_mm3 / 1000.0
        if vol < min_volume_cc:
            continue
        pt = grid.index_to_world(np.array(pos, dtype=float))
        ids = tuple(owners.get(lab, ()))
        out.append(Candidate(
            status="already_delineated" if ids else "suggestion",
            peak_point_mm=tuple(float(v) for v in pt),  # type: ignore[arg-type]
            centroid_mm=tuple(float(v) for v in cen),  # type: ignore[arg-type]
            suv_max=float(mx), volume_cc=vol, n_voxels=int(cnt), delineated_as=ids,
        ))
    return sorted(out, key=lambda c: -c.suv_max)


def apply_default_preset(
    lesions: Sequence[PETLesion], preset: ThresholdPreset | str
) -> list[PETLesion]:
    """Give ``preset`` to every ``pet_seed`` source that sets no threshold itself.

    A source that gives a ``preset``, ``method`` or ``level`` keeps it; other sources
    are left unchanged.

    Examples
    --------
    >>> ls = [PETLesion(id="L1", site="bone", source={"kind": "pet_seed", "point_mm": [0, 0, 0]}),
    ...       PETLesion(id="L2", site="bone", source={"kind": "pet_seed", "point_mm": [9, 0, 0],
    ...                                              "level": 0.5})]
    >>> [(x.source.method.value, x.source.level) for x in apply_default_preset(ls, "specific")]
    [('percent_max', 0.45), ('background_adaptive', 0.5)]
    """
    try:
        name = ThresholdPreset(str(getattr(preset, "value", preset)))
    except ValueError:
        raise InvalidParameterError(
            f"unknown preset {preset!r}: use " + ", ".join(p.value for p in ThresholdPreset)
        ) from None
    out = []
    for lesion in lesions:
        src = lesion.source
        if isinstance(src, PETSeedSource) and not src.gives_threshold:
            new = PETSeedSource.model_validate(
                {**src.model_dump(exclude={"preset", "method", "level"}), "preset": name}
            )
            lesion = lesion.model_copy(update={"source": new})
        out.append(lesion)
    return out


#: A lesion of the lesions file (the one lesions model, :class:`rtplan.lesions.Lesion`).
PETLesion = Lesion


class PETLesionResult(BaseModel):
    """Delineation and measures of one ``pet_seed`` lesion."""

    model_config = ConfigDict(frozen=True)

    id: str
    site: LesionSite
    mitnm: str
    preset: ThresholdPreset | None = None
    method: SegmentationMethod
    level: float
    threshold_suv: float
    background_suv: float | None
    measures: LesionMeasures
    touches_radius: bool
    excluded_voxels: int
    warnings: tuple[str, ...] = ()


class PETLesionReport(BaseModel):
    """What :func:`measure_pet_lesions` returns (the ``rtplan lesions --json`` payload)."""

    model_config = ConfigDict(frozen=True)

    normalization: str
    fwhm_mm: float
    lesions: tuple[PETLesionResult, ...]
    not_on_pet: tuple[str, ...] = Field(
        default=(), description="ids of lesions whose source is not a pet_seed"
    )
    mitnm: dict[str, str]
    oligometastatic: OligometastaticCheck
    candidates: tuple[Candidate, ...] = Field(
        default=(), description="hot regions that overlap no delineated lesion: suggestions")
    delineated_regions: tuple[Candidate, ...] = Field(
        default=(), description="hot regions that overlap a delineated lesion (the lesion "
        "and its partial-volume rim): not suggested again")


def measure_pet_lesions(
    suv: ArrayLike,
    grid: Grid,
    lesions: Sequence[PETLesion],
    *,
    fwhm_mm: float = 6.0,
    exclusion_mask: ArrayLike | None = None,
    normalization: str = "bw",
    candidates_suv: float | None = None,
    default_preset: ThresholdPreset | str | None = None,
) -> PETLesionReport:
    """Delineate and measure every ``pet_seed`` lesion; stage all lesions.

    Parameters
    ----------
    suv, grid
        SUV volume and its PET grid.
    lesions
        The lesions (all sites count for miTNM and the oligometastatic check; only
        ``pet_seed`` sources are delineated).
    fwhm_mm
        PET resolution (FWHM, mm) for the partial-volume flag.
    exclusion_mask
        Boolean mask on ``grid`` never included in a lesion (e.g. bladder).
    normalization
        Label of the SUV normalization, reported as is.
    candidates_suv
        When given, also list hot regions (SUV >= this) with :func:`detect_candidates`:
        regions overlapping no delineated lesion are the ``candidates`` (suggestions);
        those overlapping one are ``delineated_regions``. Exclusion-mask voxels are
        left out.
    default_preset
        A :class:`ThresholdPreset` given to every ``pet_seed`` source that sets no
        ``preset``, ``method`` or ``level`` (:func:`apply_default_preset`).

    Returns
    -------
    PETLesionReport
        Two ``pet_seed`` lesions that climb to the same peak voxel are the same lesion:
        the later one gets a warning and is counted once for the oligometastatic check.

    Examples
    --------
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((20, 20, 20), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    >>> suv = np.ones(g.shape); suv[8:12, 8:12, 8:12] = 8.0
    >>> seed = PETSeedSource(point_mm=(20, 20, 20), max_radius_mm=15)
    >>> rep = measure_pet_lesions(suv, g, [PETLesion(id="L1", site="bone", source=seed)])
    >>> r = rep.lesions[0]
    >>> r.mitnm, r.measures.volume_cc, r.measures.partial_volume_warning
    ('miM1b', 0.512, True)
    """
    ids = [lesion.id for lesion in lesions]
    dup = duplicate_ids(ids)
    if dup:
        raise InvalidParameterError(f"lesion ids must be unique; repeated: {dup}")
    labels = mitnm_labels([lesion.site for lesion in lesions])
    if default_preset is not None:
        lesions = apply_default_preset(lesions, default_preset)
    results = []
    masks: dict[str, NDArray[np.bool_]] = {}
    peaks: dict[str, tuple[int, int, int]] = {}
    duplicates: set[str] = set()
    for lesion, label in zip(lesions, labels, strict=True):
        src = lesion.source
        if not isinstance(src, PETSeedSource):
            continue
        seg = segment_seed(
            suv, grid, src.point_mm, method=src.method, level=src.level,
            max_radius_mm=src.max_radius_mm, exclusion_mask=exclusion_mask,
            background_suv=src.background_suv,
        )
        m = measure_lesion(suv, grid, seg.mask, fwhm_mm=fwhm_mm)
        masks[lesion.id] = seg.mask
        warnings = []
        if seg.touches_radius:
            warnings.append(
                f"reaches max_radius_mm {src.max_radius_mm:g}: cut by the radius; check it"
            )
        if m.partial_volume_warning:
            warnings.append(
                f"equivalent diameter {m.equivalent_diameter_mm:.1f} mm < 2 x FWHM "
                f"({2 * fwhm_mm:g} mm): threshold volume unreliable (partial volume)"
            )
        if seg.excluded_voxels:
            warnings.append(f"{seg.excluded_voxels} hot voxels left out by the exclusion mask")
        warnings.extend(seg.warnings)
        same = [other for other, pk in peaks.items() if pk == seg.peak_index]
        overlap = [other for other, om in masks.items()
                   if other != lesion.id and other not in same and np.any(om & seg.mask)]
        if same:
            duplicates.add(lesion.id)
            warnings.append(
                f"reaches the same hot spot as lesion {same[0]!r} (peak voxel "
                f"{list(seg.peak_index)}): the same lesion, counted once for the "
                "oligometastatic check; remove the duplicate or correct its seed"
            )
        if overlap:
            warnings.append(
                f"overlaps lesion(s) {overlap}: check that they are different lesions"
            )
        peaks[lesion.id] = seg.peak_index
        results.append(PETLesionResult(
            id=lesion.id, site=lesion.site, mitnm=label, preset=src.preset,
            method=src.method, level=src.level,
            threshold_suv=seg.threshold_suv, background_suv=seg.background_suv, measures=m,
            touches_radius=seg.touches_radius, excluded_voxels=seg.excluded_voxels,
            warnings=tuple(warnings),
        ))
    found: list[Candidate] = []
    if candidates_suv is not None:
        found = detect_candidates(suv, grid, threshold_suv=candidates_suv,
                                  exclusion_mask=exclusion_mask, delineated=masks)
    return PETLesionReport(
        normalization=str(normalization),
        fwhm_mm=float(fwhm_mm),
        lesions=tuple(results),
        not_on_pet=tuple(lesion.id for lesion in lesions if not lesion.is_pet_seed),
        mitnm=dict(zip(ids, labels, strict=True)),
        oligometastatic=oligometastatic_check(
            [lesion.site for lesion in lesions if lesion.id not in duplicates]),
        candidates=tuple(c for c in found if c.status == "suggestion"),
        delineated_regions=tuple(c for c in found if c.status == "already_delineated"),
    )
