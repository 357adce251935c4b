"""Dose-volume histograms and the ICRU 83 dose-volume metrics.

A :class:`DVH` keeps every distinct dose value of a structure with the volume that
receives it (voxels, or supersampled points, each standing for a volume), so the
metrics are computed from the samples, not from histogram bins:

* ``V(D)`` (``volume_at_dose_cc``): volume receiving at least ``D`` Gy.
* ``D_V`` (``dose_at_volume_gy``): the dose received by at least volume ``V`` (ICRU 83
  section 3.7: D98% near-minimum, D2% near-maximum, D50% median). Each distinct dose
  is placed at the middle of the volume it covers in the cumulative ordering (hottest
  first) and ``D_V`` is interpolated linearly between those points; a dose uniform
  over the structure (a linear ramp on a regular grid) is reproduced exactly.
* ``Dmean``, ``Dmin``, ``Dmax``; gEUD (Niemierko 1999) ``(sum v_i D_i^a / V)^(1/a)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from rtplan._shared.io import atomic_write, check_writable
from rtplan._shared.optional import import_optional
from rtplan.dose._roi import roi_samples
from rtplan.dose.rtdose import DoseGrid
from rtplan.errors import GridMismatchError, InputError, InvalidParameterError
from rtplan.structures.rtstruct import StructureSet, StructureSetROI, read_rtstruct

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DVH",
    "MAX_DVH_BINS",
    "DVHStatistics",
    "check_bin_width",
    "dvh_figure",
    "dvh_from_mask",
    "dvh_from_samples",
    "structure_dvhs",
    "write_dvh_plot",
]


#: Most histogram bins a DVH may have (0 to the maximum dose); more is refused up front.
MAX_DVH_BINS = 1_000_000


def check_bin_width(bin_width_gy: float, max_dose_gy: float) -> float:
    """Return the bin width (Gy) if the histogram up to ``max_dose_gy`` has at most
    :data:`MAX_DVH_BINS` bins; raise :class:`InvalidParameterError` otherwise.

    Call it before computing (e.g. with the dose grid's maximum) to refuse a width that
    would exhaust memory (1e-9 Gy over 60 Gy: 6e10 bins, 480 GB).

    Examples
    --------
    >>> check_bin_width(0.01, 60.0)
    0.01
    >>> check_bin_width(1e-9, 60.0)
    Traceback (most recent call last):
    ...
    rtplan.errors.InvalidParameterError: bin width 1e-09 Gy gives 6e+10 bins up to 60 Gy, ...
    """
    try:
        w = float(bin_width_gy)
        top = float(max_dose_gy)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(
            f"bin width must be a number of Gy, got {bin_width_gy!r}"
        ) from None
    if not (np.isfinite(w) and w > 0):
        raise InvalidParameterError(f"bin width must be > 0 Gy, got {bin_width_gy!r}")
    n = top / w if np.isfinite(top) and top > 0 else 0.0
    if n > MAX_DVH_BINS:
        raise InvalidParameterError(
            f"bin width {w:g} Gy gives {n:.3g} bins up to {top:g} Gy, more than "
            f"{MAX_DVH_BINS:,}: give a bin width of at least {top / MAX_DVH_BINS:.3g} Gy"
        )
    return w


class DVHStatistics(BaseModel):
    """Summary of a DVH (doses in Gy, volumes in cm3) for reports and JSON."""

    model_config = ConfigDict(frozen=True)

    name: str
    volume_cc: float
    min_gy: float
    max_gy: float
    mean_gy: float
    d2_gy: float
    d50_gy: float
    d98_gy: float
    outside_grid_cc: float = 0.0


@dataclass(frozen=True, eq=False)
class DVH:
    """Dose-volume data of one structure.

    Attributes
    ----------
    name
        Structure name.
    dose_gy
        Distinct sample doses (Gy), increasing.
    volume_cc
        Volume (cm3) receiving exactly each of those doses.
    outside_grid_cc
        Part of the structure beyond the dose grid (counted at 0 Gy).

    Examples
    --------
    >>> h = dvh_from_samples([10.0, 20.0, 30.0, 40.0], [1.0, 1.0, 1.0, 1.0])
    >>> h.total_volume_cc, h.mean_gy, h.volume_at_dose_cc(20.0)
    (4.0, 25.0, 3.0)
    >>> h.dose_at_volume_gy(2.0), h.dose_at_percent_gy(50)
    (25.0, 25.0)
    """

    name: str
    dose_gy: NDArray[np.float64]
    volume_cc: NDArray[np.float64]
    outside_grid_cc: float = 0.0

    # -- totals ---------------------------------------------------------------------
    @property
    def total_volume_cc(self) -> float:
        """Volume of the structure (cm3)."""
        return float(self.volume_cc.sum())

    def _need(self) -> None:
        if self.dose_gy.size == 0:
            raise InputError(f"structure {self.name!r} is empty on this dose grid")

    @property
    def min_gy(self) -> float:
        """Smallest sample dose (Gy)."""
        self._need()
        return float(self.dose_gy[0])

    @property
    def max_gy(self) -> float:
        """Largest sample dose (Gy)."""
        self._need()
        return float(self.dose_gy[-1])

    @property
    def mean_gy(self) -> float:
        """Volume-weighted mean dose (Gy)."""
        self._need()
        return float(np.dot(self.dose_gy, self.volume_cc) / self.volume_cc.sum())

    # -- metrics ----------------------------------------------------------------------
    def volume_at_dose_cc(self, dose_gy: ArrayLike) -> NDArray[np.float64] | float:
        """``V_D``: volume (cm3) receiving at least ``dose_gy``."""
        d = np.asarray(dose_gy, dtype=float)
        above = np.concatenate([np.cumsum(self.volume_cc[::-1])[::-1], [0.0]])
        out = above[np.searchsorted(self.dose_gy, d, side="left")]
        return float(out) if out.ndim == 0 else out

    def volume_at_dose_percent(self, dose_gy: ArrayLike) -> NDArray[np.float64] | float:
        """``V_D`` as a percentage of the structure volume."""
        self._need()
        return self.volume_at_dose_cc(dose_gy) * 100.0 / self.total_volume_cc

    def dose_at_volume_gy(self, volume_cc: ArrayLike) -> NDArray[np.float64] | float:
        """``D_V``: dose (Gy) received by at least ``volume_cc`` (hottest volume first)."""
        self._need()
        v = np.asarray(volume_cc, dtype=float)
        if np.any(v < 0):
            raise InvalidParameterError(f"volume must be >= 0 cm3, got {volume_cc!r}")
        d_desc = self.dose_gy[::-1]
        w_desc = self.volume_cc[::-1]
        mid = np.cumsum(w_desc) - w_desc / 2.0
        out = np.interp(v, mid, d_desc)
        return float(out) if out.ndim == 0 else out

    def dose_at_percent_gy(self, percent: ArrayLike) -> NDArray[np.float64] | float:
        """``D_x%``: dose (Gy) received by at least ``percent`` % of the volume."""
        p = np.asarray(percent, dtype=float)
        if np.any((p < 0) | (p > 100)):
            raise InvalidParameterError(f"percent must be in [0, 100], got {percent!r}")
        return self.dose_at_volume_gy(p * self.total_volume_cc / 100.0)

    def geud_gy(self, a: float) -> float:
        """Generalised equivalent uniform dose (Gy), ``(sum v_i D_i^a / V)^(1/a)``.

        ``a`` large and positive approaches Dmax (serial organs), ``a = 1`` is Dmean,
        negative ``a`` weighs cold spots (tumours); with ``a < 0`` a zero dose gives 0.
        """
        self._need()
        a = float(a)
        if a == 0 or not np.isfinite(a):
            raise InvalidParameterError(f"gEUD parameter a must be finite and non-zero, got {a}")
        w = self.volume_cc / self.volume_cc.sum()
        if a < 0 and self.dose_gy[0] <= 0:
            return 0.0
        # scaled so that every term (D_i / scale)^a is <= 1 and one term is 1: by Dmax
        # for a > 0, by Dmin for a < 0; no overflow for any finite a (a = -1e308 gives
        # Dmin, not 0)
        if a > 0:
            scale = self.max_gy if self.max_gy > 0 else 1.0
        else:
            scale = self.min_gy
        return float(scale * np.dot(w, (self.dose_gy / scale) ** a) ** (1.0 / a))

    # -- histograms ------------------------------------------------------------------
    def cumulative(self, bin_width_gy: float = 0.01) -> tuple[NDArray, NDArray]:
        """Cumulative DVH: doses ``0, w, 2w, ...`` (Gy) and the volume (cm3) >= each."""
        edges = self._edges(bin_width_gy)
        return edges, np.asarray(self.volume_at_dose_cc(edges))

    def differential(self, bin_width_gy: float = 0.01) -> tuple[NDArray, NDArray]:
        """Differential DVH: bin edges (Gy, one more than bins) and volume per bin (cm3)."""
        edges = self._edges(bin_width_gy)
        edges = np.append(edges, edges[-1] + bin_width_gy)
        vol, _ = np.histogram(self.dose_gy, bins=edges, weights=self.volume_cc)
        return edges, vol

    def _edges(self, bin_width_gy: float) -> NDArray[np.float64]:
        top = self.max_gy if self.dose_gy.size else 0.0
        w = check_bin_width(bin_width_gy, top)
        return np.arange(int(np.floor(top / w)) + 2, dtype=np.float64) * w

    def statistics(self) -> DVHStatistics:
        """Volume, min/max/mean, D2%, D50% and D98%."""
        d2, d50, d98 = (float(x) for x in np.atleast_1d(self.dose_at_percent_gy([2.0, 50.0, 98.0])))
        return DVHStatistics(
            name=self.name, volume_cc=self.total_volume_cc, min_gy=self.min_gy,
            max_gy=self.max_gy, mean_gy=self.mean_gy, d2_gy=d2, d50_gy=d50, d98_gy=d98,
            outside_grid_cc=self.outside_grid_cc,
        )


def dvh_from_samples(
    dose_gy: ArrayLike,
    volume_cc: ArrayLike | float,
    *,
    name: str = "",
    outside_grid_cc: float = 0.0,
) -> DVH:
    """DVH of dose samples, each standing for a volume.

    Parameters
    ----------
    dose_gy
        Sample doses (Gy), any shape.
    volume_cc
        Volume of each sample (cm3): one value for all, or an array like ``dose_gy``
        (fractional partial-volume weights allowed).
    name
        Structure name.
    outside_grid_cc
        Recorded on the DVH (see :class:`DVH`).

    Examples
    --------
    >>> dvh_from_samples(np.full(1000, 2.0), 0.001).dose_at_percent_gy(98)
    2.0
    """
    d = np.asarray(dose_gy, dtype=np.float64).ravel()
    w = np.broadcast_to(np.asarray(volume_cc, dtype=np.float64), np.shape(dose_gy)).ravel()
    if d.size and not np.isfinite(d).all():
        raise InvalidParameterError("dose samples must be finite")
    keep = w > 0
    if not keep.all():
        d, w = d[keep], w[keep]
    if d.size == 0:
        return DVH(name, d, w.copy(), float(outside_grid_cc))
    if np.ndim(volume_cc) == 0:  # equal volumes: count the samples of each dose
        d = np.sort(d)
        starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
        volumes = np.diff(np.append(starts, d.size)) * float(np.asarray(volume_cc))
    else:  # one sort; ties are merged
        order = np.argsort(d)
        d = d[order]
        starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
        volumes = np.add.reduceat(w[order], starts)
    return DVH(name, d[starts], volumes.astype(np.float64), float(outside_grid_cc))


def dvh_from_mask(
    dose_gy: ArrayLike,
    mask: ArrayLike,
    voxel_volume_mm3: float,
    *,
    name: str = "",
) -> DVH:
    """DVH of the voxels of a mask (boolean, or fractional occupancy 0-1).

    Parameters
    ----------
    dose_gy
        ``[slice, row, column]`` dose (Gy).
    mask
        Same shape: True/1 inside; fractions weight partial voxels.
    voxel_volume_mm3
        Volume of one voxel (mm3), e.g. ``grid.voxel_volume_mm3``.

    Examples
    --------
    >>> dose = np.arange(8.0).reshape(2, 2, 2)
    >>> h = dvh_from_mask(dose, dose >= 4, 1000.0)
    >>> h.total_volume_cc, h.mean_gy, h.min_gy
    (4.0, 5.5, 4.0)
    """
    d = np.asarray(dose_gy)
    m = np.asarray(mask)
    if d.shape != m.shape:
        raise GridMismatchError(f"mask shape {m.shape} does not match the dose {d.shape}")
    v = float(voxel_volume_mm3) / 1000.0
    if m.dtype == bool:
        return dvh_from_samples(d[m], v, name=name)
    sel = m > 0
    return dvh_from_samples(d[sel], m[sel] * v, name=name)


def structure_dvhs(
    dose: DoseGrid,
    structures: str | os.PathLike[str] | StructureSet,
    names: Sequence[str] | None = None,
    *,
    supersampling: int = 3,
    check_frame_of_reference: bool = True,
) -> dict[str, DVH]:
    """DVHs of RTSTRUCT ROIs on a dose grid, sampled from the contours.

    Parameters
    ----------
    dose
        Dose grid (physical, or EQD2 from :func:`rtplan.dose.eqd2_dose`).
    structures
        RTSTRUCT path or :class:`~rtplan.structures.rtstruct.StructureSet`.
    names
        ROIs (default: every ROI with contours).
    supersampling
        In-plane sub-samples per dose pixel along each axis (see
        :func:`rtplan.dose.roi_samples`): 3 (default) gives 9 points per pixel, one at
        its centre.
    check_frame_of_reference
        Refuse ROIs in another frame of reference than the dose.

    Returns
    -------
    dict
        ROI name -> :class:`DVH`.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> from rtplan.imaging import Grid
    >>> g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    >>> h = structure_dvhs(DoseGrid(np.full(g.shape, 2.0), g), get_path("rt_ss"),
    ...                    ["patient"], supersampling=1)["patient"]
    >>> h.mean_gy
    2.0
    """
    ss = structures if isinstance(structures, StructureSet) else read_rtstruct(structures)
    rois = [_one_roi(ss, n) for n in names] if names is not None else [
        r for r in ss.rois if r.polygons_mm
    ]
    _check_unique_names(rois, ss)
    out: dict[str, DVH] = {}
    for roi in rois:
        if (
            check_frame_of_reference and dose.frame_of_reference_uid
            and roi.frame_of_reference_uid
            and roi.frame_of_reference_uid != dose.frame_of_reference_uid
        ):
            raise GridMismatchError(
                f"ROI {roi.name!r} is in frame of reference {roi.frame_of_reference_uid}, "
                f"the dose in {dose.frame_of_reference_uid}: register them first"
            )
        s = roi_samples(roi, dose.dose_gy, dose.grid, supersampling=supersampling)
        out[roi.name] = dvh_from_samples(
            s.dose_gy, s.volume_cc, name=roi.name, outside_grid_cc=s.outside_cc
        )
    return out


def _same_name(ss: StructureSet, name: str) -> list[StructureSetROI]:
    return [r for r in ss.rois if r.name == name]


def _duplicate_error(name: str, rois: Sequence[StructureSetROI], ss: StructureSet
                     ) -> InputError:
    numbers = ", ".join(str(r.number) for r in rois)
    return InputError(
        f"ROIs {numbers} (ROINumber) of '{ss.path}' are all called {name!r}: their DVHs "
        "would be reported under one name; rename them apart in the RTSTRUCT (the other "
        "ROIs can still be asked for by name)"
    )


def _one_roi(ss: StructureSet, name: str) -> StructureSetROI:
    """``ss.roi(name)``, with the ROI numbers named when several ROIs have that name."""
    same = _same_name(ss, name)
    if len(same) > 1:
        raise _duplicate_error(name, same, ss)
    return ss.roi(name)


def _check_unique_names(rois: Sequence[StructureSetROI], ss: StructureSet) -> None:
    """Refuse two ROIs of one name: a DVH keyed by name would silently lose one."""
    seen: dict[str, list[StructureSetROI]] = {}
    for roi in rois:
        seen.setdefault(roi.name, []).append(roi)
    for name, group in seen.items():
        if len({r.number for r in group}) > 1:
            raise _duplicate_error(name, group, ss)


def dvh_figure(
    dvhs: Mapping[str, DVH],
    *,
    dose_label: str = "Physical dose (Gy)",
    title: str = "Cumulative DVH",
    colors: Mapping[str, tuple[int, int, int] | None] | None = None,
) -> Figure:
    """Cumulative DVHs (percent of each structure's volume) as a matplotlib figure.

    Parameters
    ----------
    dvhs
        Structure name -> :class:`DVH` (empty ones are left out).
    dose_label
        x-axis label, e.g. ``"EQD2 (Gy): LQ, a/b 3 Gy, 5 fractions"``.
    title
        Figure title.
    colors
        Structure name -> RGB 0-255 display colour (RTSTRUCT ``ROIDisplayColor``);
        structures without one get matplotlib's default cycle. A colour shared by
        several structures gets dashed, dotted... lines; a near-white one a grey
        outline.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the legend sits outside it on the right, one entry per curve.

    Examples
    --------
    >>> h = dvh_from_samples([10.0, 20.0], 1.0, name="PTV")
    >>> fig = dvh_figure({"PTV": h}, colors={"PTV": (255, 0, 0)})
    >>> ax = fig.axes[0]
    >>> ax.get_lines()[0].get_color(), ax.get_ylabel()
    ((1.0, 0.0, 0.0), 'Volume (%)')
    """
    mpl_figure = import_optional("matplotlib.figure", feature="DVH plots")
    fig = mpl_figure.Figure(figsize=(8, 4.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    effects = import_optional("matplotlib.patheffects", feature="DVH plots")
    colors = colors or {}
    seen: dict[tuple[int, int, int], int] = {}
    for name, h in dvhs.items():
        if not h.dose_gy.size:
            continue
        d, v = h.cumulative(max(h.max_gy / 500, 1e-3))
        rgb = colors.get(name)
        kw: dict[str, object] = {}
        if rgb is not None:
            rgb = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
            kw["color"] = tuple(c / 255.0 for c in rgb)
            # a colour shared by several ROIs: told apart by the line style
            kw["linestyle"] = ("-", "--", ":", "-.")[seen.get(rgb, 0) % 4]
            seen[rgb] = seen.get(rgb, 0) + 1
            if 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] > 0.85 * 255:
                # near-white on white: a grey outline keeps the ROI's colour visible
                kw["path_effects"] = [effects.Stroke(linewidth=3, foreground="0.45"),
                                      effects.Normal()]
        ax.plot(d, v * 100 / h.total_volume_cc, label=name, **kw)
    ax.set_xlabel(dose_label)
    ax.set_ylabel("Volume (%)")
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def write_dvh_plot(
    path: str | os.PathLike[str],
    dvhs: Mapping[str, DVH],
    *,
    dose_label: str = "Physical dose (Gy)",
    title: str = "Cumulative DVH",
    colors: Mapping[str, tuple[int, int, int] | None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write :func:`dvh_figure` to ``path`` (format from its suffix: png, pdf, svg).

    Refuses an existing file unless ``overwrite``; written atomically. Returns the path.

    Examples
    --------
    >>> import tempfile, os
    >>> p = write_dvh_plot(os.path.join(tempfile.mkdtemp(), "dvh.png"),
    ...                    {"A": dvh_from_samples([1.0, 2.0], 1.0)})
    >>> p.read_bytes()[1:4]
    b'PNG'
    """
    fig = dvh_figure(dvhs, dose_label=dose_label, title=title, colors=colors)
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "pdf", "svg"):
        raise InputError(f"plot file {str(path)!r}: use a .png, .pdf or .svg name")
    check_writable(path, overwrite=overwrite)
    return atomic_write(path, lambda t: fig.savefig(t, format=fmt), overwrite=overwrite)
