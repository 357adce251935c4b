"""Structure QA images: CT slices through each GTV centre with the contours drawn.

For every lesion (a GTV ROI) one PNG with three panels, axial, coronal and sagittal CT
slices through the centre of the GTV (the centroid of its voxels on the CT grid),
soft-tissue window W400/L40 HU, every ROI drawn in its ROIDisplayColor (GTV/CTV/PTV,
ENI/SIB volumes, body), orientation letters, a scale bar in mm and a legend; and one
overview page ``index.html`` showing the PNGs. Needs the ``plot`` extra (matplotlib).

Axes are in patient coordinates (LPS, mm): axial panels show x to the right (patient
left on the viewer's right) and y downwards (anterior at the top); coronal panels x and
z (superior at the top); sagittal panels y (anterior on the left) and z. On the axial
panel the RTSTRUCT polygons of that slice are drawn as they are stored; on the coronal
and sagittal panels the outline of each ROI's mask on the CT grid (voxel-centre rule) is
drawn.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtplan._shared.io import atomic_write, atomic_write_text, check_writable
from rtplan._shared.optional import import_optional
from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import CTSeries
from rtplan.structures.contour import ROIContours
from rtplan.structures.rtstruct import StructureSet, StructureSetROI

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rtplan.structures.targets import TargetSet

__all__ = ["QA_WINDOW_HU", "structure_qa_figures", "write_structure_qa"]

#: Soft-tissue window (width, level) in HU.
QA_WINDOW_HU: tuple[float, float] = (400.0, 40.0)

_FEATURE = "structure QA images"
_VIEWS = ("axial", "coronal", "sagittal")


def _structure_set(
    rois: Sequence[ROIContours] | StructureSet | TargetSet, ct: CTSeries
) -> StructureSet:
    """Any of the accepted ROI containers as a :class:`StructureSet`."""
    if isinstance(rois, StructureSet):
        return rois
    from rtplan.structures.targets import TargetSet, targets_to_rois

    items = targets_to_rois(rois) if isinstance(rois, TargetSet) else list(rois)
    out = []
    for i, r in enumerate(items):
        if not isinstance(r, ROIContours):
            raise InputError(
                f"rois must be ROIContours, a StructureSet or a TargetSet; item {i} is "
                f"{type(r).__name__}"
            )
        out.append(StructureSetROI(
            i + 1, r.name, r.roi_type, r.color, r.description,
            tuple(np.asarray(c.points_mm, dtype=float) for c in r.contours),
            ct.frame_of_reference_uid,
        ))
    return StructureSet(tuple(out), "", (ct.frame_of_reference_uid,), (), "", "")


def _axis_signs(ct: CTSeries) -> tuple[int, int, int]:
    """Signs of the slice, row and column axes along z, y and x; refuses oblique CTs."""
    d = np.asarray(ct.grid.direction)
    want = ((0, 2), (1, 1), (2, 0))  # (grid axis, patient axis): slice z, row y, column x
    signs = []
    for a, p in want:
        if abs(abs(d[a, p]) - 1.0) > 1e-4:
            raise GeometryError(
                "structure QA images need a CT whose slices are axial and whose rows and "
                f"columns follow the patient y and x axes; this grid's directions are "
                f"{np.round(d, 4).tolist()}"
            )
        signs.append(int(np.sign(d[a, p])))
    return signs[0], signs[1], signs[2]


def _edges(centres: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cell edges (mm) around increasing centres."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "roi"


def structure_qa_figures(
    ct: CTSeries,
    rois: Sequence[ROIContours] | StructureSet | TargetSet,
    *,
    lesions: Sequence[str] | None = None,
    fov_mm: float = 120.0,
    window_hu: tuple[float, float] = QA_WINDOW_HU,
) -> dict[str, Figure]:
    """QA figures, one per lesion: axial, coronal and sagittal panels through the GTV centre.

    Parameters
    ----------
    ct
        The planning CT the structures were drawn on (axial, rows and columns along
        the patient y and x axes).
    rois
        The structures: ROIContours (e.g. ``targets_to_rois(targets)``), a
        :class:`~rtplan.structures.targets.TargetSet` or a
        :class:`~rtplan.structures.rtstruct.StructureSet` read from an RTSTRUCT.
    lesions
        GTV ROI names to show (default: every ROI of type GTV, else every ROI whose
        name starts with ``GTV``).
    fov_mm
        Side of the square field of view around the GTV centre (mm).
    window_hu
        (width, level) of the grey scale (HU); default W400/L40 (soft tissue).

    Returns
    -------
    dict
        GTV name -> matplotlib Figure with three axes (``axial``, ``coronal``,
        ``sagittal``, in that order; each axes' data coordinates are LPS mm) and one
        figure legend of the ROIs seen in its fields of view, smallest first. Smaller ROIs are drawn
        over larger ones (a lesion's GTV over its CTV and PTV, those over elective
        volumes, SIB unions and the body).

    Raises
    ------
    InputError
        No GTV, an unknown lesion name, or a GTV without voxels on the CT grid.
    GeometryError
        An oblique CT.
    """
    from rtplan.dose import roi_masks

    if not fov_mm > 0:
        raise InputError(f"fov_mm must be > 0 mm, got {fov_mm!r}")
    width, level = (float(v) for v in window_hu)
    if not width > 0:
        raise InputError(f"window width must be > 0 HU, got {width!r}")
    mpl_figure = import_optional("matplotlib.figure", feature=_FEATURE)
    mpl_lines = import_optional("matplotlib.lines", feature=_FEATURE)
    ss = _structure_set(rois, ct)
    drawn = [r for r in ss.rois if r.polygons_mm]
    gtvs = [r.name for r in drawn if r.roi_type.upper() == "GTV"] or [
        r.name for r in drawn if r.name.upper().startswith("GTV")]
    if lesions is not None:
        unknown = [n for n in lesions if n not in {r.name for r in drawn}]
        if unknown:
            raise InputError(
                f"lesions {unknown} are not ROIs with contours; available GTVs: {gtvs}"
            )
        gtvs = list(lesions)
    if not gtvs:
        raise InputError(
            f"no GTV among the ROIs {[r.name for r in drawn]}: give lesions=[...] names"
        )
    grid = ct.grid
    masks = roi_masks(ss, grid, [r.name for r in drawn])
    # larger ROIs first, smaller on top: a lesion's GTV over its CTV over its PTV, and
    # those over the elective volumes, the SIB unions and the body that they overlap
    size = {n: int(m.sum()) for n, m in masks.items()}
    drawn.sort(key=lambda r: -size[r.name])
    _axis_signs(ct)  # axial CT, rows along y, columns along x (any sign: sorted below)
    nk, nr, nc = grid.shape
    z = grid.index_to_world(np.stack([np.arange(nk), np.zeros(nk), np.zeros(nk)], 1))[:, 2]
    y = grid.index_to_world(np.stack([np.zeros(nr), np.arange(nr), np.zeros(nr)], 1))[:, 1]
    x = grid.index_to_world(np.stack([np.zeros(nc), np.zeros(nc), np.arange(nc)], 1))[:, 0]
    # display order: x and y increasing, z increasing (flipped at display for coronal)
    ox, oy, oz = np.argsort(x), np.argsort(y), np.argsort(z)
    hu = np.asarray(ct.volume_hu)
    vmin, vmax = level - width / 2, level + width / 2
    colors = {r.name: tuple(c / 255.0 for c in (r.color or (255, 255, 0))) for r in drawn}
    half = fov_mm / 2
    thickness = float(np.min(np.diff(np.sort(z)))) if nk > 1 else float(grid.spacing_mm[0])

    figs: dict[str, Figure] = {}
    for name in gtvs:
        m = masks[name]
        if not m.any():
            raise InputError(f"GTV {name!r} has no voxel on the CT grid: check its contours")
        k0, r0, c0 = (round(float(v)) for v in np.argwhere(m).mean(axis=0))
        cx, cy, cz = float(x[c0]), float(y[r0]), float(z[k0])
        fig = mpl_figure.Figure(figsize=(13.5, 4.9), dpi=100, layout="constrained")
        axes = fig.subplots(1, 3)
        shown: set[str] = set()
        # axial: rows = y, columns = x
        ax = axes[0]
        ax.imshow(hu[k0][np.ix_(oy, ox)], cmap="gray", vmin=vmin, vmax=vmax,
                  extent=(x[ox[0]] - grid.spacing_mm[2] / 2, x[ox[-1]] + grid.spacing_mm[2] / 2,
                          y[oy[-1]] + grid.spacing_mm[1] / 2, y[oy[0]] - grid.spacing_mm[1] / 2),
                  interpolation="nearest")
        for roi in drawn:
            for poly in roi.polygons_mm:
                if poly.size and abs(float(np.mean(poly[:, 2])) - cz) < thickness / 2:
                    closed = np.vstack([poly, poly[:1]])
                    ax.plot(closed[:, 0], closed[:, 1], color=colors[roi.name], lw=2.0,
                            solid_joinstyle="round", solid_capstyle="round")
                    if np.any((np.abs(poly[:, 0] - cx) <= half)
                              & (np.abs(poly[:, 1] - cy) <= half)):
                        shown.add(roi.name)
        _frame(ax, cx, cy, half, invert_y=True, labels=("R", "L", "A", "P"))
        ax.set_title(f"axial, z = {cz:.1f} mm")
        # coronal (fixed row r0: y = cy): columns x, slices z
        ax = axes[1]
        img = hu[:, r0, :][np.ix_(oz, ox)]
        ax.pcolormesh(_edges(x[ox]), _edges(z[oz]), img, cmap="gray", vmin=vmin, vmax=vmax,
                      shading="flat", rasterized=True)
        for roi in drawn:
            sl = masks[roi.name][:, r0, :][np.ix_(oz, ox)]
            if sl.any():
                if sl[np.ix_(np.abs(z[oz] - cz) <= half, np.abs(x[ox] - cx) <= half)].any():
                    shown.add(roi.name)
                ax.contour(x[ox], z[oz], sl.astype(float), levels=[0.5],
                           colors=[colors[roi.name]], linewidths=2.0)
        _frame(ax, cx, cz, half, invert_y=False, labels=("R", "L", "S", "I"))
        ax.set_title(f"coronal, y = {cy:.1f} mm")
        # sagittal (fixed column c0: x = cx): rows y, slices z
        ax = axes[2]
        img = hu[:, :, c0][np.ix_(oz, oy)]
        ax.pcolormesh(_edges(y[oy]), _edges(z[oz]), img, cmap="gray", vmin=vmin, vmax=vmax,
                      shading="flat", rasterized=True)
        for roi in drawn:
            sl = masks[roi.name][:, :, c0][np.ix_(oz, oy)]
            if sl.any():
                if sl[np.ix_(np.abs(z[oz] - cz) <= half, np.abs(y[oy] - cy) <= half)].any():
                    shown.add(roi.name)
                ax.contour(y[oy], z[oz], sl.astype(float), levels=[0.5],
                           colors=[colors[roi.name]], linewidths=2.0)
        _frame(ax, cy, cz, half, invert_y=False, labels=("A", "P", "S", "I"))
        ax.set_title(f"sagittal, x = {cx:.1f} mm")
        for a in axes:
            _scale_bar(a, fov_mm)
        handles = [mpl_lines.Line2D([], [], color=colors[r.name], lw=2.5,
                                    label=f"{r.name} ({r.roi_type or 'ROI'})")
                   for r in reversed(drawn) if r.name in shown]
        fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=8)
        fig.suptitle(
            f"{name}: CT W{width:g}/L{level:g} HU through the GTV centre "
            f"({cx:.1f}, {cy:.1f}, {cz:.1f}) mm LPS"
        )
        figs[name] = fig
    return figs


def _frame(ax: Axes, cu: float, cv: float, half: float, *, invert_y: bool,
           labels: tuple[str, str, str, str]) -> None:
    """Field of view around (cu, cv), orientation letters (left, right, top, bottom)."""
    ax.set_xlim(cu - half, cu + half)
    ax.set_ylim((cv + half, cv - half) if invert_y else (cv - half, cv + half))
    ax.set_aspect("equal")
    ax.set_facecolor("black")  # outside the CT
    ax.set_xticks([])
    ax.set_yticks([])
    left, right, top, bottom = labels
    for u, v, text, ha, va in ((0.02, 0.5, left, "left", "center"),
                               (0.98, 0.5, right, "right", "center"),
                               (0.5, 0.98, top, "center", "top"),
                               (0.5, 0.02, bottom, "center", "bottom")):
        ax.text(u, v, text, ha=ha, va=va, color="yellow", fontsize=11, fontweight="bold",
                transform=ax.transAxes)


def _scale_bar(ax: Axes, fov_mm: float) -> None:
    """A white bar of 10, 20 or 50 mm at the lower left, in data units (mm)."""
    length = 50.0 if fov_mm >= 300 else 20.0 if fov_mm >= 80 else 10.0
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    u = x0 + 0.06 * (x1 - x0)
    v = y0 + 0.08 * (y1 - y0)
    ax.plot([u, u + length], [v, v], color="white", lw=3, solid_capstyle="butt")
    ax.text(u + length / 2, v + 0.03 * (y1 - y0), f"{length:g} mm", color="white",
            ha="center", va="bottom" if y1 > y0 else "top", fontsize=9)


def _save_png(fig: Figure, path: Path, overwrite: bool) -> Path:
    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, save, overwrite=overwrite)


def write_structure_qa(
    ct: CTSeries,
    rois: Sequence[ROIContours] | StructureSet | TargetSet,
    out_dir: str | os.PathLike[str],
    *,
    lesions: Sequence[str] | None = None,
    fov_mm: float = 120.0,
    window_hu: tuple[float, float] = QA_WINDOW_HU,
    overwrite: bool = False,
) -> list[Path]:
    """Write the QA PNGs (one per lesion) and an overview ``index.html`` to ``out_dir``.

    Parameters are those of :func:`structure_qa_figures`; ``overwrite`` allows replacing
    existing files (refused otherwise, before anything is written).

    Returns
    -------
    list of pathlib.Path
        ``qa_<GTV>.png`` per lesion, then ``index.html``.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.demo import write_demo_inputs
    >>> from rtplan.imaging import load_ct_series
    >>> from rtplan.structures.spec import load_lesions_file
    >>> from rtplan.structures.targets import build_targets
    >>> d = tempfile.mkdtemp()
    >>> paths = write_demo_inputs(d + "/in", with_pet=False)
    >>> ct = load_ct_series(paths["ct"])
    >>> targets = build_targets(load_lesions_file(paths["lesions"]), ct)
    >>> [p.name for p in write_structure_qa(ct, targets, d + "/qa", lesions=["GTVn1"])]
    ['qa_GTVn1.png', 'index.html']
    """
    out = Path(out_dir)
    figs = structure_qa_figures(ct, rois, lesions=lesions, fov_mm=fov_mm,
                                window_hu=window_hu)
    names = {n: out / f"qa_{_safe(n)}.png" for n in figs}
    index = out / "index.html"
    for p in [*names.values(), index]:
        check_writable(p, overwrite=overwrite)
    written = [_save_png(figs[n], path, overwrite) for n, path in names.items()]
    width, level = window_hu
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>rtplan structure QA</title>",
        "<style>body{font-family:sans-serif;margin:1em}img{max-width:100%}</style>",
        "</head><body>", "<h1>Structure QA</h1>",
        f"<p>CT {html.escape(ct.series_instance_uid)}: axial, coronal and sagittal slices "
        f"through each GTV centre, window W{width:g}/L{level:g} HU, ROIs in their display "
        "colours (axial: RTSTRUCT polygons of that slice; coronal/sagittal: mask "
        "outlines on the CT grid). Scale bar in mm. Review every image.</p>",
    ]
    for n, path in names.items():
        parts += [f"<h2>{html.escape(n)}</h2>",
                  f'<img src="{html.escape(path.name)}" alt="QA of {html.escape(n)}">']
    parts.append("</body></html>\n")
    written.append(atomic_write_text(index, "\n".join(parts), overwrite=overwrite))
    return written
