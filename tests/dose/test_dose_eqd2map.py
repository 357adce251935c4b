"""Voxel-wise EQD2/BED, alpha/beta maps and the overlap policy.

Independent references: the LQ formulas written out here (Withers 1983, Fowler 1989:
EQD2 = D (d + a/b) / (2 + a/b), BED = D (1 + d / (a/b))), a published value (SHARE
protocol: 65 Gy / 26 fx at a/b 1.5 = 74.29 Gy), and hand-made masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rtplan.dose import (
    AlphaBetaSpec,
    DoseGrid,
    alpha_beta_map,
    eqd2_dose,
    eqd2_map,
    parse_alpha_beta,
)
from rtplan.errors import InputError, InvalidParameterError
from rtplan.imaging import Grid


def eqd2_ref(total, n, ab):
    return total * (total / n + ab) / (2.0 + ab)


def bed_ref(total, n, ab):
    return total * (1.0 + total / (n * ab))


@settings(max_examples=40, deadline=None)
@given(
    dose=arrays(np.float64, (3, 4, 5), elements=st.floats(0, 120)),
    n=st.integers(1, 40),
    ab=st.floats(0.5, 20),
)
def test_grid_equals_scalar_formula_voxelwise(dose, n, ab):
    got = eqd2_map(dose, n, ab)
    np.testing.assert_allclose(got, eqd2_ref(dose, n, ab), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eqd2_map(dose, n, ab, quantity="BED"), bed_ref(dose, n, ab),
                               rtol=1e-12, atol=1e-12)


def test_published_share_value_in_a_grid():
    got = eqd2_map(np.full((2, 2, 2), 65.0), 26, 1.5)
    np.testing.assert_allclose(got, 74.29, atol=0.005)  # Gy, SHARE protocol Table 3


def test_dose_per_fraction_is_the_voxels_own():
    # SBRT 37.5 Gy / 5 fx: the voxel at the 50 % isodose gets 3.75 Gy per fraction, so
    # its EQD2 (a/b 3) is 18.75 (3.75 + 3) / 5 = 25.31 Gy, not half of 78.75 Gy.
    got = eqd2_map(np.array([37.5, 18.75]), 5, 3.0)
    np.testing.assert_allclose(got, [78.75, 25.3125], rtol=1e-12)


def test_per_voxel_alpha_beta_array():
    dose = np.array([[[10.0, 20.0, 30.0]]])
    ab = np.array([[[1.5, 3.0, 10.0]]])
    expected = [eqd2_ref(10.0, 5, 1.5), eqd2_ref(20.0, 5, 3.0), eqd2_ref(30.0, 5, 10.0)]
    np.testing.assert_allclose(eqd2_map(dose, 5, ab)[0, 0], expected, rtol=1e-12)


@pytest.fixture
def two_masks():
    a = np.zeros((1, 1, 4), bool)
    b = np.zeros((1, 1, 4), bool)
    a[..., :2] = True  # voxels 0, 1
    b[..., 1:3] = True  # voxels 1, 2 (voxel 1 overlaps); voxel 3 in neither
    return {"PTV": a, "Rectum": b}


def test_overlap_lowest_wins(two_masks):
    m = alpha_beta_map((1, 1, 4), two_masks, {"PTV": 1.5, "Rectum": 3.0}, 10.0)
    assert m.ravel().tolist() == [1.5, 1.5, 3.0, 10.0]
    m = alpha_beta_map((1, 1, 4), two_masks, {"PTV": 5.0, "Rectum": 3.0}, 10.0)
    assert m.ravel().tolist() == [5.0, 3.0, 3.0, 10.0]


def test_overlap_priority(two_masks):
    m = alpha_beta_map((1, 1, 4), two_masks, {"PTV": 1.5, "Rectum": 3.0}, 10.0,
                       overlap="priority", priority=["Rectum", "PTV"])
    assert m.ravel().tolist() == [1.5, 3.0, 3.0, 10.0]
    with pytest.raises(InvalidParameterError, match="not in the priority"):
        alpha_beta_map((1, 1, 4), two_masks, {"PTV": 1.5, "Rectum": 3.0}, 10.0,
                       overlap="priority", priority=["PTV"])


def test_missing_mask_named(two_masks):
    with pytest.raises(InputError, match="no mask for \\['Bladder'\\]"):
        alpha_beta_map((1, 1, 4), two_masks, {"Bladder": 3.0}, 10.0)


def test_eqd2_dose_with_spec(two_masks):
    g = Grid((1, 1, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    dose = DoseGrid(np.array([[[40.0, 35.0, 20.0, 5.0]]]), g, "1.2", fractions=5)
    spec = AlphaBetaSpec(default_alpha_beta_gy=10, roi_alpha_beta_gy={"PTV": 1.5, "Rectum": 3})
    out = eqd2_dose(dose, spec, two_masks)
    expected = [eqd2_ref(40, 5, 1.5), eqd2_ref(35, 5, 1.5), eqd2_ref(20, 5, 3),
                eqd2_ref(5, 5, 10)]
    np.testing.assert_allclose(out.dose_gy.ravel(), expected, rtol=1e-12)
    assert out.dose_type == "EFFECTIVE" and out.fractions == 5
    assert spec.describe() == "a/b 10 Gy; PTV 1.5 Gy; Rectum 3 Gy; overlaps: lowest"


def test_fractions_required():
    g = Grid((1, 1, 1), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    with pytest.raises(InvalidParameterError, match="number of fractions is unknown"):
        eqd2_dose(DoseGrid(np.ones(g.shape), g), 3.0)


def test_priority_spec_must_list_every_roi():
    with pytest.raises(ValueError, match="missing: \\['Rectum'\\]"):
        AlphaBetaSpec(default_alpha_beta_gy=3, roi_alpha_beta_gy={"PTV": 1.5, "Rectum": 3},
                      overlap="priority", priority=("PTV",))


def test_parse_alpha_beta_presets_and_errors():
    assert parse_alpha_beta("rectum_late") == 3.0
    with pytest.raises(InvalidParameterError, match="unknown tissue"):
        parse_alpha_beta("liver")
    with pytest.raises(InvalidParameterError, match="> 0 Gy"):
        parse_alpha_beta("-1")


# ------------------------------------------------------------------ LQ validity warnings
WARN_GRID = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 2.5, 2.5))  # 18.75 mm3


def test_single_fraction_voxel_above_10_gy_warns():
    # the shared Eclipse example's hottest voxel, 14.68 Gy, given in one fraction; the
    # other 23 voxels get 5 Gy. Hand: 14.68 Gy per fraction > 10; 1 voxel = 0.01875 cm3.
    dose = np.full(WARN_GRID.shape, 5.0)
    dose[1, 2, 3] = 14.68
    out = eqd2_dose(DoseGrid(dose, WARN_GRID, "1.2", fractions=1), 3.0)
    assert len(out.warnings) == 1
    w = out.warnings[0]
    assert "up to 14.68 Gy per fraction" in w
    assert "0.01875 cm3 (1 voxels) above 10 Gy per fraction" in w
    # the conversion itself is unchanged: EQD2 = D (d + a/b) / (2 + a/b)
    assert out.dose_gy[1, 2, 3] == pytest.approx(14.68 * (14.68 + 3) / 5)


def test_above_18_gy_per_fraction_gives_the_stronger_warning():
    # 2 fractions: 40 Gy (20 Gy/fx) in 3 voxels, 24 Gy (12 Gy/fx) in 2, 10 Gy elsewhere.
    # Hand: > 10 Gy/fx: 5 voxels = 0.09375 cm3; > 18 Gy/fx: 3 voxels = 0.05625 cm3.
    dose = np.full(WARN_GRID.shape, 10.0)
    dose[0, 0, :3] = 40.0
    dose[1, 1, :2] = 24.0
    out = eqd2_dose(DoseGrid(dose, WARN_GRID, "1.2", fractions=2), 3.0)
    assert len(out.warnings) == 2
    assert "up to 20 Gy per fraction: 0.09375 cm3 (5 voxels) above 10 Gy" in out.warnings[0]
    assert "above 18 Gy per fraction in 0.05625 cm3 (3 voxels" in out.warnings[1]
    assert "not validated" in out.warnings[1]


def test_no_warning_at_or_below_10_gy_per_fraction_or_with_lql():
    from rtplan.radiobiology import LQL

    dose = np.full(WARN_GRID.shape, 50.0)  # exactly 10 Gy per fraction in 5 fractions
    assert eqd2_dose(DoseGrid(dose, WARN_GRID, "1.2", fractions=5), 3.0).warnings == ()
    hot = DoseGrid(np.full(WARN_GRID.shape, 60.0), WARN_GRID, "1.2", fractions=3)
    assert len(eqd2_dose(hot, 3.0).warnings) == 2
    assert eqd2_dose(hot, 3.0, model=LQL(transition_dose_gy=8)).warnings == ()


def test_empty_mask_for_a_structure_alpha_beta_is_an_error(two_masks):
    masks = dict(two_masks, Areola=np.zeros((1, 1, 4), bool))
    with pytest.raises(InputError, match=r"'Areola' has an alpha/beta \(1.5 Gy\) but its "
                       r"mask is empty"):
        alpha_beta_map((1, 1, 4), masks, {"PTV": 3.0, "Areola": 1.5}, 10.0)
