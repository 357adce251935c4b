"""EQD2 summation of courses, resampling and registrations.

Independent references: the LQ EQD2 written out here, the cervix HDR consensus sum
(45 Gy / 25 fx + 4 x 7 Gy at a/b 10: 83.9 Gy, as in rtplan.radiobiology.sum_courses),
and linear dose fields, which trilinear interpolation reproduces exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtplan.dose import (
    AlphaBetaSpec,
    DoseGrid,
    resample_dose,
    sum_courses_eqd2,
    sum_courses_eqd2_report,
)
from rtplan.errors import GridMismatchError, InvalidParameterError
from rtplan.imaging import Grid, RigidTransform


def eqd2_ref(total, n, ab):
    return total * (total / n + ab) / (2.0 + ab)


G = Grid((4, 5, 6), origin_mm=(-10, -10, -6), spacing_mm=(3, 2.5, 2.5))


def field(grid, f):
    k, i, j = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    return f(grid.index_to_world(np.stack([k, i, j], -1)))


def test_cervix_consensus_sum():
    first = DoseGrid(np.full(G.shape, 45.0), G, "1.2", fractions=25)
    boost = DoseGrid(np.full(G.shape, 28.0), G, "1.2", fractions=4)
    total = sum_courses_eqd2([first, boost], 10.0).dose_gy
    np.testing.assert_allclose(total, 83.9, atol=0.05)  # Gy (consensus table, 1 decimal)


def test_recovery_on_earlier_course_only():
    rng = np.random.default_rng(3)
    d1, d2 = rng.uniform(0, 60, G.shape), rng.uniform(0, 35, G.shape)
    c1 = DoseGrid(d1, G, "1.2", fractions=30)
    c2 = DoseGrid(d2, G, "1.2", fractions=5)
    got = sum_courses_eqd2([c1, c2], 3.0, recovery_fraction=0.4).dose_gy
    expected = eqd2_ref(d2, 5, 3.0) + 0.6 * eqd2_ref(d1, 30, 3.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the order matters: the recovery applies to whichever course came first
    swapped = sum_courses_eqd2([c2, c1], 3.0, recovery_fraction=0.4).dose_gy
    np.testing.assert_allclose(swapped, eqd2_ref(d1, 30, 3.0) + 0.6 * eqd2_ref(d2, 5, 3.0),
                               rtol=1e-12)


def test_structure_alpha_beta_in_sum():
    mask = np.zeros(G.shape, bool)
    mask[:, :, :3] = True
    c1 = DoseGrid(np.full(G.shape, 50.0), G, "1.2", fractions=25)
    c2 = DoseGrid(np.full(G.shape, 30.0), G, "1.2", fractions=5)
    spec = AlphaBetaSpec(default_alpha_beta_gy=3.0, roi_alpha_beta_gy={"PTV": 1.5})
    got = sum_courses_eqd2([c1, c2], spec, {"PTV": mask}, recovery_fraction=0.5).dose_gy
    inside = eqd2_ref(30, 5, 1.5) + 0.5 * eqd2_ref(50, 25, 1.5)
    outside = eqd2_ref(30, 5, 3.0) + 0.5 * eqd2_ref(50, 25, 3.0)
    assert got[0, 0, 0] == pytest.approx(inside) and got[0, 0, 5] == pytest.approx(outside)


def test_different_grids_resampled_linearly():
    def linear(p):
        return 20.0 + 0.3 * p[..., 0] - 0.2 * p[..., 1] + 0.1 * p[..., 2]

    coarse = Grid((8, 10, 12), origin_mm=(-16, -16, -12), spacing_mm=(3, 3.5, 3.2))
    course = DoseGrid(field(coarse, linear), coarse, "1.2", fractions=10)
    np.testing.assert_allclose(resample_dose(course, G), field(G, linear), atol=1e-9)


def test_outside_the_source_grid_is_zero():
    small = Grid((1, 1, 1), origin_mm=(-10, -10, -6), spacing_mm=(3, 2.5, 2.5))
    out = resample_dose(DoseGrid(np.full((1, 1, 1), 5.0), small), G)
    assert out[0, 0, 0] == 5.0 and out.sum() == 5.0


def test_other_frame_needs_registration():
    def linear(p):
        return 30.0 + 0.5 * p[..., 0]

    c1 = DoseGrid(field(G, linear), G, "9.9", fractions=10)
    c2 = DoseGrid(np.zeros(G.shape), G, "1.2", fractions=5)
    with pytest.raises(GridMismatchError, match="register"):
        sum_courses_eqd2([c1, c2], 3.0)
    # point q of the new (common) frame is q + 2.5 mm in x in course 1's frame, so the
    # registration course 1 -> common (moving -> fixed, p_common = p_course + t) is
    # t = -2.5 mm in x; the common voxel q samples course 1 at q + 2.5
    shift = RigidTransform.translation([-2.5, 0, 0], "9.9", "1.2")
    d1 = field(G, lambda p: 30.0 + 0.5 * (p[..., 0] + 2.5))
    inside = np.s_[:, :, :-1]  # the last column maps beyond course 1's grid (0 Gy)
    for reg in (shift, shift.matrix):  # a bare 4 x 4 is read in the same direction
        got = sum_courses_eqd2([c1, c2], 3.0, registrations={0: reg}).dose_gy
        np.testing.assert_allclose(got[inside], eqd2_ref(d1, 10, 3.0)[inside], rtol=1e-12)
        assert np.all(got[:, :, -1] == 0.0)


@pytest.mark.parametrize("recovery", [-0.1, 1.0])
def test_recovery_range(recovery):
    c = DoseGrid(np.ones(G.shape), G, "1.2", fractions=5)
    with pytest.raises(InvalidParameterError, match="recovery fraction"):
        sum_courses_eqd2([c, c], 3.0, recovery_fraction=recovery)


def test_fractions_required_per_course():
    c = DoseGrid(np.ones(G.shape), G, "1.2", fractions=5)
    with pytest.raises(InvalidParameterError, match="course 1"):
        sum_courses_eqd2([DoseGrid(np.ones(G.shape), G, "1.2"), c], 3.0)


# ------------------------------------------------------------------ coverage
# Common grid (the last course's): frames z = 0, 3, 6, 9 mm, rows y = 0, 2, 4,
# columns x = 0, 2, ..., 10 mm; 72 voxels of 3 x 2 x 2 = 12 mm3.
CG = Grid((4, 3, 6), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))


def translated_courses():
    # course 1: the same lattice in its own frame 1.2.9, 40 Gy / 20 fx everywhere.
    # Registration course -> common: t = (+4, 0, +3) mm, so common voxel q samples the
    # course at q - t. Course 1 reaches half a voxel beyond its centres: x in [-1, 11],
    # z in [-1.5, 10.5] in its frame, i.e. x in [3, 15] and z in [1.5, 13.5] on the
    # common grid: columns x = 0, 2 and frame z = 0 are uncovered.
    first = DoseGrid(np.full(CG.shape, 40.0), CG, "1.2.9", fractions=20, source="RD_old.dcm")
    # last course: 30 Gy / 10 fx in rows y = 0, 2 (48 voxels), 0 Gy in row y = 4
    last_dose = np.zeros(CG.shape)
    last_dose[:, :2, :] = 30.0
    last = DoseGrid(last_dose, CG, "1.2.3", fractions=10, source="RD_new.dcm")
    reg = RigidTransform.translation([4.0, 0.0, 3.0], "1.2.9", "1.2.3")
    return first, last, reg


def test_uncovered_volumes_hand_counted():
    first, last, reg = translated_courses()
    ptv = np.zeros(CG.shape, bool)
    ptv[2:, :, :3] = True  # frames z = 6, 9, columns x = 0, 2, 4: 18 voxels
    spec = AlphaBetaSpec(default_alpha_beta_gy=3.0, roi_alpha_beta_gy={"PTV": 3.0})
    r = sum_courses_eqd2_report([first, last], spec, {"PTV": ptv}, registrations={0: reg})
    c1, c2 = r.coverage
    # uncovered: frame z = 0 (18 voxels) + columns x = 0, 2 of frames 3-9 (3 x 3 x 2 = 18)
    assert (c1.course, c1.source, c1.grid.voxels) == (1, "RD_old.dcm", 36)
    assert c1.grid.percent == pytest.approx(50.0) and c1.grid.volume_cc == pytest.approx(0.432)
    # of the 48 voxels the last course irradiates: frame 0 (2 x 6 = 12) + 3 x 2 x 2 = 12
    assert c1.last_course_dose.voxels == 24
    assert c1.last_course_dose.percent == pytest.approx(50.0)
    assert c1.last_course_dose.volume_cc == pytest.approx(0.288)
    # PTV: columns 0, 2 of frames 6, 9: 2 x 3 x 2 = 12 of 18 voxels
    assert c1.rois["PTV"].voxels == 12
    assert c1.rois["PTV"].percent == pytest.approx(200 / 3)
    assert c1.rois["PTV"].volume_cc == pytest.approx(0.144)
    assert c2.grid.voxels == 0 and c2.rois["PTV"].voxels == 0  # the common grid itself
    assert len(r.warnings) == 1
    w = r.warnings[0]
    assert w.startswith("course 1 ('RD_old.dcm') does not cover 24 voxels (0.288 cm3, 50 %)")
    assert "up to 30 Gy there" in w and "counted as 0 Gy" in w
    assert r.total.warnings == tuple(r.warnings)
    # the sum: covered voxels get both courses, uncovered ones only the last
    both = eqd2_ref(30.0, 10, 3.0) + eqd2_ref(40.0, 20, 3.0)
    assert r.total.dose_gy[1, 0, 2] == pytest.approx(both)       # x = 4, z = 3: covered
    assert r.total.dose_gy[1, 0, 1] == pytest.approx(eqd2_ref(30.0, 10, 3.0))  # x = 2
    assert r.total.dose_gy[0, 0, 5] == pytest.approx(eqd2_ref(30.0, 10, 3.0))  # z = 0
    assert r.total.dose_gy[1, 2, 5] == pytest.approx(eqd2_ref(40.0, 20, 3.0))  # y = 4


def test_no_coverage_warning_when_uncovered_voxels_get_no_new_dose():
    first, last, reg = translated_courses()
    dose = np.zeros(CG.shape)
    dose[1:, :, 2:] = 30.0  # only where course 1 reaches
    last = DoseGrid(dose, CG, "1.2.3", fractions=10)
    r = sum_courses_eqd2_report([first, last], 3.0, registrations={0: reg})
    assert r.coverage[0].grid.voxels == 36 and r.coverage[0].last_course_dose.voxels == 0
    assert r.warnings == []


def test_course_lq_warnings_are_named():
    hot = DoseGrid(np.full(G.shape, 24.0), G, "1.2", fractions=2)  # 12 Gy/fx everywhere
    mild = DoseGrid(np.full(G.shape, 20.0), G, "1.2", fractions=10)
    total = sum_courses_eqd2([hot, mild], 3.0)
    assert len(total.warnings) == 1
    assert total.warnings[0].startswith("course 1: LQ model used voxel by voxel up to 12 Gy")
    # all 120 voxels of 18.75 mm3 above 10 Gy/fx: 2.25 cm3
    assert "2.25 cm3 (120 voxels) above 10 Gy per fraction" in total.warnings[0]
