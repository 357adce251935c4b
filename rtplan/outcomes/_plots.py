"""Figures of the outcomes report (needs the ``plot`` extra: matplotlib).

Kaplan-Meier curves per group with a number-at-risk table, a PSA waterfall and
toxicity bars, written as PNG files. matplotlib is imported only when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtplan._shared.io import atomic_write, check_writable
from rtplan._shared.optional import import_optional
from rtplan.errors import InputError
from rtplan.outcomes._cohort import ENDPOINTS, Cohort
from rtplan.outcomes._km import kaplan_meier
from rtplan.outcomes._psa import psa_response
from rtplan.outcomes._report import (
    _EP_NAMES,
    GROUPINGS,
    _bpfs_times,
    _psa_pre_post,
)
from rtplan.outcomes._toxicity import CTCAE_GRADES, ToxicityCell, toxicity_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GRADE_COLORS", "GROUPING_TITLES", "outcome_figures", "write_plots"]

#: Waterfall bar colours by PSA response category.
_WATERFALL_COLORS: dict[str, str] = {
    "decrease": "tab:blue", "unchanged": "tab:gray", "rise": "tab:red",
}


#: One fixed colour per CTCAE grade 0-5 (light to dark as the grade rises), the same
#: in every panel whether or not a grade occurs there.
GRADE_COLORS: dict[int, str] = {
    0: "#d9d9d9", 1: "#fee08b", 2: "#fdae61", 3: "#d73027", 4: "#7f0000", 5: "#000000",
}

#: Readable names of the groupings (:data:`~rtplan.outcomes._report.GROUPINGS`) for
#: figure titles.
GROUPING_TITLES: dict[str, str] = {
    "fraction_category": "fraction-count category",
    "adt_concomitant": "concomitant ADT",
    "eni": "elective nodal irradiation",
    "initial_treatment": "initial treatment",
    "relapse": "relapse",
    "damico_risk": "D'Amico risk group",
}


def _figure(figsize: tuple[float, float]) -> Figure:
    mpl_figure = import_optional("matplotlib.figure", feature="outcome plots (--plots)")
    return mpl_figure.Figure(figsize=figsize, dpi=120, layout="constrained")


def _save(fig, path: Path, overwrite: bool) -> Path:
    return atomic_write(path, lambda t: fig.savefig(t, format="png"), overwrite=overwrite)


def _waterfall_bars(pre: list[float], post: list[float], band_percent: float) -> list:
    """PSA responses with a finite percent change, largest rise first (waterfall order).

    Each bar's colour is that of its ``category`` (decrease / unchanged / rise with the
    band), the same classification as the report's PSA table.
    """
    resp = [psa_response(a, b, band_percent) for a, b in zip(pre, post, strict=True)]
    keep = [r for r in resp if np.isfinite(r.percent_change)]
    return sorted(keep, key=lambda r: -r.percent_change)


def outcome_figures(
    cohort: Cohort,
    by: str = "fraction_category",
    *,
    bpfs_rule: str = "paper",
    band_percent: float = 0.0,
    bpfs_death_is_event: bool = True,
) -> dict[str, Figure]:
    """The figures of :func:`write_plots` as matplotlib figures, by file name.

    Keys: ``km_<endpoint>.png``, ``psa_waterfall.png``, ``toxicity.png`` (only those
    with data). Kaplan-Meier titles read "<endpoint> by <grouping>" with the grouping's
    readable name (:data:`GROUPING_TITLES`). The toxicity figure has one panel per
    domain, stacked bars of the percent of assessed patients per worst CTCAE grade in
    the fixed :data:`GRADE_COLORS`, and one legend (``fig.legends[0]``) for all panels
    listing every grade that occurs in any panel.

    Examples
    --------
    >>> from rtplan.outcomes import Cohort, PatientRecord
    >>> pts = [PatientRecord(patient_id=f"P{i}", fractions=f, total_dose_gy=30,
    ...                      os_months=m, os_event=1) for i, (f, m) in enumerate([(3, 10),
    ...                      (30, 20)])]
    >>> figs = outcome_figures(Cohort(patients=pts))
    >>> figs["km_os.png"].axes[0].get_title()
    'Overall survival by fraction-count category'
    """
    if by not in GROUPINGS:
        raise InputError(f"unknown grouping {by!r}: choose one of {sorted(GROUPINGS)}")
    getter, order = GROUPINGS[by]
    labels = {p.patient_id: getter(p) for p in cohort.patients}
    present = {g for g in labels.values() if g is not None}
    levels = [g for g in order if g in present] if order else sorted(present)
    figs: dict[str, Figure] = {}
    warnings: list[str] = []
    for ep in ENDPOINTS:
        if ep == "bpfs":
            times = _bpfs_times(cohort, bpfs_rule, warnings, bpfs_death_is_event)
        else:
            times = {p.patient_id: v for p in cohort.patients if (v := p.endpoint(ep))}
        if times:
            figs[f"km_{ep}.png"] = _km_figure(times, labels, levels, ep, by)
    pre, post, _ = _psa_pre_post(cohort)
    if pre:
        figs["psa_waterfall.png"] = _waterfall_figure(pre, post, band_percent)
    cells = toxicity_table((r.patient_id, r.timepoint, r.domain, r.grade) for r in cohort.toxicity)
    if cells:
        figs["toxicity.png"] = _toxicity_figure(cells)
    return figs


def _km_figure(
    times: dict[str, tuple[float, int]],
    labels: dict[str, str | None],
    levels: list[str],
    ep: str,
    by: str,
) -> Figure:
    fig = _figure((7.5, 5.5))
    gs = fig.add_gridspec(2, 1, height_ratios=[4, 1])
    ax, ax_tab = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    tmax = max(v[0] for v in times.values())
    ticks = np.arange(0, tmax + 12, 12.0)
    rows = []
    for lv in levels:
        vals = [times[pid] for pid, g in labels.items() if g == lv and pid in times]
        if not vals:
            continue
        t = np.array([v[0] for v in vals])
        e = np.array([v[1] for v in vals])
        km = kaplan_meier(t, e)
        x = np.concatenate(([0.0], km.time))
        y = np.concatenate(([1.0], km.surv))
        line = ax.step(x, y, where="post", label=f"{lv} (n={t.size})")[0]
        cens = km.time[km.n_censor > 0]
        ax.plot(cens, km.survival_at(cens), "|", color=line.get_color(), markersize=8)
        rows.append((lv, km.at_risk(ticks), line.get_color()))
    ax.set_ylim(0, 1.05)
    xlim = (-0.05 * ticks[-1], 1.02 * ticks[-1])
    ax.set_xlim(*xlim)
    ax.set_xticks(ticks)
    ax.set_ylabel("Survival probability")
    ax.set_title(f"{_EP_NAMES[ep]} by {GROUPING_TITLES.get(by, by.replace('_', ' '))}")
    if rows:
        ax.legend(loc="lower left", frameon=False)
    ax.grid(alpha=0.3)
    ax_tab.set_xlim(*xlim)
    ax_tab.set_ylim(-0.5, len(rows) - 0.5)
    ax_tab.set_xticks(ticks)
    ax_tab.set_yticks(range(len(rows)), [r[0] for r in rows][::-1])
    for i, (_, counts, color) in enumerate(rows[::-1]):
        for tk, c in zip(ticks, counts, strict=True):
            ax_tab.text(tk, i, str(int(c)), ha="center", va="center", color=color)
    ax_tab.set_xlabel("Months since start of radiotherapy")
    ax_tab.set_title("Number at risk", fontsize=9, loc="left")
    ax_tab.tick_params(axis="y", length=0, pad=12)
    for s in ("top", "right", "left"):
        ax_tab.spines[s].set_visible(False)
    return fig


def _waterfall_figure(pre: list[float], post: list[float], band_percent: float) -> Figure:
    keep = _waterfall_bars(pre, post, band_percent)
    pct = np.array([r.percent_change for r in keep])
    fig = _figure((7.5, 4.5))
    ax = fig.add_subplot()
    colors = [_WATERFALL_COLORS[r.category] for r in keep]
    ax.bar(np.arange(pct.size), np.minimum(pct, 100), color=colors)
    ax.axhline(-50, color="k", ls="--", lw=0.8)
    if band_percent > 0:
        ax.axhspan(-band_percent, band_percent, color="0.85", zorder=0)
    mpl_patches = import_optional("matplotlib.patches", feature="outcome plots (--plots)")
    counts = {c: sum(r.category == c for r in keep) for c in _WATERFALL_COLORS}
    band = f" (within +-{band_percent:g} %)" if band_percent > 0 else " (no change)"
    handles = [
        mpl_patches.Patch(color=col, label=f"{cat}{band if cat == 'unchanged' else ''}"
                          f": {counts[cat]}")
        for cat, col in _WATERFALL_COLORS.items()
    ]
    handles.append(
        import_optional("matplotlib.lines", feature="outcome plots (--plots)").Line2D(
            [], [], color="k", ls="--", lw=0.8, label="50 % decline")
    )
    ax.legend(handles=handles, frameon=False)
    ax.set_ylabel("PSA change at 3 months (%), capped at +100")
    ax.set_xlabel("Patients (sorted)")
    ax.set_title("PSA waterfall")
    return fig


def _toxicity_figure(cells: list[ToxicityCell]) -> Figure:
    domains = list(dict.fromkeys(c.domain for c in cells))
    fig = _figure((3.2 * len(domains) + 1.4, 4.5))
    axes = [fig.add_subplot(1, len(domains), i + 1) for i in range(len(domains))]
    occurring = {g for c in cells for g in CTCAE_GRADES if c.n_assessed and c.counts[g]}
    for ax, dom in zip(axes, domains, strict=True):
        dc = [c for c in cells if c.domain == dom]
        bottom = np.zeros(len(dc))
        for g in CTCAE_GRADES:
            vals = np.array([c.percent[g] if c.n_assessed else 0.0 for c in dc])
            if not vals.any():
                continue  # nothing drawn; the colour stays that of the grade
            ax.bar(range(len(dc)), vals, bottom=bottom, color=GRADE_COLORS[g],
                   edgecolor="white", linewidth=0.5, label=f"G{g}")
            bottom += vals
        ax.set_xticks(range(len(dc)), [f"{c.timepoint}\n(n={c.n_assessed})" for c in dc],
                      fontsize=8)
        ax.set_title(dom)
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("% of assessed patients")
    mpl_patches = import_optional("matplotlib.patches", feature="outcome plots (--plots)")
    handles = [mpl_patches.Patch(facecolor=GRADE_COLORS[g], edgecolor="0.5", linewidth=0.5,
                                 label=f"G{g}") for g in sorted(occurring, reverse=True)]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=8,
               title="CTCAE grade", title_fontsize=8)
    fig.suptitle("Toxicity (CTCAE v5), worst grade per patient")
    return fig


def write_plots(
    cohort: Cohort,
    out_dir: str | os.PathLike[str],
    by: str = "fraction_category",
    *,
    bpfs_rule: str = "paper",
    band_percent: float = 0.0,
    bpfs_death_is_event: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write Kaplan-Meier, PSA waterfall and toxicity PNG figures to ``out_dir``.

    Returns the paths written. Raises :class:`~rtplan.errors.MissingDependencyError`
    when matplotlib is not installed (``pip install 'rtplan[plot]'``) and
    :class:`~rtplan.errors.OutputExistsError` if a file exists and ``overwrite`` is
    False.

    Files: ``km_<endpoint>.png`` (Kaplan-Meier per group with the number at risk every
    12 months) for each endpoint with data, ``psa_waterfall.png`` when PSA before and
    at 3 months are known (bars coloured decrease / unchanged / rise, changes within
    +-``band_percent`` % being unchanged, as in the report's PSA table),
    ``toxicity.png`` when the cohort has toxicity records (one fixed colour per CTCAE
    grade, :data:`GRADE_COLORS`, and one legend for all domains). ``bpfs_rule`` and
    ``bpfs_death_is_event`` define bPFS as in
    :func:`~rtplan.outcomes._report.outcomes_report`. The figures themselves come from
    :func:`outcome_figures`.

    Examples
    --------
    Six patients with overall survival only (months): one figure.

    >>> import tempfile
    >>> from rtplan.outcomes import Cohort, PatientRecord
    >>> pts = [PatientRecord(patient_id=f"P{i}", fractions=f, total_dose_gy=30,
    ...                      os_months=m, os_event=ev)
    ...        for i, (f, m, ev) in enumerate([(3, 10, 1), (5, 30, 0), (20, 15, 1),
    ...                                        (15, 40, 0), (34, 50, 0), (30, 20, 1)])]
    >>> paths = write_plots(Cohort(patients=pts), tempfile.mkdtemp())
    >>> [p.name for p in paths]
    ['km_os.png']
    >>> paths[0].read_bytes()[1:4]
    b'PNG'
    """
    out = Path(out_dir)
    names = [f"km_{ep}.png" for ep in ENDPOINTS] + ["psa_waterfall.png", "toxicity.png"]
    for n in names:
        check_writable(out / n, overwrite=overwrite)
    figs = outcome_figures(cohort, by, bpfs_rule=bpfs_rule, band_percent=band_percent,
                           bpfs_death_is_event=bpfs_death_is_event)
    return [_save(fig, out / name, overwrite) for name, fig in figs.items()]
