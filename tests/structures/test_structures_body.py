"""The automatic body outline: several body parts per slice, the couch left out, and
targets that the body crop would remove.

References are analytic: the patient is a pelvis (elliptic cylinder, z >= 0) on two
separated legs (elliptic cylinders, z < 0) on a couch slab 10 mm thick, 8 mm below; the
External volume is the sum over slices of the ellipse areas (pi a b) times the slice
spacing; a bone lesion in each femur is a sphere (4/3 pi r^3).
"""

import json
import math

import numpy as np
import pytest

from rtplan.cli.main import main
from rtplan.errors import InputError
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures.body import body_mask
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets

SPACING = (5.0, 1.5, 1.5)
SHAPE = (24, 110, 136)
PELVIS = (0.0, 0.0, 90.0, 60.0)  # centre x, y, semi-axes x, y (mm)
LEGS = [(-45.0, 0.0, 40.0, 45.0), (46.0, 0.0, 41.0, 46.0)]  # patient right (-x), left
COUCH_Y = (68.0, 78.0)  # the body ends at y = 60 mm (pelvis), 46 mm (legs)


def _grid():
    return Grid(SHAPE, origin_mm=(-101.25, -81.75, -57.5), spacing_mm=SPACING)


def _volume(grid, pelvis=True):
    z, y, x = (grid.origin_mm[::-1][a] + grid.voxel_centers_mm(a) for a in range(3))
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")

    def ellipse(cx, cy, a, b):
        return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0

    body = np.zeros(grid.shape, bool)
    if pelvis:
        body |= ellipse(*PELVIS) & (zz >= 0)
    for leg in LEGS:
        body |= ellipse(*leg) & (zz < 0 if pelvis else True)
    vol = np.where(body, 20.0, -1000.0)
    couch = (yy >= COUCH_Y[0]) & (yy <= COUCH_Y[1])
    vol[couch] = 250.0
    return vol, zz[:, 0, 0]


def _analytic_external_cc(z, pelvis=True):
    area_legs = sum(math.pi * a * b for _, _, a, b in LEGS)
    area_pelvis = math.pi * PELVIS[2] * PELVIS[3]
    per_slice = [area_pelvis if (pelvis and zk >= 0) else area_legs for zk in z]
    return sum(per_slice) * SPACING[0] / 1000.0


@pytest.fixture(scope="module")
def legs_ct(tmp_path_factory):
    grid = _grid()
    vol, z = _volume(grid)
    folder = tmp_path_factory.mktemp("legs") / "ct"
    return write_ct_series(folder, vol, grid), z


def _femur_lesions(extra=()):
    lesions = [{"id": f"L{i}", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [cx + 0.3, 0.2, -32.6], "diameter_mm": 12.0}}
        for i, (cx, *_rest) in enumerate(LEGS, start=1)]
    return {"lesions": lesions + list(extra),
            "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}}


def test_both_legs_are_in_the_body_and_their_lesions_kept(legs_ct):
    ct, z = legs_ct
    ts = build_targets(LesionsFile.model_validate(_femur_lesions()), ct, body="auto")
    assert ts.warnings == []
    sphere = 4 / 3 * math.pi * 6.0**3 / 1000
    for name in ("GTV1_Bone", "GTV2_Bone"):
        assert ts.by_name(name).volume_cc() == pytest.approx(sphere, rel=0.01)
    for name, r in (("PTV1_Bone", 11.0), ("PTV2_Bone", 11.0)):
        assert ts.by_name(name).volume_cc() == pytest.approx(4 / 3 * math.pi * r**3 / 1000,
                                                             rel=0.01)
    # External: pelvis above z = 0, both legs below, the couch left out (pixelised
    # ellipses: 0.5 %)
    ext = ts.by_name("External").volume_cc()
    assert ext == pytest.approx(_analytic_external_cc(z), rel=0.005)
    y = ct.grid.origin_mm[1] + ct.grid.voxel_centers_mm(1)
    assert not ts.body[:, (y >= COUCH_Y[0]) & (y <= COUCH_Y[1]), :].any()


def test_legs_never_joined_in_the_field_of_view_are_both_kept(tmp_path):
    grid = _grid()
    vol, z = _volume(grid, pelvis=False)
    mask = body_mask(vol, grid)
    volume_cc = mask.sum() * np.prod(SPACING) / 1000.0
    assert volume_cc == pytest.approx(_analytic_external_cc(z, pelvis=False), rel=0.005)


def test_body_keeps_a_large_thin_couch_out_and_fills_holes():
    grid = _grid()
    vol, _ = _volume(grid)
    vol[:, 50:60, 60:70] = -1000.0  # gas inside the pelvis (rows 50-59: y -7..6 mm)
    mask = body_mask(vol, grid)
    assert mask[-1, 50:60, 60:70].all()  # filled
    # a second thin object beside the patient (a board 10 mm thick): not body
    vol[:, 5:12, :] = 100.0
    assert not body_mask(vol, grid)[:, 5:12, :].any()


def test_target_removed_by_the_body_crop_is_an_error(legs_ct, tmp_path, capsys):
    ct, _ = legs_ct
    # between the legs, below the pelvis: air
    gap = {"id": "L9", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [0.4, 0.2, -40.1], "diameter_mm": 4.0}}
    spec = LesionsFile.model_validate(_femur_lesions([gap]))
    with pytest.raises(InputError, match=r"lesion L9's GTV3_Bone lies entirely outside the body"):
        build_targets(spec, ct, body="auto")
    assert build_targets(spec, ct, body="none").by_name("GTV3_Bone").volume_cc() > 0
    lesions = tmp_path / "lesions.json"
    lesions.write_text(json.dumps(_femur_lesions([gap])))
    folder = tmp_path / "ct"
    write_ct_series(folder, ct.volume_hu, ct.grid)
    code = main(["structures", "--ct", str(folder), "--lesions", str(lesions),
                 "-o", str(tmp_path / "RS.dcm"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "L9" in err and "--body none" in err
    assert not (tmp_path / "RS.dcm").exists()


def test_target_partly_outside_the_body_is_a_warning(legs_ct):
    ct, _ = legs_ct
    # a sphere r = 8 mm centred 4 mm inside the pelvis's posterior edge (y = 60 mm at x = 0):
    # the cap beyond the skin is cut; a warning says how much
    edge = {"id": "L3", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [0.2, 56.0, 30.4], "diameter_mm": 16.0}}
    spec = LesionsFile.model_validate({"lesions": [edge],
                                       "margins": {"ctv_margin_mm": 2, "ptv_margin_mm": 3}})
    ts = build_targets(spec, ct, body="auto")
    assert any(w.startswith("lesion L3's GTV1_Bone:") and "outside the body" in w
               for w in ts.warnings)
