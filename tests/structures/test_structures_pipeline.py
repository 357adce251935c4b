"""Target pipeline: lesions file, TG-263 names, GTV/CTV/PTV, ENI + SIB, body cropping.

References are analytic: sphere volumes 4/3 pi r^3, a sphere cut by a plane (sphere
minus a cap of height h: pi h^2 (3r - h) / 3), disjointness and coverage of SIB volumes.
"""

import json
import math

import numpy as np
import pytest

from rtplan.errors import GeometryError, InputError
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures import rasterize, write_rtstruct
from rtplan.structures.contour import PlanarContour, ROIContours
from rtplan.structures.naming import target_name, validate_name
from rtplan.structures.spec import LesionsFile, load_lesions_file, margin_warnings
from rtplan.structures.targets import build_targets, targets_to_rois

SPACING = (3.0, 1.0, 1.0)
SHAPE = (30, 90, 90)


def sphere_volume_cc(r_mm):
    return 4.0 / 3.0 * math.pi * r_mm**3 / 1000.0


def cap_volume_cc(r_mm, h_mm):
    return math.pi * h_mm**2 * (3 * r_mm - h_mm) / 3.0 / 1000.0


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """A 'patient' of soft tissue for y < 30 mm and air beyond (a flat skin)."""
    grid = Grid(SHAPE, origin_mm=(-44.5, -44.5, -43.5), spacing_mm=SPACING)
    vol = np.full(SHAPE, -1000, dtype=np.int16)
    y = grid.origin_mm[1] + np.arange(SHAPE[1]) * SPACING[1]
    vol[:, y < 30.0, :] = 40  # last tissue row centre at y = 29.5: skin face at y = 30.0
    folder = tmp_path_factory.mktemp("ct")
    return write_ct_series(folder / "ct", vol, grid)


def spec_for(lesions, **extra):
    return LesionsFile.model_validate({"lesions": lesions, **extra})


def sphere(i, site, c, d):
    return {"id": i, "site": site, "source": {"kind": "sphere", "center_mm": c,
                                              "diameter_mm": d}}


def test_gtv_ctv_ptv_volumes_are_expanded_spheres(ct):
    spec = spec_for([sphere("L1", "pelvic_node", [0.3, -10.2, 1.1], 10.0),
                     sphere("L2", "bone", [-20.1, 5.3, -8.4], 6.0)],
                    margins={"ctv_margin_mm": 2, "ptv_margin_mm": 3})
    ts = build_targets(spec, ct, body="auto")
    names = [t.name for t in ts.targets]
    assert names == ["GTVn1", "CTVn1", "PTVn1", "GTV1_Bone", "CTV1_Bone", "PTV1_Bone",
                     "External"]
    for name, r in [("GTVn1", 5), ("CTVn1", 7), ("PTVn1", 10), ("GTV1_Bone", 3),
                    ("CTV1_Bone", 5), ("PTV1_Bone", 8)]:
        # 2 % in volume = 0.7 % in radius (< 0.07 mm here)
        assert ts.by_name(name).volume_cc() == pytest.approx(sphere_volume_cc(r), rel=0.02)
    assert ts.warnings == []
    rep = ts.report()
    assert {s["name"]: s["lesion_id"] for s in rep["structures"]}["PTV1_Bone"] == "L2"
    assert set(rep["structures"][0]) >= {"name", "roi_type", "volume_cc", "lesion_id", "source"}


def test_body_crop_and_inside_skin_are_plane_cuts(ct):
    # sphere r=8 mm centred 4 mm below the skin plane y = 30: cut cap of height 4 mm
    spec = spec_for([sphere("L1", "bone", [0.2, 26.0, 0.4], 16.0)],
                    margins={"ctv_margin_mm": 0, "ptv_margin_mm": 0})
    whole = sphere_volume_cc(8)
    got = build_targets(spec, ct, body="none").by_name("GTV1_Bone").volume_cc()
    assert got == pytest.approx(whole, rel=0.02)
    got = build_targets(spec, ct, body="auto").by_name("GTV1_Bone").volume_cc()
    assert got == pytest.approx(whole - cap_volume_cc(8, 4.0), rel=0.02)
    got = build_targets(spec, ct, body="auto", inside_skin_mm=3).by_name("GTV1_Bone").volume_cc()
    assert got == pytest.approx(whole - cap_volume_cc(8, 7.0), rel=0.03)
    with pytest.raises(InputError, match="needs a body outline"):
        build_targets(spec, ct, body="none", inside_skin_mm=3)


def _eni_rtstruct(ct, path, radius_mm=18.0, center=(5.0, -5.0)):
    contours = []
    for k in range(4, 26):
        z = float(ct.grid.index_to_world([k, 0, 0])[2])
        t = np.linspace(0, 2 * np.pi, 128, endpoint=False)
        pts = np.column_stack([center[0] + radius_mm * np.cos(t),
                               center[1] + radius_mm * np.sin(t), np.full(t.size, z)])
        contours.append(PlanarContour(k, pts))
    write_rtstruct(path, ct, [ROIContours("CTV_Elective", "CTV", (255, 170, 0), contours)])
    return path


def test_eni_and_sib(ct, tmp_path):
    rs = _eni_rtstruct(ct, tmp_path / "atlas.dcm")
    spec = spec_for(
        [sphere("L1", "pelvic_node", [12.0, -3.0, 2.0], 8.0),
         sphere("L2", "pelvic_node", [-30.0, -30.0, 20.0], 6.0)],
        eni={"ctv": {"kind": "rtstruct", "path": str(rs), "roi": "CTV_Elective"},
             "margin_mm": 5, "sib": True, "gap_mm": 2.0},
    )
    ts = build_targets(spec, ct, body="none")
    names = [t.name for t in ts.targets]
    assert names[-4:] == ["CTVn_5100", "PTVn_5100", "PTV_6120", "PTV_5100"]
    boost = rasterize(ts.by_name("PTV_6120").sdf)
    elective = rasterize(ts.by_name("PTV_5100").sdf)
    ptv_eni = rasterize(ts.by_name("PTVn_5100").sdf)
    assert not np.any(boost & elective)           # disjoint
    assert not np.any(elective & ~ptv_eni)        # elective inside PTV_ENI
    # the boost is the union of the lesion PTVs (radii 4+6 and 3+6 mm)
    assert ts.by_name("PTV_6120").volume_cc() == pytest.approx(
        sphere_volume_cc(10) + sphere_volume_cc(9), rel=0.02)
    # the gap: every elective contour point is >= 2 mm from the boost sphere of L1
    for c in [c for r in targets_to_rois([ts.by_name("PTV_5100")]) for c in r.contours]:
        d = np.linalg.norm(c.points_mm - np.array([12.0, -3.0, 2.0]), axis=1)
        assert d.min() >= 10.0 + 2.0 - 0.3


def test_rtstruct_and_mask_sources(ct, tmp_path):
    nib = pytest.importorskip("nibabel")
    # a 10 x 10 mm square on 5 slices, as an RTSTRUCT ROI and as a NIfTI label map
    mask = np.zeros(SHAPE, bool)
    mask[10:15, 40:50, 30:40] = True
    grid = ct.grid
    # NIfTI (i, j, k) = (column, row, slice), affine to RAS: x_ras = -x_lps, y_ras = -y_lps
    data = np.transpose(mask, (2, 1, 0)).astype(np.uint8) * 3
    aff = np.diag([-SPACING[2], -SPACING[1], SPACING[0], 1.0])
    aff[:3, 3] = [-grid.origin_mm[0], -grid.origin_mm[1], grid.origin_mm[2]]
    nib.save(nib.Nifti1Image(data, aff), tmp_path / "m.nii.gz")
    from rtplan.structures import contours_from_mask
    write_rtstruct(tmp_path / "gtv.dcm", ct,
                   [ROIContours("GTV-1", "GTV", (255, 0, 0), contours_from_mask(mask, grid))])
    lesions = {"lesions": [
        {"id": "A", "site": "visceral", "source": {"kind": "mask", "path": "m.nii.gz",
                                                    "label": 3}},
        {"id": "B", "site": "distant_node", "source": {"kind": "rtstruct", "path": "gtv.dcm",
                                                        "roi": "GTV-1"}}]}
    (tmp_path / "lesions.json").write_text(json.dumps(lesions))
    spec = load_lesions_file(tmp_path / "lesions.json")
    ts = build_targets(spec, ct, body="none")
    expected = mask.sum() * 3.0 / 1000.0  # 500 voxels of 3 mm^3
    assert ts.by_name("GTV1").volume_cc() == pytest.approx(expected, rel=0.02)
    assert ts.by_name("GTVn1").volume_cc() == pytest.approx(expected, rel=0.02)
    np.testing.assert_array_equal(rasterize(ts.by_name("GTV1").sdf), mask)
    # a mask on another grid is refused
    nib.save(nib.Nifti1Image(data[:-1], aff), tmp_path / "bad.nii.gz")
    bad = {"lesions": [{"id": "A", "site": "bone",
                        "source": {"kind": "mask", "path": "bad.nii.gz"}}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(GeometryError, match="resample"):
        build_targets(load_lesions_file(tmp_path / "bad.json"), ct, body="none")


def test_lesion_outside_ct_is_refused(ct):
    spec = spec_for([sphere("L1", "bone", [0, 0, 500], 10)])
    with pytest.raises(GeometryError, match="outside the planning CT"):
        build_targets(spec, ct, body="none")


def test_eni_without_ctv_is_refused(ct):
    spec = spec_for([sphere("L1", "bone", [0, 0, 0], 10)], eni={"sib": True})
    with pytest.raises(InputError, match="elective nodal CTV"):
        build_targets(spec, ct, body="none")


@pytest.mark.parametrize(
    "data, match",
    [
        ({"lesions": []}, "at least 1"),
        ({"lesions": [sphere("L1", "liver", [0, 0, 0], 5)]}, "site"),
        ({"lesions": [sphere("L1", "bone", [0, 0, 0], 5), sphere("L1", "bone", [0, 0, 9], 5)]},
         "unique"),
        ({"lesions": [sphere("L1", "bone", [0, 0, 0], 5)], "margins": {"ctv_margin_mm": 25}},
         "less than or equal to 20"),
        ({"lesions": [sphere("L1", "bone", [0, 0, 0], 5)],
          "margins": {"ptv_margin_mm": [1, 2, 3]}}, "six values"),
        ({"lesions": [{"id": "L1", "site": "bone", "source": {"kind": "cube"}}]}, "kind"),
    ],
)
def test_lesions_file_validation(tmp_path, data, match):
    p = tmp_path / "l.json"
    p.write_text(json.dumps(data))
    with pytest.raises(InputError, match=match):
        load_lesions_file(p)


def test_margin_warnings_and_anisotropic():
    spec = LesionsFile.model_validate(
        {"lesions": [sphere("L1", "bone", [0, 0, 0], 5)],
         "margins": {"ctv_margin_mm": [2, 2, 3, 3, 5, 5], "ptv_margin_mm": 3}})
    w = margin_warnings(spec.margins)
    assert len(w) == 1 and "CTV margin 2, 2, 3, 3, 5, 5 mm" in w[0]


def test_tg263_names():
    assert target_name("GTV", "n", 1) == "GTVn1"
    assert target_name("PTV", dose_gy=57.2) == "PTV_5720"
    for n in ("GTVsb12", "CTVn_5100", "PTV_6120", "External"):
        assert validate_name(n) == n and len(n) <= 16
    with pytest.raises(InputError):
        validate_name("PTV_very_long_name_1")


def _pet_volume(ct, for_uid):
    from rtplan.imaging import PETVolume, SUVNormalization

    # 2 mm isotropic PET in the CT frame: a uniform sphere (r 7 mm, SUV 10) in SUV 1
    g = Grid((24, 40, 40), origin_mm=(-39.0, -39.0, -23.0), spacing_mm=(2.0, 2.0, 2.0))
    k, i, j = np.meshgrid(*[np.arange(n) for n in g.shape], indexing="ij")
    pts = g.index_to_world(np.stack([k, i, j], -1).astype(float))
    centre = np.array([1.0, -3.0, 1.0])
    suv = np.where(np.linalg.norm(pts - centre, axis=-1) <= 7.0, 10.0, 1.0).astype(np.float32)
    return PETVolume(suv=suv, grid=g, provenance=(), normalization=SUVNormalization("bw"),
                     frame_of_reference_uid=for_uid), centre


def test_pet_seed_lesion(ct):
    pet, _ = _pet_volume(ct, ct.frame_of_reference_uid)
    spec = spec_for([{"id": "P1", "site": "distant_node",
                      "source": {"kind": "pet_seed", "point_mm": [2.0, -2.0, 0.0],
                                 "method": "percent_max", "level": 0.5}}],
                    margins={"ctv_margin_mm": 2, "ptv_margin_mm": 3})
    ts = build_targets(spec, ct, body="none", pet=pet)
    # PET voxels (2 mm) with centres inside r = 7 mm, resampled to the CT grid: the
    # volume is that of a sphere of ~7 mm (voxelisation error < 10 %)
    assert ts.by_name("GTVn1").volume_cc() == pytest.approx(sphere_volume_cc(7.0), rel=0.10)
    # the GTV is a union of 2 mm PET voxels whose centres lie within 7 mm: it contains the
    # ball of radius 7 - sqrt(3) and lies in the ball of 7 + sqrt(3) (half-diagonal), so
    # the PTV (+ 5 mm) lies between balls of radius 12 -/+ sqrt(3)
    v = ts.by_name("PTVn1").volume_cc()
    assert sphere_volume_cc(12.0 - 3**0.5) < v < sphere_volume_cc(12.0 + 3**0.5)
    with pytest.raises(InputError, match=r"give the PET series \(pet=\)"):  # keyword named
        build_targets(spec, ct, body="none")
    other, _ = _pet_volume(ct, "1.2.3.4")
    with pytest.raises(GeometryError, match="frames of reference"):
        build_targets(spec, ct, body="none", pet=other)
