"""Voxel-wise EQD2 and BED of a dose grid, with alpha/beta per structure.

Each voxel's dose per fraction is its own total dose divided by the number of
fractions (never the prescription's dose per fraction), so a 50 % isodose of an SBRT
plan gets the EQD2 of half the prescribed dose per fraction. alpha/beta may differ per
structure: :func:`alpha_beta_map` paints each structure's value onto the grid, resolving
overlaps by a stated policy, with a default elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rtplan.dose.rtdose import DoseGrid
from rtplan.errors import GridMismatchError, InputError, InvalidParameterError
from rtplan.radiobiology import LQ, LQL, USC, bed, eqdx, get_tissue
from rtplan.radiobiology.analysis import LQ_STRONG_WARN_GY, LQ_WARN_GY

__all__ = [
    "AlphaBetaSpec",
    "OverlapPolicy",
    "alpha_beta_map",
    "eqd2_descriptions",
    "eqd2_dose",
    "eqd2_map",
    "lq_dose_warnings",
    "parse_alpha_beta",
]

Model = LQ | LQL | USC


class OverlapPolicy(StrEnum):
    """How a voxel inside several structures gets its alpha/beta."""

    #: The smallest alpha/beta of the structures containing the voxel (for late effects
    #: this is the most fraction-size-sensitive tissue, the conservative choice).
    LOWEST = "lowest"
    #: The first structure of a priority list that contains the voxel.
    PRIORITY = "priority"


def parse_alpha_beta(text: str | float) -> float:
    """alpha/beta (Gy) from a number or a tissue preset key (``rectum_late``...).

    Examples
    --------
    >>> parse_alpha_beta("3"), parse_alpha_beta("prostate")
    (3.0, 1.5)
    """
    if isinstance(text, int | float):
        value = float(text)
    else:
        try:
            value = float(text)
        except ValueError:
            value = get_tissue(text).alpha_beta_gy
    if not np.isfinite(value) or value <= 0:
        raise InvalidParameterError(f"alpha/beta must be > 0 Gy, got {text!r}")
    return value


class AlphaBetaSpec(BaseModel):
    """alpha/beta (Gy) for a grid: a default, per-structure values and an overlap policy.

    Examples
    --------
    >>> s = AlphaBetaSpec(default_alpha_beta_gy=3, roi_alpha_beta_gy={"PTV": 1.5})
    >>> s.describe()
    'a/b 3 Gy; PTV 1.5 Gy; overlaps: lowest'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_alpha_beta_gy: Annotated[float, Field(gt=0)]
    roi_alpha_beta_gy: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    overlap: OverlapPolicy = OverlapPolicy.LOWEST
    priority: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_priority(self) -> AlphaBetaSpec:
        if self.overlap is OverlapPolicy.PRIORITY:
            missing = [n for n in self.roi_alpha_beta_gy if n not in self.priority]
            if missing:
                raise ValueError(
                    f"with the priority policy, list every structure that has an "
                    f"alpha/beta in the priority; missing: {missing}"
                )
        return self

    def describe(self) -> str:
        """One-line description (for DICOM descriptions and reports)."""
        parts = [f"a/b {self.default_alpha_beta_gy:g} Gy"]
        parts += [f"{n} {v:g} Gy" for n, v in self.roi_alpha_beta_gy.items()]
        policy = self.overlap.value
        if self.overlap is OverlapPolicy.PRIORITY:
            policy += " " + ">".join(self.priority)
        return "; ".join(parts) + f"; overlaps: {policy}"


def alpha_beta_map(
    shape: tuple[int, ...],
    masks: Mapping[str, NDArray[np.bool_]],
    roi_alpha_beta_gy: Mapping[str, float],
    default_alpha_beta_gy: float,
    *,
    overlap: OverlapPolicy | str = OverlapPolicy.LOWEST,
    priority: Sequence[str] = (),
) -> NDArray[np.float64]:
    """alpha/beta (Gy) of every voxel from structure masks.

    Parameters
    ----------
    shape
        Grid shape ``(slices, rows, columns)``.
    masks
        Structure name -> boolean mask of ``shape`` (e.g. from
        :func:`rtplan.dose.roi_masks`). Every name of ``roi_alpha_beta_gy`` needs one.
    roi_alpha_beta_gy
        Structure name -> alpha/beta (Gy).
    default_alpha_beta_gy
        alpha/beta of voxels in none of those structures.
    overlap
        ``"lowest"``: a voxel in several structures gets the smallest of their values;
        ``"priority"``: it gets the value of the first structure in ``priority``.
    priority
        Structure names, highest priority first (needed for ``"priority"``).

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``.

    Examples
    --------
    >>> a = np.array([[[True, True, False]]]); b = np.array([[[False, True, True]]])
    >>> alpha_beta_map((1, 1, 3), {"A": a, "B": b}, {"A": 10, "B": 3}, 2).tolist()
    [[[10.0, 3.0, 3.0]]]
    >>> alpha_beta_map((1, 1, 3), {"A": a, "B": b}, {"A": 10, "B": 3}, 2,
    ...                overlap="priority", priority=["A", "B"]).tolist()
    [[[10.0, 10.0, 3.0]]]
    """
    policy = OverlapPolicy(overlap)
    out = np.full(shape, parse_alpha_beta(default_alpha_beta_gy), dtype=np.float64)
    missing = [n for n in roi_alpha_beta_gy if n not in masks]
    if missing:
        raise InputError(
            f"no mask for {missing}: available structures {sorted(masks)}"
        )
    for n in roi_alpha_beta_gy:
        if masks[n].shape != tuple(shape):
            raise GridMismatchError(
                f"mask of {n!r} has shape {masks[n].shape}, the grid {tuple(shape)}"
            )
        if not masks[n].any():
            raise InputError(
                f"structure {n!r} has an alpha/beta ({float(roi_alpha_beta_gy[n]):g} Gy) but "
                "its mask is empty: no voxel of the grid would get it. Check the structure "
                "(rtplan.dose.roi_masks(..., allow_empty=False) says why it has no voxel) "
                "or leave it out of the per-structure alpha/beta values"
            )
    if policy is OverlapPolicy.LOWEST:
        order = sorted(roi_alpha_beta_gy, key=lambda n: -float(roi_alpha_beta_gy[n]))
    else:
        unknown = [n for n in roi_alpha_beta_gy if n not in priority]
        if unknown:
            raise InvalidParameterError(
                f"structures {unknown} have an alpha/beta but are not in the priority "
                f"list {list(priority)}: add them"
            )
        order = [n for n in reversed(list(priority)) if n in roi_alpha_beta_gy]
    # paint from the lowest precedence to the highest: the last painted wins
    for n in order:
        out[masks[n]] = parse_alpha_beta(roi_alpha_beta_gy[n])
    return out


def eqd2_map(
    dose_gy: ArrayLike,
    fractions: int,
    alpha_beta_gy: float | ArrayLike,
    *,
    quantity: str = "EQD2",
    model: Model | None = None,
) -> NDArray[np.float64]:
    """EQD2 (or BED) of every voxel of a total-dose grid.

    Parameters
    ----------
    dose_gy
        Total physical dose (Gy) per voxel, any shape, >= 0.
    fractions
        Number of fractions the dose was delivered in.
    alpha_beta_gy
        A scalar, or an array of the dose's shape (see :func:`alpha_beta_map`).
    quantity
        ``"EQD2"`` (default) or ``"BED"``.
    model
        Dose-response model (default LQ), see :mod:`rtplan.radiobiology`.

    Returns
    -------
    numpy.ndarray
        float64 array of the dose's shape, in Gy.

    Notes
    -----
    LQ: ``EQD2 = D (D/n + a/b) / (2 + a/b)``, ``BED = D (1 + D / (n a/b))`` with the
    voxel's own ``D``; computed by :func:`rtplan.radiobiology.eqd2` once per distinct
    alpha/beta value.

    Examples
    --------
    >>> eqd2_map([[0.0, 7.5, 37.5]], 5, 1.5).round(2).tolist()
    [[0.0, 6.43, 96.43]]
    >>> eqd2_map([37.5, 37.5], 5, [1.5, 3.0]).round(2).tolist()
    [96.43, 78.75]
    """
    q = quantity.upper()
    if q not in ("EQD2", "BED"):
        raise InvalidParameterError(f"quantity must be EQD2 or BED, got {quantity!r}")
    d = np.asarray(dose_gy, dtype=np.float64)

    def convert(x: NDArray, ab: float) -> NDArray:
        if q == "BED":
            return np.asarray(bed(x, fractions, ab, model=model), dtype=np.float64)
        return np.asarray(eqdx(x, fractions, ab, 2.0, model=model), dtype=np.float64)

    ab = np.asarray(alpha_beta_gy, dtype=np.float64)
    if ab.ndim == 0:
        return convert(d, float(ab))
    if ab.shape != d.shape:
        raise GridMismatchError(
            f"alpha/beta map of shape {ab.shape} does not match the dose {d.shape}"
        )
    out = np.empty_like(d)
    values = np.unique(ab)
    if values.size == 1:
        return convert(d, float(values[0]))
    for v in values:
        sel = ab == v
        out[sel] = convert(d[sel], float(v))
    return out


def lq_dose_warnings(
    dose_gy: ArrayLike,
    fractions: int,
    voxel_volume_mm3: float,
    *,
    model: Model | None = None,
) -> list[str]:
    """Warnings for LQ applied voxel by voxel above 10 (and 18) Gy per fraction.

    Parameters
    ----------
    dose_gy
        Total physical dose (Gy) per voxel.
    fractions
        Number of fractions.
    voxel_volume_mm3
        Volume of one voxel (mm3), e.g. ``grid.voxel_volume_mm3``.
    model
        Dose-response model; LQ-L and USC are meant for large doses per fraction and
        get no warning.

    Returns
    -------
    list of str
        Empty when no voxel exceeds 10 Gy per fraction; otherwise a warning with the
        largest dose per fraction and the volume (cm3) above 10 Gy per fraction, and a
        stronger one with the volume above 18 Gy per fraction when there is any.

    Examples
    --------
    One voxel of 2 x 2 x 3 mm3 (0.012 cm3) at 14.68 Gy in a single fraction:

    >>> w = lq_dose_warnings(np.array([[[14.68, 5.0]]]), 1, 12.0)
    >>> len(w), w[0][:57]
    (1, 'LQ model used voxel by voxel up to 14.68 Gy per fraction:')
    >>> "0.012 cm3 (1 voxels) above 10 Gy per fraction" in w[0]
    True
    """
    if model is not None and not isinstance(model, LQ):
        return []
    d = np.asarray(dose_gy)
    if d.size == 0:
        return []
    n = int(fractions)
    max_fx = float(d.max()) / n
    if not max_fx > LQ_WARN_GY:
        return []
    cc = float(voxel_volume_mm3) / 1000.0
    k10 = int(np.count_nonzero(d > LQ_WARN_GY * n))
    out = [
        f"LQ model used voxel by voxel up to {max_fx:.4g} Gy per fraction: "
        f"{k10 * cc:.4g} cm3 ({k10} voxels) above {LQ_WARN_GY:g} Gy per fraction, where "
        "LQ extrapolation may overestimate the effect; consider LQ-L or USC there"
    ]
    k18 = int(np.count_nonzero(d > LQ_STRONG_WARN_GY * n))
    if k18:
        out.append(
            f"LQ model used above {LQ_STRONG_WARN_GY:g} Gy per fraction in {k18 * cc:.4g} "
            f"cm3 ({k18} voxels; up to {max_fx:.4g} Gy per fraction): the LQ model is not "
            "validated there and likely overestimates the effect; use the EQD2 of these "
            "voxels with great caution"
        )
    return out


def eqd2_dose(
    dose: DoseGrid,
    spec: AlphaBetaSpec | float,
    masks: Mapping[str, NDArray[np.bool_]] | None = None,
    *,
    fractions: int | None = None,
    quantity: str = "EQD2",
    model: Model | None = None,
) -> DoseGrid:
    """EQD2 (or BED) :class:`DoseGrid` of a physical :class:`DoseGrid`.

    Parameters
    ----------
    dose
        Total physical dose and grid (:func:`rtplan.dose.read_rtdose`).
    spec
        alpha/beta: one value (Gy) for every voxel, or an :class:`AlphaBetaSpec`.
    masks
        Structure masks on ``dose.grid`` for the spec's structures.
    fractions
        Number of fractions; default ``dose.fractions`` (required one way or the other).
    quantity, model
        See :func:`eqd2_map`.

    Returns
    -------
    DoseGrid
        Same grid and frame of reference, ``dose_type`` ``"EFFECTIVE"``; its
        ``warnings`` are :func:`lq_dose_warnings` of the physical dose (LQ above 10 and
        18 Gy per fraction: largest dose per fraction and the volume above, cm3).

    Raises
    ------
    InputError
        A structure of the spec without a mask, or with an empty one.

    Examples
    --------
    >>> from rtplan.imaging import Grid
    >>> g = Grid((1, 1, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    >>> e = eqd2_dose(DoseGrid(np.array([[[0.0, 37.5]]]), g, fractions=5), 1.5)
    >>> e.dose_gy.round(2).tolist(), e.dose_type
    ([[[0.0, 96.43]]], 'EFFECTIVE')
    """
    n = fractions if fractions is not None else dose.fractions
    if n is None:
        raise InvalidParameterError(
            "the number of fractions is unknown: give fractions (--fractions N) or an RTPLAN"
        )
    if dose.fractions is not None and fractions is not None and dose.fractions != fractions:
        raise InvalidParameterError(
            f"{fractions} fractions given but the dose grid records {dose.fractions}"
        )
    if isinstance(spec, AlphaBetaSpec):
        if spec.roi_alpha_beta_gy:
            if masks is None:
                raise InputError("structure alpha/beta values need structure masks")
            ab: float | NDArray = alpha_beta_map(
                dose.grid.shape, masks, spec.roi_alpha_beta_gy, spec.default_alpha_beta_gy,
                overlap=spec.overlap, priority=spec.priority,
            )
        else:
            ab = spec.default_alpha_beta_gy
    else:
        ab = parse_alpha_beta(spec)
    values = eqd2_map(dose.dose_gy, int(n), ab, quantity=quantity, model=model)
    warnings = lq_dose_warnings(dose.dose_gy, int(n), dose.grid.voxel_volume_mm3, model=model)
    return DoseGrid(
        values, dose.grid, dose.frame_of_reference_uid, int(n), "EFFECTIVE",
        dose.summation_type, dose.source, dose.dataset, tuple(warnings),
    )


def eqd2_descriptions(
    spec: AlphaBetaSpec | float,
    fractions: int | str,
    *,
    quantity: str = "EQD2",
    model: Model | None = None,
) -> tuple[str, str]:
    """SeriesDescription and comment of an EQD2/BED grid written as RTDOSE.

    Parameters
    ----------
    spec
        alpha/beta used (one value in Gy, or an :class:`AlphaBetaSpec`).
    fractions
        Number of fractions (or a text such as ``"39+5"`` for a sum of courses).
    quantity
        ``"EQD2"`` or ``"BED"`` (or e.g. ``"EQD2 sum"``).
    model
        Dose-response model (default LQ).

    Returns
    -------
    tuple of str
        A short description, quantity first, then the fraction count, the model and
        the alpha/beta values (cut at a word boundary to 64 characters by the RTDOSE
        writer, so the fractions and the default alpha/beta always fit), and a long
        comment stating how the grid was computed.

    Examples
    --------
    >>> eqd2_descriptions(AlphaBetaSpec(default_alpha_beta_gy=3,
    ...                   roi_alpha_beta_gy={"PTV": 1.5}), 5)[0]
    'EQD2, 5 fx, LQ, a/b 3 Gy; PTV 1.5 Gy'
    """
    sp = spec if isinstance(spec, AlphaBetaSpec) else AlphaBetaSpec(
        default_alpha_beta_gy=parse_alpha_beta(spec))
    label = (model or LQ()).describe()
    values = [f"a/b {sp.default_alpha_beta_gy:g} Gy"]
    values += [f"{n} {v:g} Gy" for n, v in sp.roi_alpha_beta_gy.items()]
    short = f"{quantity}, {fractions} fx, {label}, " + "; ".join(values)
    long = (
        f"{quantity} (Gy) by the {label} model, voxel-wise: each voxel's dose per "
        f"fraction is its own dose / {fractions} fractions. alpha/beta: {sp.describe()}. "
        "Written by rtplan."
    )
    return short, long
