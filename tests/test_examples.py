"""The example scripts run and print what they promise."""

import math
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO


def test_compare_schedules_example():
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "compare_schedules.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "a/b 1.5 Gy: sbrt-37.5-5" in out
    assert "a/b 10 Gy: eni-51-34-sib-61.2" in out
    # analytic crossing: 37.5 (7.5 + x) = 61.2 (1.8 + x) -> x = 7.219 Gy
    assert "below ~7.2" in out


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# the demo's sphere lesions (rtplan.demo.DEMO_LESIONS): id -> (centre LPS mm, diameter mm)
DEMO_SPHERES = {
    "L1": ((62.3, 12.4, 21.1), 12.0),
    "L2": ((-58.6, 18.2, -9.7), 8.0),
    "L3": ((-95.2, 30.5, 40.3), 16.0),
    "L4": ((1.1, -14.8, -62.4), 10.0),
}


def sphere_cc(r_mm: float) -> float:
    return 4.0 / 3.0 * math.pi * r_mm**3 / 1000.0


def test_demo_spheres_match_the_demo():
    from rtplan.demo import DEMO_LESIONS

    got = {d["id"]: (tuple(d["source"]["center_mm"]), d["source"]["diameter_mm"])
           for d in DEMO_LESIONS}
    assert got == DEMO_SPHERES


@pytest.mark.slow
def test_structures_pipeline_example(tmp_path):
    out = run_example("structures_pipeline.py", str(tmp_path / "out"))
    rows = re.findall(
        r"^(\w+)\s+(GTV|CTV|PTV)\s+(L\d)\s+([\d.]+)\s+([\d.]+)\s+r = ", out, re.MULTILINE)
    # every lesion: GTV (r), CTV (r + 3 mm), PTV (r + 3 + 3 mm) of the demo lesions file
    grow_mm = {"GTV": 0.0, "CTV": 3.0, "PTV": 6.0}
    assert sorted((lid, kind) for _, kind, lid, _, _ in rows) == sorted(
        (lid, kind) for lid in DEMO_SPHERES for kind in grow_mm)
    for name, kind, lid, vol, analytic in rows:
        r = DEMO_SPHERES[lid][1] / 2 + grow_mm[kind]
        exact = sphere_cc(r)
        assert float(analytic) == pytest.approx(exact, abs=6e-4), name
        # the surface within 0.1 mm of the analytic sphere: |dV| <= 4 pi r^2 x 0.1 mm
        tol_cc = 4 * math.pi * r**2 * 0.1 / 1000 + 5e-4
        assert abs(float(vol) - exact) <= tol_cc, (name, vol, exact)
    # SIB boost = union of the four lesion PTVs, pairwise disjoint (centres > 40 mm apart)
    boost = re.search(r"^PTV_6120\s+PTV\s+-\s+([\d.]+)", out, re.MULTILINE)
    exact = sum(sphere_cc(d / 2 + 6.0) for _, d in DEMO_SPHERES.values())
    tol_cc = sum(4 * math.pi * (d / 2 + 6.0) ** 2 * 0.1 / 1000 for _, d in DEMO_SPHERES.values())
    assert abs(float(boost.group(1)) - exact) <= tol_cc
    for name in ("CTVn_5100", "PTVn_5100", "PTV_5100", "External"):
        assert re.search(rf"^{name}\s", out, re.MULTILINE), name
    # 4 lesions x (GTV, CTV, PTV) + ENI CTV, PTV + SIB boost, elective + External
    assert "RTSTRUCT RS_targets.dcm: 17 ROIs" in out
    assert (tmp_path / "out" / "RS_targets.dcm").is_file()


@pytest.mark.slow
def test_pet_to_ct_example():
    out = run_example("pet_to_ct.py")
    assert "over all voxel centres = 0.0e+00 mm" in out
    assert "rotation 90.000 deg, translation [40.0, -25.0, 15.0] mm" in out
    assert "without the registration: refused (GeometryError" in out
    # p_ct = R p_pet + t with R: (x, y, z) -> (-y, x, z); so p_pet = R^T (p_ct - t), with
    # R^T: (x, y, z) -> (y, -x, z), written out here by hand
    t = np.array([40.0, -25.0, 15.0])

    def r_t(p):
        return np.array([p[1], -p[0], p[2]])

    num = r"\(\s*(-?[\d.]+),\s*(-?[\d.]+),\s*(-?[\d.]+)\)"
    rows = re.findall(rf"^(L\d)\s+\w+\s+{num}\s+{num}\s+{num}\s+[\d.]+\s+{num}", out,
                      re.MULTILINE)
    assert sorted(r[0] for r in rows) == sorted(DEMO_SPHERES)
    for row in rows:
        lid, v = row[0], np.array(row[1:], dtype=float).reshape(4, 3)
        seed_pet, centroid_ct, true_ct, inverse_ct = v
        centre = np.array(DEMO_SPHERES[lid][0])
        assert np.allclose(true_ct, centre, atol=0.06)
        assert np.allclose(seed_pet, r_t(centre - t), atol=0.06)  # the seed in PET frame
        # GTV centroid on the CT within half a PET voxel (4 mm) of the true centre per axis
        assert np.all(np.abs(centroid_ct - centre) <= 2.0), (lid, centroid_ct, centre)
        # the wrong direction, inv(M) p_pet = R^T (p_pet - t), is far from the truth
        wrong = r_t(r_t(centre - t) - t)
        assert np.allclose(inverse_ct, wrong, atol=0.06)
        assert np.linalg.norm(wrong - centre) > 40.0
