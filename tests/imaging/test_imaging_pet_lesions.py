"""PET lesion delineation and measures against blurred spheres of known activity.

Phantom: a uniform sphere (radius R, excess activity A over background b) convolved
with an isotropic Gaussian PSF (FWHM), sampled on the grid through its Fourier
transform (ball FT 4 pi (sin kR - kR cos kR) / k^3 times exp(-sigma^2 k^2 / 2)).

Truth: the closed form of the same convolution in real space,
    f(r) = Phi((R - r)/s) - Phi((-R - r)/s)
           - s / (r sqrt(2 pi)) (exp(-(r - R)^2 / 2 s^2) - exp(-(r + R)^2 / 2 s^2)),
with Phi the normal CDF and s = FWHM / 2.3548. Threshold volumes are balls of the
radius where the profile crosses the threshold (brentq), SUVmean/SUVpeak are ball
averages of the profile (quad). The first test checks that phantom and closed form
agree, so both are trusted independently of the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import erf

from rtplan.errors import GeometryError, InvalidParameterError
from rtplan.imaging.grid import Grid
from rtplan.imaging.pet_lesions import (
    PETLesion,
    PETSeedSource,
    apply_default_preset,
    detect_candidates,
    measure_lesion,
    measure_pet_lesions,
    mitnm_labels,
    oligometastatic_check,
    segment_seed,
    suv_peak,
)

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
PEAK_RADIUS_MM = (3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # 1 ml sphere: 6.2035 mm


def _phi(x):
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def profile(r, radius_mm, fwhm_mm):
    """Closed-form blurred uniform sphere (unit activity) at distance r (mm)."""
    s = fwhm_mm * FWHM_TO_SIGMA
    r = np.maximum(np.asarray(r, float), 1e-9)
    R = radius_mm
    return (_phi((R - r) / s) - _phi((-R - r) / s)
            - s / (r * math.sqrt(2 * math.pi))
            * (np.exp(-((r - R) ** 2) / (2 * s * s)) - np.exp(-((r + R) ** 2) / (2 * s * s))))


def phantom(spheres, *, n=64, spacing_mm=1.0, fwhm_mm=6.0, background=1.0):
    """Grid and SUV image of blurred spheres [(center_mm, radius_mm, excess_suv)], FFT."""
    grid = Grid((n, n, n), origin_mm=(0.0, 0.0, 0.0), spacing_mm=(spacing_mm,) * 3)
    k1 = 2 * np.pi * np.fft.fftfreq(n, d=spacing_mm)
    kz, ky, kx = np.meshgrid(k1, k1, k1, indexing="ij")
    k = np.sqrt(kz**2 + ky**2 + kx**2)
    s = fwhm_mm * FWHM_TO_SIGMA
    img = np.full((n, n, n), background, float)
    for center, radius, excess in spheres:
        kr = np.where(k == 0, 1.0, k * radius)
        ball = np.where(
            k == 0, 4 / 3 * np.pi * radius**3,
            4 * np.pi * (np.sin(kr) - kr * np.cos(kr)) / np.where(k == 0, 1.0, k) ** 3,
        )
        # grid index (slice, row, col) = (z, y, x) for the identity direction
        cz, cy, cx = center[2], center[1], center[0]
        phase = np.exp(-1j * (kz * cz + ky * cy + kx * cx))
        spec = ball * np.exp(-(s * k) ** 2 / 2) * phase
        img += excess * np.real(np.fft.ifftn(spec)) / spacing_mm**3
    return grid, img


def ball_mean(radius_mm, fwhm_mm, r_avg, excess, background):
    integral, _ = quad(lambda r: profile(r, radius_mm, fwhm_mm) * r * r, 0, r_avg)
    return background + excess * 3 * integral / r_avg**3


def crossing_radius(radius_mm, fwhm_mm, excess, background, threshold):
    return brentq(
        lambda r: background + excess * profile(r, radius_mm, fwhm_mm) - threshold,
        1e-6, radius_mm + 5 * fwhm_mm,
    )


CENTER = (32.0, 32.0, 32.0)  # on a voxel centre


def test_phantom_matches_closed_form():
    _, img = phantom([(CENTER, 10.0, 8.0)])
    r = np.arange(0, 25, 1.0)
    along_x = img[32, 32, 32:57]
    assert along_x == pytest.approx(1.0 + 8.0 * profile(r, 10.0, 6.0), abs=2e-4)


@pytest.mark.parametrize(
    ("radius_mm", "fwhm_mm"), [(4.0, 6.0), (7.0, 6.0), (10.0, 6.0), (15.0, 8.0)]
)
@pytest.mark.parametrize(("method", "level"), [("percent_max", 0.4), ("percent_max", 0.2),
                                                ("absolute", 3.0)])
def test_volume_and_suv_recovery_against_analytic_truth(radius_mm, fwhm_mm, method, level):
    excess, bg = 8.0, 1.0
    grid, img = phantom([(CENTER, radius_mm, excess)], fwhm_mm=fwhm_mm, background=bg)
    seed = (34.0, 31.0, 33.0)  # a click 2-3 mm off the centre
    seg = segment_seed(img, grid, seed, method=method, level=level, max_radius_mm=40)
    true_max = bg + excess * float(profile(0.0, radius_mm, fwhm_mm))
    assert seg.suv_max == pytest.approx(true_max, rel=1e-3)  # SUV
    assert seg.peak_index == (32, 32, 32)
    threshold = level * true_max if method == "percent_max" else level
    assert seg.threshold_suv == pytest.approx(threshold, rel=1e-3)
    r_t = crossing_radius(radius_mm, fwhm_mm, excess, bg, threshold)
    m = measure_lesion(img, grid, seg.mask, fwhm_mm=fwhm_mm)
    # discrete truth: voxel centres inside the analytic isocontour ball, and the mean of
    # the closed-form profile over them
    dist = np.linalg.norm(
        grid.index_to_world(np.argwhere(np.ones(grid.shape, bool)).astype(float)) - CENTER,
        axis=1).reshape(grid.shape)
    truth_mask = dist <= r_t
    assert abs(m.n_voxels - truth_mask.sum()) <= max(3, 0.005 * truth_mask.sum())
    assert m.suv_mean == pytest.approx(
        bg + excess * profile(dist[truth_mask], radius_mm, fwhm_mm).mean(), rel=2e-3)
    # continuous truth: metabolic volume (cc) and mean of the isocontour ball; the 1 mm
    # lattice adds up to ~4 % on the smallest balls
    assert m.volume_cc == pytest.approx(4 / 3 * math.pi * r_t**3 / 1000, rel=0.05)
    assert m.suv_max == pytest.approx(true_max, rel=1e-3)
    assert m.suv_mean == pytest.approx(ball_mean(radius_mm, fwhm_mm, r_t, excess, bg), rel=0.02)
    # SUVpeak: voxel values stand for their whole voxel in the 1 ml ball, which matters
    # where the profile bends sharply inside the ball (R = 4 mm): 2 % there, else 0.5 %
    assert m.suv_peak == pytest.approx(
        ball_mean(radius_mm, fwhm_mm, PEAK_RADIUS_MM, excess, bg),
        rel=0.02 if radius_mm < 5 else 0.005)
    assert m.equivalent_diameter_mm == pytest.approx(2 * r_t, rel=0.02)  # = volume / 3
    assert m.partial_volume_warning == (2 * r_t < 2 * fwhm_mm)
    assert not seg.touches_radius


def test_small_sphere_max_recovery_and_partial_volume_flag():
    # R = 4 mm, FWHM 6 mm: recovery f(0) = erf(R / (s sqrt 2)) - sqrt(2/pi) R/s e^(-R^2/2s^2)
    s = 6.0 * FWHM_TO_SIGMA
    rc = math.erf(4 / (s * math.sqrt(2))) - math.sqrt(2 / math.pi) * 4 / s * math.exp(
        -16 / (2 * s * s))
    assert rc == pytest.approx(0.517, abs=0.002)  # hand calculation
    grid, img = phantom([(CENTER, 4.0, 10.0)], fwhm_mm=6.0, background=0.5)
    seg = segment_seed(img, grid, CENTER, method="background_adaptive", level=0.4)
    assert seg.background_suv == pytest.approx(0.5, abs=1e-3)
    m = measure_lesion(img, grid, seg.mask, fwhm_mm=6.0)
    assert m.suv_max == pytest.approx(0.5 + 10 * rc, rel=1e-3)
    assert m.partial_volume_warning
    assert m.equivalent_diameter_mm < 12.0


def test_large_sphere_50_percent_adaptive_volume():
    # R = 15 mm >> sigma = 2.55 mm: the background-corrected 50 % isocontour lies just
    # inside the edge (curvature: f(R) = 0.5 - s / (R sqrt(2 pi)) = 0.432), so the volume
    # is the analytic isocontour ball, ~8 % below 4/3 pi R^3
    grid, img = phantom([(CENTER, 15.0, 6.0)], fwhm_mm=6.0, background=1.0)
    seg = segment_seed(img, grid, CENTER, method="background_adaptive", level=0.5,
                       max_radius_mm=25)
    assert seg.background_suv == pytest.approx(1.0, abs=1e-3)
    m = measure_lesion(img, grid, seg.mask, fwhm_mm=6.0)
    r_t = crossing_radius(15.0, 6.0, 6.0, 1.0, seg.threshold_suv)
    assert m.volume_cc == pytest.approx(4 / 3 * math.pi * r_t**3 / 1000, rel=0.02)
    assert m.volume_cc == pytest.approx(4 / 3 * math.pi * 15**3 / 1000, rel=0.10)
    assert not m.partial_volume_warning


def test_connected_to_seed_only():
    a, b = (20.0, 32.0, 32.0), (46.0, 32.0, 32.0)
    grid, img = phantom([(a, 6.0, 8.0), (b, 6.0, 8.0)])
    seg = segment_seed(img, grid, a, method="percent_max", level=0.4, max_radius_mm=40)
    xs = np.argwhere(seg.mask)[:, 2]
    assert xs.max() < 33  # nothing of the second sphere (centre x = 46 mm)
    assert xs.min() > 10


def test_exclusion_mask_keeps_the_bladder_out():
    lesion, bladder = (26.0, 32.0, 32.0), (40.0, 32.0, 32.0)
    grid, img = phantom([(lesion, 6.0, 8.0), (bladder, 9.0, 20.0)])
    # without exclusion the seed climbs into the (hotter, touching) bladder
    joined = segment_seed(img, grid, lesion, method="percent_max", level=0.2,
                          max_radius_mm=40)
    assert joined.mask[32, 32, 40]
    zz, yy, xx = np.meshgrid(*[np.arange(64.0)] * 3, indexing="ij")
    excl = (xx - 40) ** 2 + (yy - 32) ** 2 + (zz - 32) ** 2 <= 13.0**2
    seg = segment_seed(img, grid, lesion, method="percent_max", level=0.4,
                       max_radius_mm=40, exclusion_mask=excl)
    assert not (seg.mask & excl).any()
    assert seg.mask[32, 32, 26] and seg.excluded_voxels > 0
    with pytest.raises(GeometryError, match="inside the exclusion mask"):
        segment_seed(img, grid, bladder, exclusion_mask=excl)


def test_max_radius_bounds_the_lesion():
    grid = Grid((40, 40, 40), origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2))
    img = np.ones(grid.shape)
    img[:, 18:22, 18:22] = 6.0  # a hot rod along the slice axis (80 mm)
    seed = (40.0, 40.0, 40.0)
    seg = segment_seed(img, grid, seed, method="percent_max", level=0.5, max_radius_mm=15)
    pts = grid.index_to_world(np.argwhere(seg.mask).astype(float))
    assert np.linalg.norm(pts - seed, axis=1).max() <= 15.0
    assert seg.touches_radius


def test_refusals():
    grid, img = phantom([(CENTER, 6.0, 8.0)], n=32)
    with pytest.raises(GeometryError, match="outside the PET volume"):
        segment_seed(img, grid, (500.0, 0.0, 0.0))
    with pytest.raises(InvalidParameterError, match="fraction in"):
        segment_seed(img, grid, CENTER, method="percent_max", level=40)
    flat = np.ones(grid.shape)
    with pytest.raises(InvalidParameterError, match="not in a hot lesion"):
        segment_seed(flat, grid, (10.0, 10.0, 10.0))
    with pytest.raises(InvalidParameterError, match="unknown segmentation method"):
        segment_seed(img, grid, CENTER, method="otsu")


def test_suv_peak_of_uniform_region_and_kernel_volume():
    grid = Grid((21, 21, 21), origin_mm=(0, 0, 0), spacing_mm=(2.0, 2.0, 2.0))
    img = np.full(grid.shape, 2.5)
    mask = np.zeros(grid.shape, bool)
    mask[10, 10, 10] = True
    assert suv_peak(img, grid, mask) == pytest.approx(2.5, rel=1e-12)
    # a point source of 1000 SUV in one voxel: its weight in the 1 ml ball is 1 voxel
    # (8 mm^3) / 1000 mm^3 when the ball contains the whole voxel
    img = np.zeros(grid.shape)
    img[10, 10, 10] = 1000.0
    assert suv_peak(img, grid, mask) == pytest.approx(8.0, rel=0.02)


def test_candidates_are_suggestions():
    spheres = [((20.0, 20.0, 32.0), 6.0, 8.0), ((44.0, 44.0, 32.0), 6.0, 4.0),
               ((20.0, 44.0, 32.0), 6.0, 1.0)]  # the last peaks below SUV 3
    grid, img = phantom(spheres, background=0.5)
    found = detect_candidates(img, grid, threshold_suv=3.0)
    assert [c.status for c in found] == ["suggestion", "suggestion"]
    assert found[0].peak_point_mm == pytest.approx((20.0, 20.0, 32.0), abs=1.0)
    assert found[1].peak_point_mm == pytest.approx((44.0, 44.0, 32.0), abs=1.0)
    assert found[0].suv_max > found[1].suv_max
    excl = np.zeros(grid.shape, bool)
    excl[:, 30:, 30:] = True
    assert len(detect_candidates(img, grid, exclusion_mask=excl)) == 1
    assert detect_candidates(img, grid, threshold_suv=50.0) == []


@pytest.mark.parametrize(
    ("sites", "labels"),
    [
        (["pelvic_node"], ["miN1a"]),
        (["pelvic_node", "pelvic_node"], ["miN1b", "miN1b"]),
        (["distant_node", "bone", "visceral", "prostate_bed"],
         ["miM1a", "miM1b", "miM1c", "miTr"]),
    ],
)
def test_mitnm_labels(sites, labels):
    assert mitnm_labels(sites) == labels


def test_oligometastatic_check():
    ok = oligometastatic_check(["bone"] * 3 + ["pelvic_node"] * 2 + ["prostate_bed"])
    assert ok.n_metastases == 5 and ok.oligometastatic and ok.warning is None
    too_many = oligometastatic_check(["bone"] * 6)
    assert not too_many.oligometastatic
    assert "6 metastases > 5" in too_many.warning
    with pytest.raises(InvalidParameterError, match="unknown lesion site"):
        mitnm_labels(["liver"])


def test_pet_seed_source_schema():
    src = PETSeedSource.model_validate(
        {"kind": "pet_seed", "point_mm": [1, 2, 3], "method": "percent_max", "level": 0.4,
         "max_radius_mm": 25})
    assert src.point_mm == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="max_radius_mm"):
        PETSeedSource(point_mm=(0, 0, 0), max_radius_mm=-1)


# --------------------------------------------------------------------------------------
# candidates next to delineated lesions; threshold presets
# --------------------------------------------------------------------------------------
def centre_recovery(radius_mm, fwhm_mm):
    """f(0) of the blurred unit sphere: erf(R / (s sqrt 2)) - sqrt(2/pi) R/s e^(-R^2/2s^2)."""
    s = fwhm_mm * FWHM_TO_SIGMA
    return math.erf(radius_mm / (s * math.sqrt(2))) - math.sqrt(2 / math.pi) * (
        radius_mm / s) * math.exp(-radius_mm**2 / (2 * s * s))


def analytic_image(spheres, *, n=48, spacing_mm=2.0, fwhm_mm=6.0, background=1.0):
    """Closed-form profile of each blurred sphere sampled at the voxel centres (no FFT)."""
    grid = Grid((n, n, n), origin_mm=(0.0, 0.0, 0.0), spacing_mm=(spacing_mm,) * 3)
    pts = grid.index_to_world(np.argwhere(np.ones(grid.shape, bool)).astype(float))
    img = np.full(n**3, background, float)
    for center, radius, excess in spheres:
        img += excess * profile(np.linalg.norm(pts - center, axis=1), radius, fwhm_mm)
    return grid, img.reshape(grid.shape)


HOT_A = ((30.0, 48.0, 48.0), 8.0, 19.0)  # delineated: SUV 20 in background 1
HOT_B = ((66.0, 48.0, 48.0), 6.0, 9.0)  # not delineated: SUV 10; both on voxel centres


def test_candidates_skip_the_rim_of_a_delineated_lesion():
    grid, img = analytic_image([HOT_A, HOT_B])
    lesion = PETLesion(id="L1", site="bone",
                       source={"kind": "pet_seed", "point_mm": [31.0, 47.0, 49.0]})
    rep = measure_pet_lesions(img, grid, [lesion], fwhm_mm=6.0, candidates_suv=3.0)
    (cand,) = rep.candidates  # exactly one: sphere B
    # SUVmax at B's centre: background + 9 f_B(0) + 19 f_A(36 mm) (f_A(36) < 1e-12)
    # (the image holds profile(1e-9 mm), whose cancellation costs ~1e-8 relative)
    truth_b = 1.0 + 9.0 * centre_recovery(6.0, 6.0)
    assert cand.suv_max == pytest.approx(truth_b, rel=1e-7)  # SUV
    assert cand.status == "suggestion" and cand.delineated_as == ()
    assert cand.peak_point_mm == pytest.approx(HOT_B[0], abs=1e-9)  # mm
    assert cand.centroid_mm == pytest.approx(HOT_B[0], abs=1e-6)  # mm, by symmetry
    # its volume: voxel centres within the radius where 1 + 9 f_B(r) = 3
    r3 = crossing_radius(6.0, 6.0, 9.0, 1.0, 3.0)
    dist_b = np.linalg.norm(grid.index_to_world(
        np.argwhere(np.ones(grid.shape, bool)).astype(float)) - HOT_B[0], axis=1)
    assert cand.n_voxels == np.count_nonzero(dist_b <= r3)
    # sphere A's hot region (lesion + rim) is reported as already delineated
    (region,) = rep.delineated_regions
    assert region.delineated_as == ("L1",) and region.status == "already_delineated"
    assert region.suv_max == pytest.approx(1.0 + 19.0 * centre_recovery(8.0, 6.0), rel=1e-7)
    lesion_voxels = rep.lesions[0].measures.n_voxels
    assert region.n_voxels > lesion_voxels  # the rim above SUV 3 outside the delineation
    # the former approach (remove the lesion, then label) listed that rim as a candidate
    lesion_mask = segment_seed(img, grid, lesion.source.point_mm).mask
    assert lesion_mask.sum() == lesion_voxels
    old = detect_candidates(img, grid, threshold_suv=3.0, exclusion_mask=lesion_mask)
    assert len(old) == 2


def test_candidates_exclusion_and_centroid_on_irregular_slices():
    offsets = np.array([0.0, 2.0, 4.0, 7.0, 10.0, 12.0, 16.0])  # mm, uneven spacing
    grid = Grid((7, 6, 6), origin_mm=(-5.0, 3.0, 1.0), spacing_mm=(2.0, 1.5, 1.0),
                slice_offsets_mm=offsets)
    suv = np.ones(grid.shape)
    suv[2:6, 1:3, 2:5] = 4.0
    suv[3, 2, 3] = 9.0
    (c,) = detect_candidates(suv, grid)
    # brute-force reference: mean LPS position of the region's voxels
    ref = grid.index_to_world(np.argwhere(suv >= 3).astype(float)).mean(axis=0)
    assert c.centroid_mm == pytest.approx(tuple(ref), abs=1e-9)  # mm
    assert c.peak_point_mm == pytest.approx(tuple(grid.index_to_world([3.0, 2.0, 3.0])))
    excl = np.zeros(grid.shape, bool)
    excl[2:6, 1:3, 2:5] = True
    assert detect_candidates(suv, grid, exclusion_mask=excl) == []


# the levels of the cited sources, written out here rather than read from PRESETS
@pytest.mark.parametrize(
    ("preset", "method", "level"),
    [("adaptive", "background_adaptive", 0.40),  # 40 % background-adaptive default
     ("sensitive", "percent_max", 0.20),  # Zamboglou 2019: 20 % of SUVmax
     ("specific", "percent_max", 0.45)],  # Zamboglou 2019: 40-50 % of SUVmax, middle
)
def test_preset_fills_method_and_level(preset, method, level):
    src = PETSeedSource.model_validate({"kind": "pet_seed", "point_mm": [1, 2, 3],
                                        "preset": preset})
    assert (src.preset.value, src.method.value, src.level) == (preset, method, level)
    # an explicit method/level equal to the preset's is accepted; a round trip is stable
    same = PETSeedSource(point_mm=(1, 2, 3), preset=preset, method=method, level=level)
    assert same == src
    assert PETSeedSource.model_validate(src.model_dump()) == src
    assert PETSeedSource.model_validate_json(src.model_dump_json()) == src


def test_preset_levels_applied_to_the_threshold():
    grid, img = analytic_image([HOT_A])
    true_max = 1.0 + 19.0 * centre_recovery(8.0, 6.0)  # SUV at the centre (rel 1e-8)
    lesions = [PETLesion(id=p, site="bone", source={
        "kind": "pet_seed", "point_mm": [30.0, 48.0, 48.0], "preset": p})
        for p in ("sensitive", "specific", "adaptive")]
    # three delineations of the same sphere (ids differ); background 1 from the shell
    rep = measure_pet_lesions(img, grid, lesions)
    by = {r.id: r for r in rep.lesions}
    assert by["sensitive"].threshold_suv == pytest.approx(0.20 * true_max, rel=1e-7)
    assert by["specific"].threshold_suv == pytest.approx(0.45 * true_max, rel=1e-7)
    assert by["adaptive"].threshold_suv == pytest.approx(1 + 0.40 * (true_max - 1), rel=1e-7)
    assert by["sensitive"].preset == "sensitive" and by["sensitive"].method == "percent_max"
    # volumes: the analytic isocontour balls (voxel-centre counts, exact on this lattice)
    pts = grid.index_to_world(np.argwhere(np.ones(grid.shape, bool)).astype(float))
    dist = np.linalg.norm(pts - HOT_A[0], axis=1)
    for r in rep.lesions:
        r_t = crossing_radius(8.0, 6.0, 19.0, 1.0, r.threshold_suv)
        assert r.measures.n_voxels == np.count_nonzero(dist <= r_t), r.id
    assert by["sensitive"].measures.volume_cc > by["specific"].measures.volume_cc


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"preset": "sensitive", "method": "absolute"},
      "preset 'sensitive' means method percent_max, level 0.2, but the source also gives "
      "method absolute"),
     ({"preset": "specific", "level": 0.4}, "also gives level 0.4: remove the preset"),
     ({"preset": "adaptive", "method": "percent_max", "level": 0.2},
      "method percent_max and level 0.2"),
     ({"preset": "loose"}, "unknown preset 'loose': use adaptive, sensitive, specific")],
)
def test_preset_conflicts_are_refused(extra, message):
    with pytest.raises(ValidationError, match=message):
        PETSeedSource.model_validate({"kind": "pet_seed", "point_mm": [0, 0, 0], **extra})


def test_default_preset_only_for_sources_without_a_threshold():
    raw = [
        {"id": "A", "site": "bone", "source": {"kind": "pet_seed", "point_mm": [0, 0, 0]}},
        {"id": "B", "site": "bone", "source": {"kind": "pet_seed", "point_mm": [0, 0, 0],
                                               "method": "absolute", "level": 4.0}},
        {"id": "C", "site": "bone", "source": {"kind": "pet_seed", "point_mm": [0, 0, 0],
                                               "preset": "specific"}},
        {"id": "D", "site": "bone", "source": {"kind": "sphere", "center_mm": [0, 0, 0],
                                               "diameter_mm": 8}},
    ]
    lesions = [PETLesion.model_validate(x) for x in raw]
    assert [x.source.gives_threshold for x in lesions[:3]] == [False, True, True]
    out = apply_default_preset(lesions, "sensitive")
    assert [(x.source.method.value, x.source.level) for x in out[:3]] == [
        ("percent_max", 0.20), ("absolute", 4.0), ("percent_max", 0.45)]
    assert out[0].source.preset == "sensitive" and out[0].source.point_mm == (0, 0, 0)
    assert out[3] == lesions[3]
    with pytest.raises(InvalidParameterError, match="unknown preset 'wide'"):
        apply_default_preset(lesions, "wide")


def test_preset_in_the_lesions_file_schema_and_model():
    from rtplan.structures.spec import LesionsFile

    doc = {"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "pet_seed", "point_mm": [1, 2, 3], "preset": "specific"}}]}
    src = LesionsFile.model_validate(doc).lesions[0].source
    assert (src.method.value, src.level) == ("percent_max", 0.45)
    path = Path(__file__).resolve().parents[2] / "schemas" / "structures" / "lesions_file.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    props = schema["$defs"]["PETSeedSource"]["properties"]
    assert schema["$defs"]["ThresholdPreset"]["enum"] == ["adaptive", "sensitive", "specific"]
    assert {"$ref": "#/$defs/ThresholdPreset"} in props["preset"]["anyOf"]
