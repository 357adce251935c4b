"""The demo PSMA-PET against its analytic truth, and ``rtplan demo --json`` with the PET.

Independent references (none computed by rtplan code):
- Recovery at the centre of a uniform sphere (radius R) blurred by an isotropic Gaussian
  (sigma s): the probability that a 3-D normal vector lies in the ball, i.e. the CDF of
  the chi distribution with 3 degrees of freedom at R / s (scipy.stats.chi).
- The blurred sphere anywhere: the closed form of the convolution,
      f(r) = Phi((R - r)/s) - Phi((-R - r)/s)
             - s / (r sqrt(2 pi)) (exp(-(r - R)^2 / 2 s^2) - exp(-(r + R)^2 / 2 s^2)),
  averaged over a PET voxel by a 12 x 12 x 12 midpoint rule (f is smooth on the scale
  of s = 2.55 mm, so the rule is exact to < 1e-4 on 4 mm voxels).
- Activity: analytic volumes (ellipse area pi a b, ball 4/3 pi R^3, ellipsoid
  4/3 pi a b c) times the true SUV.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
from scipy.special import erf
from scipy.stats import chi

from rtplan.cli.main import main
from rtplan.demo import (
    DEMO_BLADDER,
    DEMO_LESIONS,
    DEMO_PET_ACQUISITION,
    DEMO_PET_BACKGROUND_SUV,
    DEMO_PET_SUV,
    DemoPETComparison,
    blurred_ellipsoids,
    demo_pet_lesions,
    make_demo_patient,
    make_demo_pet,
    recovery_coefficient,
)
from rtplan.imaging import PETLesion, load_pet, measure_pet_lesions, segment_seed
from rtplan.imaging.grid import Grid
from rtplan.imaging.pet_writer import write_pet_series

FWHM_MM = 6.0
SIGMA_MM = FWHM_MM / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # 2.548 mm
BG = DEMO_PET_BACKGROUND_SUV


def profile(r, radius_mm, sigma_mm=SIGMA_MM):
    """Closed-form uniform ball (value 1) convolved with a 3-D Gaussian, at distance r."""
    r = np.maximum(np.asarray(r, float), 1e-9)
    s, R = sigma_mm, radius_mm

    def phi(x):
        return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))

    return (phi((R - r) / s) - phi((-R - r) / s)
            - s / (r * math.sqrt(2 * math.pi))
            * (np.exp(-((r - R) ** 2) / (2 * s * s)) - np.exp(-((r + R) ** 2) / (2 * s * s))))


def voxel_average(center_vox_mm, spacing_mm, ball_center_mm, radius_mm, m=12):
    """Mean of the closed-form profile over one voxel (midpoint rule, m^3 points)."""
    u = (np.arange(m) + 0.5) / m - 0.5
    zz, yy, xx = np.meshgrid(*[u * s for s in spacing_mm], indexing="ij")
    # grids here are axial identity: index axes (slice, row, column) = (z, y, x)
    p = np.stack([xx, yy, zz], axis=-1) + np.asarray(center_vox_mm)
    return float(profile(np.linalg.norm(p - np.asarray(ball_center_mm), axis=-1),
                         radius_mm).mean())


def expected_voxel_max(grid, center_mm, radius_mm):
    """Largest voxel average of the blurred ball among the voxels around its centre."""
    idx = np.rint(grid.world_to_index(np.asarray(center_mm))).astype(int)
    best = 0.0
    for dk in (-1, 0, 1):
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                c = grid.index_to_world((idx + np.array([dk, di, dj])).astype(float))
                best = max(best, voxel_average(c, grid.spacing_mm, center_mm, radius_mm))
    return best


@pytest.fixture(scope="module")
def demo_pet(tmp_path_factory):
    """The demo PET written as DICOM and read back as SUV (what rtplan demo measures)."""
    patient = make_demo_patient()
    pet = make_demo_pet(patient)
    folder = tmp_path_factory.mktemp("demo_pet") / "pet"
    write_pet_series(folder, pet.suv, pet.grid, **DEMO_PET_ACQUISITION)
    return pet, load_pet(folder)


@pytest.fixture(scope="module")
def report(demo_pet):
    _, loaded = demo_pet
    lesions = [PETLesion.model_validate(x) for x in demo_pet_lesions()]
    return measure_pet_lesions(loaded.suv, loaded.grid, lesions, fwhm_mm=FWHM_MM)


# ------------------------------------------------------------------------ analytic RC
@pytest.mark.parametrize("diameter_mm", [4.0, 8.0, 10.0, 12.0, 16.0, 30.0])
@pytest.mark.parametrize("fwhm_mm", [4.0, 6.0, 8.0])
def test_recovery_coefficient_is_the_chi3_cdf(diameter_mm, fwhm_mm):
    s = fwhm_mm / 2.3548200450309493
    assert recovery_coefficient(diameter_mm, fwhm_mm) == pytest.approx(
        chi(3).cdf(diameter_mm / 2 / s), abs=1e-12)


def test_closed_form_profile_at_the_centre_is_the_recovery():
    # consistency of the two references used below
    for d in (8.0, 10.0, 12.0, 16.0):
        assert float(profile(0.0, d / 2)) == pytest.approx(chi(3).cdf(d / 2 / SIGMA_MM),
                                                           abs=1e-7)


@pytest.mark.parametrize("diameter_mm", [8.0, 10.0, 16.0])
def test_fine_grid_blur_matches_the_analytic_recovery(diameter_mm):
    """On a 0.5 mm grid (truth at 0.25 mm) the centre voxel is the analytic RC: voxel
    averaging lowers it by ~(w^2 / 24) / s_eff^2 per axis, < 0.3 % for w = 0.5 mm."""
    n = 65
    g = Grid((n, n, n), origin_mm=(-16.0, -16.0, -16.0), spacing_mm=(0.5, 0.5, 0.5))
    img = blurred_ellipsoids(g, [((0.0, 0.0, 0.0), (diameter_mm / 2,) * 3, 1.0)], FWHM_MM,
                             oversample=2)
    rc = chi(3).cdf(diameter_mm / 2 / SIGMA_MM)
    centre = img[32, 32, 32]
    assert centre == pytest.approx(rc, rel=3e-3)
    assert centre == pytest.approx(voxel_average((0, 0, 0), (0.5,) * 3, (0, 0, 0),
                                                 diameter_mm / 2), rel=1e-3)
    # the whole profile, not just the centre: along a row through the centre
    x = g.index_to_world(np.stack([np.full(n, 32), np.full(n, 32), np.arange(n)], 1))[:, 0]
    np.testing.assert_allclose(img[32, 32], profile(np.abs(x), diameter_mm / 2), atol=3e-3)


def test_blur_conserves_activity_of_each_object():
    """Sum over voxels x voxel volume = value x analytic volume (sphere and ellipsoid):
    blurring conserves activity; left is the error of the drawn truth (< 0.2 %)."""
    g = Grid((30, 30, 30), origin_mm=(-58.0, -58.0, -58.0), spacing_mm=(4.0, 4.0, 4.0))
    for centre, axes in [((1.3, -2.2, 0.7), (4.0, 4.0, 4.0)), ((0.0, 0.0, 0.0), (8.0,) * 3),
                         ((3.0, -1.0, 2.0), (30.0, 20.0, 20.0))]:
        img = blurred_ellipsoids(g, [(centre, axes, 2.5)], FWHM_MM)
        total = img.sum() * g.voxel_volume_mm3
        assert total == pytest.approx(2.5 * 4 / 3 * math.pi * np.prod(axes), rel=2e-3)


def test_demo_pet_total_activity_is_the_truth(demo_pet):
    """Whole demo PET: body (elliptic cylinder minus rectal gas) + bladder + lesions."""
    pet, loaded = demo_pet
    length_mm = pet.grid.shape[0] * pet.grid.spacing_mm[0]
    body = (math.pi * 175.0 * 115.0 - math.pi * 7.0 * 6.0) * length_mm * BG
    bladder = 4 / 3 * math.pi * np.prod(DEMO_BLADDER["semi_axes_mm"]) * (DEMO_BLADDER["suv"]
                                                                         - BG)
    spheres = sum(4 / 3 * math.pi * (les["source"]["diameter_mm"] / 2) ** 3
                  * (DEMO_PET_SUV[les["id"]] - BG) for les in DEMO_LESIONS)
    truth = body + bladder + spheres  # SUV x mm^3
    assert pet.suv.sum() * pet.grid.voxel_volume_mm3 == pytest.approx(truth, rel=1e-3)
    # the written series (16-bit) keeps it
    assert float(loaded.suv.sum()) * pet.grid.voxel_volume_mm3 == pytest.approx(truth,
                                                                                 rel=1e-3)


def test_demo_pet_grid_and_truth(demo_pet):
    pet, loaded = demo_pet
    assert pet.grid.spacing_mm == (4.0, 4.0, 4.0)
    assert loaded.grid.shape == pet.grid.shape
    np.testing.assert_allclose(loaded.grid.origin_mm, pet.grid.origin_mm, atol=1e-6)
    truth = {t.id: t for t in pet.truth.lesions}
    for les in DEMO_LESIONS:
        t = truth[les["id"]]
        d = les["source"]["diameter_mm"]
        assert t.volume_cc == pytest.approx(math.pi * d**3 / 6 / 1000, rel=1e-12)
        assert t.recovery_coefficient == pytest.approx(chi(3).cdf(d / 2 / SIGMA_MM), abs=1e-9)
        assert t.expected_suv_max == pytest.approx(BG + (t.suv - BG) * t.recovery_coefficient)
        assert 6.0 <= t.suv <= 20.0
    # background in the body far from objects, zero in air
    k = pet.grid.shape[0] // 2
    assert loaded.suv[k, 48, 48] == pytest.approx(BG, rel=1e-4)
    assert loaded.suv[k, 2, 2] == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- measured vs analytic
def test_suv_max_recovery_against_the_analytic_sphere(demo_pet, report):
    """SUVmax on 4 mm voxels: (1) below the analytic centre value bg + (A - bg) RC, as a
    voxel average of a profile peaked at the centre must be; (2) equal to the largest
    voxel average of the closed-form profile around the centre within 0.3 % (truth drawn
    at 1 mm with sub-sampled surface voxels, observed < 0.1 %; 16-bit storage 1.5e-5)."""
    pet, loaded = demo_pet
    truth = {t.id: t for t in pet.truth.lesions}
    for r in report.lesions:
        t = truth[r.id]
        radius = t.diameter_mm / 2
        measured_rc = (r.measures.suv_max - BG) / (t.suv - BG)
        assert measured_rc < chi(3).cdf(radius / SIGMA_MM)
        expected = BG + (t.suv - BG) * expected_voxel_max(loaded.grid, t.center_mm, radius)
        assert r.measures.suv_max == pytest.approx(expected, rel=3e-3), r.id
        # the voxel loss is large for the small lesions and small for the 16 mm one
        loss = 1 - (r.measures.suv_max - BG) / (t.expected_suv_max - BG)
        assert (loss < 0.08) if t.diameter_mm >= 16 else (0.05 < loss < 0.4), (r.id, loss)


def test_delineated_volumes_and_partial_volume_flags(demo_pet, report):
    """Background-adaptive 40 %: the 12 and 16 mm lesions (>= 2 FWHM) within 15 % of their
    true volume (one 4 mm voxel is 7 % of the 12 mm sphere); the 8 mm lesion is
    overestimated (blur spreads it) and flagged partial-volume."""
    pet, _ = demo_pet
    truth = {t.id: t for t in pet.truth.lesions}
    by_id = {r.id: r for r in report.lesions}
    for lesion_id in ("L1", "L3"):
        m = by_id[lesion_id].measures
        assert m.volume_cc == pytest.approx(truth[lesion_id].volume_cc, rel=0.15), lesion_id
        assert not m.partial_volume_warning
    small = by_id["L2"].measures
    assert small.partial_volume_warning
    assert small.equivalent_diameter_mm < 2 * FWHM_MM
    assert small.volume_cc > 1.5 * truth["L2"].volume_cc
    assert "partial volume" in " ".join(by_id["L2"].warnings)


def _bladder_rho(world):
    c = np.asarray(DEMO_BLADDER["center_mm"])
    a = np.asarray(DEMO_BLADDER["semi_axes_mm"])
    return np.sqrt(np.sum(((world - c) / a) ** 2, axis=-1))


def test_bladder_is_not_merged_into_the_prostate_bed_lesion(demo_pet, report):
    pet, loaded = demo_pet
    g = loaded.grid
    l4 = next(les for les in demo_pet_lesions() if les["id"] == "L4")["source"]
    centre = np.asarray(l4["point_mm"])
    r4 = next(r for r in report.lesions if r.id == "L4")
    seg = segment_seed(loaded.suv, g, centre, method=l4["method"], level=l4["level"],
                       max_radius_mm=l4["max_radius_mm"])
    k, i, j = np.meshgrid(*[np.arange(n) for n in g.shape], indexing="ij")
    world = g.index_to_world(np.stack([k, i, j], axis=-1).astype(float))
    dist = np.linalg.norm(world - centre, axis=-1)
    # the test is not vacuous: bladder voxels above L4's threshold lie within its radius
    hot_bladder = (loaded.suv >= seg.threshold_suv) & (dist <= l4["max_radius_mm"]) & (
        _bladder_rho(world) <= 1.3)
    assert hot_bladder.sum() > 20
    # ... but none is in the lesion: it stays within its sphere plus one voxel diagonal
    assert not (seg.mask & hot_bladder).any()
    assert dist[seg.mask].max() <= 5.0 + 4.0 * math.sqrt(3)
    assert seg.mask.sum() == r4.measures.n_voxels
    # with the bladder as an exclusion mask: same lesion, the left-out voxels reported
    lesions = [PETLesion.model_validate(x) for x in demo_pet_lesions()]
    with_excl = measure_pet_lesions(loaded.suv, g, lesions, fwhm_mm=FWHM_MM,
                                    exclusion_mask=pet.bladder_mask)
    r4x = next(r for r in with_excl.lesions if r.id == "L4")
    assert r4x.measures.n_voxels == r4.measures.n_voxels
    assert r4x.excluded_voxels > 0


# ------------------------------------------------------------------------------- CLI
def test_demo_cli_json_with_pet(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"structures", "schedules", "pet"} <= set(payload)
    pet = payload["pet"]
    assert [c["id"] for c in pet["lesions"]] == ["L1", "L2", "L3", "L4"]
    row_keys = {"true_suv", "recovery_coefficient", "expected_suv_max", "suv_max",
                "suv_max_ratio", "true_volume_cc", "volume_cc", "volume_ratio",
                "partial_volume", "hot_voxels_left_out"}
    assert all(row_keys <= set(c) for c in pet["lesions"])
    rows = {c["id"]: c for c in pet["lesions"]}
    assert rows["L2"]["partial_volume"] and not rows["L3"]["partial_volume"]
    assert rows["L4"]["hot_voxels_left_out"] > 0  # the bladder, left out by connectivity
    assert all(0.5 < c["suv_max_ratio"] < 1.0 for c in pet["lesions"])
    assert pet["report"]["oligometastatic"]["n_metastases"] == 3
    for name in ("pet", "pet_truth.json", "lesions_pet.json", "pet_report.json",
                 "RS_rtplan.dcm", "report.json", "schedules.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "pet_report.json").read_text()) == pet
    truth = json.loads((out / "pet_truth.json").read_text())
    assert truth["fwhm_mm"] == FWHM_MM and len(truth["lesions"]) == 4
    seeds = json.loads((out / "lesions_pet.json").read_text())
    assert {s["source"]["kind"] for s in seeds["lesions"]} == {"pet_seed"}
    # PET and CT: one study, one frame of reference
    pt = pydicom.dcmread(next((out / "pet").iterdir()), stop_before_pixels=True)
    ct = pydicom.dcmread(next((out / "ct").iterdir()), stop_before_pixels=True)
    assert pt.FrameOfReferenceUID == ct.FrameOfReferenceUID
    assert pt.StudyInstanceUID == ct.StudyInstanceUID
    assert pt.Modality == "PT" and pt.Units == "BQML"
    # the text table, from the same comparison
    from rtplan.cli.demo import _print_pet

    _print_pet(DemoPETComparison.model_validate(pet))
    text = capsys.readouterr().out
    assert "expected max" in text and "PV" in text and "bladder" in text
    # refuses a non-empty folder without --force
    assert main(["demo", "-o", str(out), "-q"]) == 2
    assert "--force" in capsys.readouterr().err
