"""Outcome figures checked through their matplotlib artists, not only as files."""

from __future__ import annotations

import pytest

from rtplan.outcomes import Cohort, PatientRecord, ToxicityRecord
from rtplan.outcomes._plots import GRADE_COLORS, outcome_figures

pytest.importorskip("matplotlib")

from matplotlib.colors import to_rgba


def _patients(n: int = 6) -> list[PatientRecord]:
    fx = [3, 5, 20, 15, 34, 30]
    return [PatientRecord(patient_id=f"P{i}", fractions=fx[i % 6], total_dose_gy=30,
                          os_months=10.0 + i, os_event=i % 2) for i in range(n)]


def _tox(rows: list[tuple[str, str, str, int]]) -> list[ToxicityRecord]:
    return [ToxicityRecord(patient_id=p, timepoint=t, domain=d, grade=g) for p, t, d, g in rows]


def _bars_by_label(ax) -> dict[str, list]:
    """BarContainers of an axes by their legend label."""
    return {c.get_label(): list(c) for c in ax.containers}


def test_toxicity_grade_colours_fixed_across_panels_and_one_legend():
    # panel GU: grades 0, 1 and 3 (no 2); panel GI: grades 0 and 2. Before the fix the
    # G3 bars of GU took the colour of the 3rd drawn series (G2's) and the legend came
    # from the last panel only (G0, G2).
    rows = [("P0", "3m", "GU", 0), ("P1", "3m", "GU", 1), ("P2", "3m", "GU", 3),
            ("P3", "3m", "GU", 0), ("P0", "3m", "GI", 0), ("P1", "3m", "GI", 2),
            ("P2", "3m", "GI", 0), ("P3", "3m", "GI", 0)]
    cohort = Cohort(patients=_patients(4), toxicity=_tox(rows))
    fig = outcome_figures(cohort)["toxicity.png"]
    gu, gi = fig.axes
    assert (gu.get_title(), gi.get_title()) == ("GU", "GI")
    gu_bars, gi_bars = _bars_by_label(gu), _bars_by_label(gi)
    assert sorted(gu_bars) == ["G0", "G1", "G3"] and sorted(gi_bars) == ["G0", "G2"]
    for bars in (gu_bars, gi_bars):
        for label, patches in bars.items():
            for p in patches:
                assert p.get_facecolor() == to_rgba(GRADE_COLORS[int(label[1])])
    # G3 in GU: 1 of 4 patients = 25 % on top of G0 (50 %) and G1 (25 %)
    (g3,) = gu_bars["G3"]
    assert g3.get_height() == pytest.approx(25.0, abs=1e-9)
    assert g3.get_y() == pytest.approx(75.0, abs=1e-9)
    # one figure legend for all panels, no per-axes legend
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1
    leg = fig.legends[0]
    labels = [t.get_text() for t in leg.get_texts()]
    assert sorted(labels) == ["G0", "G1", "G2", "G3"]
    for text, handle in zip(leg.get_texts(), leg.legend_handles, strict=True):
        assert handle.get_facecolor() == to_rgba(GRADE_COLORS[int(text.get_text()[1])])
    # distinct colours per grade
    assert len(set(GRADE_COLORS.values())) == 6


def test_km_title_and_axis_labels_readable():
    figs = outcome_figures(Cohort(patients=_patients()), by="fraction_category")
    ax = figs["km_os.png"].axes[0]
    assert ax.get_title() == "Overall survival by fraction-count category"
    assert "_" not in ax.get_title()
    assert ax.get_ylabel() == "Survival probability"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["<10 (n=2)", "10-24 (n=2)", ">24 (n=2)"]
    assert figs["km_os.png"].axes[1].get_xlabel() == "Months since start of radiotherapy"
    pts = [p.model_copy(update={"adt_concomitant": i % 2 == 0})
           for i, p in enumerate(_patients())]
    ax = outcome_figures(Cohort(patients=pts), by="adt_concomitant")["km_os.png"].axes[0]
    assert ax.get_title() == "Overall survival by concomitant ADT"


def test_unknown_grouping_is_an_input_error():
    from rtplan.errors import InputError

    with pytest.raises(InputError, match="unknown grouping"):
        outcome_figures(Cohort(patients=_patients()), by="nope")
