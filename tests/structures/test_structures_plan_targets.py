"""The library face of ``rtplan structures``: plan_targets, write_structures, the report.

References: sphere volumes 4/3 pi r^3; a sphere cut by a plane (cap of height h:
pi h^2 (3r - h) / 3); the contour volume of a sphere by the slab rule, sum over the CT
planes z_k it crosses of pi (r^2 - z_k^2) x slice spacing; a box of voxels.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rtplan
from rtplan.cli.main import main
from rtplan.errors import InputError, OutputError
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.lesions import LesionsFile, MarginSpec, RTStructSource
from rtplan.structures import (
    MAX_OUTSIDE_BODY_FRACTION,
    SignedDistanceField,
    StructuresReport,
    TargetSet,
    VoxelMask,
    check_structure_outputs,
    plan_targets,
    write_structures,
)

SPACING = (3.0, 1.0, 1.0)
SHAPE = (30, 90, 90)
SKIN_Y_MM = 30.0


def sphere_cc(r_mm: float) -> float:
    return 4.0 / 3.0 * math.pi * r_mm**3 / 1000.0


def cap_cc(r_mm: float, h_mm: float) -> float:
    return math.pi * h_mm**2 * (3 * r_mm - h_mm) / 3.0 / 1000.0


@pytest.fixture(scope="module")
def ct_dir(tmp_path_factory):
    """Soft tissue for y < 30 mm, air beyond (a flat skin at y = 30 mm)."""
    grid = Grid(SHAPE, origin_mm=(-44.5, -44.5, -43.5), spacing_mm=SPACING)
    vol = np.full(SHAPE, -1000, dtype=np.int16)
    y = grid.origin_mm[1] + np.arange(SHAPE[1]) * SPACING[1]
    vol[:, y < SKIN_Y_MM, :] = 40
    folder = tmp_path_factory.mktemp("ct") / "ct"
    write_ct_series(folder, vol, grid)
    return folder


@pytest.fixture(scope="module")
def ct(ct_dir):
    from rtplan.imaging import load_ct_series

    return load_ct_series(ct_dir)


def spec(*lesions, **extra) -> LesionsFile:
    return LesionsFile.model_validate({"lesions": list(lesions), **extra})


def sphere(i, c, d, site="bone"):
    return {"id": i, "site": site,
            "source": {"kind": "sphere", "center_mm": c, "diameter_mm": d}}


def test_plan_targets_reachable_from_the_top_level():
    assert rtplan.structures.plan_targets is plan_targets


def test_margins_override_and_sphere_volumes(ct):
    s = spec(sphere("L1", [0.3, -10.2, 1.1], 10.0))
    ts = plan_targets(ct, s, margins=MarginSpec(ctv_margin_mm=2, ptv_margin_mm=3),
                      body="none")
    assert isinstance(ts, TargetSet) and ts.pet is None
    for name, r in (("GTV1_Bone", 5), ("CTV1_Bone", 7), ("PTV1_Bone", 10)):
        assert ts.by_name(name).volume_cc() == pytest.approx(sphere_cc(r), rel=0.02)
    assert all(isinstance(t.geometry, SignedDistanceField) for t in ts.targets)


def test_external_is_a_voxel_mask_measured_by_its_voxels(ct):
    ts = plan_targets(ct, spec(sphere("L1", [0.3, -10.2, 1.1], 10.0)))
    ext = ts.by_name("External")
    assert isinstance(ext.geometry, VoxelMask)
    # voxel count x 3 mm3 (the body outline itself is tested in test_structures_body)
    assert ext.volume_cc() == pytest.approx(np.count_nonzero(ts.body) * 3.0 / 1000.0,
                                            rel=1e-12)
    assert np.array_equal(ext.geometry.mask, ts.body)
    # its contours (the path the RTSTRUCT takes) follow the voxel edges exactly: per
    # slice, the enclosed area (outer rings minus holes, shapely) equals the voxel count
    # x pixel area
    import shapely

    got = ext.contours()
    assert got
    for k in range(ct.grid.shape[0]):
        rings = [c for c in got if c.slice_index == k]
        area = sum((-1 if c.is_hole else 1) * shapely.Polygon(c.points_mm[:, :2]).area
                   for c in rings)
        pixel_mm2 = SPACING[1] * SPACING[2]
        assert area == pytest.approx(np.count_nonzero(ts.body[k]) * pixel_mm2, abs=1e-9)


def test_gtv_mostly_outside_the_body_is_an_error(ct):
    # sphere r = 8 mm; centre 2 mm outside the skin plane: inside is a cap of height 6 mm
    r, d_out = 8.0, 2.0
    outside = 1 - cap_cc(r, r - d_out) / sphere_cc(r)
    assert outside > MAX_OUTSIDE_BODY_FRACTION  # 68 %
    with pytest.raises(InputError, match=r"lesion L1's GTV1_Bone: 6[6-9] % of its .* "
                       r"more than 50 % outside the patient is refused"):
        plan_targets(ct, spec(sphere("L1", [0.2, SKIN_Y_MM + d_out, 0.4], 2 * r)))
    # 2 mm inside: 32 % outside, a warning and the cut GTV
    ts = plan_targets(ct, spec(sphere("L1", [0.2, SKIN_Y_MM - d_out, 0.4], 2 * r)))
    w, w_ptv = ts.warnings
    assert "lesion L1's GTV1_Bone: 32 % of its" in w and "was cut" in w
    # the PTV (r + 3 + 3 mm, default margins) is cut too, and says so: analytic cap
    r_ptv = r + 6.0
    ptv_out = 1 - cap_cc(r_ptv, r_ptv + d_out) / sphere_cc(r_ptv)
    assert f"lesion L1's PTV1_Bone: {100 * ptv_out:.0f} % of its" in w_ptv
    assert "cut off" in w_ptv
    assert ts.by_name("GTV1_Bone").volume_cc() == pytest.approx(cap_cc(r, r + d_out),
                                                                rel=0.02)
    # the library names its keyword (the CLI maps it to --body none)
    with pytest.raises(InputError, match="body='none'"):
        plan_targets(ct, spec(sphere("L1", [0.2, SKIN_Y_MM + d_out, 0.4], 2 * r)))


def test_pet_options_need_a_pet(ct):
    s = spec(sphere("L1", [0.3, -10.2, 1.1], 10.0))
    with pytest.raises(InputError, match=r"registration= apply to the PET: give pet= too"):
        plan_targets(ct, s, registration=np.eye(4))
    with pytest.raises(InputError, match=r"exclude= apply to the PET"):
        plan_targets(ct, s, exclude=[RTStructSource(kind="rtstruct", path="x", roi="B")])


def test_contour_volume_follows_the_slab_rule(ct, tmp_path):
    r, c = 10.0, (0.3, -10.2, 0.0)
    ts = plan_targets(ct, spec(sphere("L1", list(c), 2 * r)),
                      margins=MarginSpec(ctv_margin_mm=0, ptv_margin_mm=0), body="none")
    rep = write_structures(ts, ct, tmp_path / "RS.dcm", report=tmp_path / "r.json")
    assert isinstance(rep, StructuresReport) and rep.rtstruct == str(tmp_path / "RS.dcm")
    z = ct.grid.slice_positions_mm + ct.grid.origin_mm[2]
    inside = np.abs(z - c[2]) < r
    slab = float(np.sum(math.pi * (r**2 - (z[inside] - c[2]) ** 2)) * SPACING[0] / 1000.0)
    gtv = next(s for s in rep.structures if s.name == "GTV1_Bone")
    assert gtv.contour_volume_cc == pytest.approx(slab, rel=0.01)  # polygons vs circles
    assert gtv.volume_cc == pytest.approx(sphere_cc(r), rel=0.01)
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk == rep.model_dump(mode="json", exclude={"pet"})
    assert StructuresReport.model_validate(on_disk) == rep


def test_outputs_checked_first_and_written_both_or_neither(ct, ct_dir, tmp_path):
    s = spec(sphere("L1", [0.3, -10.2, 1.1], 10.0))
    with pytest.raises(OutputError, match="is the RTSTRUCT output"):
        check_structure_outputs(tmp_path / "a.dcm", tmp_path / "a.dcm")
    with pytest.raises(OutputError, match="never overwrites its inputs"):
        check_structure_outputs(ct_dir / "RS.dcm", inputs=[ct_dir])
    ts = plan_targets(ct, s, body="none")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_structures(ts, ct, tmp_path / "RS.dcm", report=blocker / "r.json")
    assert not (tmp_path / "RS.dcm").exists()  # the RTSTRUCT was taken back
    # an existing RTSTRUCT replaced with overwrite=True is restored when the report fails
    (tmp_path / "RS.dcm").write_bytes(b"old")
    with pytest.raises(OutputError):
        write_structures(ts, ct, tmp_path / "RS.dcm", report=blocker / "r.json",
                         overwrite=True)
    assert (tmp_path / "RS.dcm").read_bytes() == b"old"


def test_cli_is_the_library(ct, ct_dir, tmp_path, capsys):
    doc = {"lesions": [sphere("L1", [0.3, -10.2, 1.1], 10.0, "pelvic_node"),
                       sphere("L2", [-20.1, 5.3, -8.4], 6.0)]}
    f = tmp_path / "lesions.json"
    f.write_text(json.dumps(doc))
    assert main(["structures", "--ct", str(ct_dir), "--lesions", str(f), "--ctv-margin-mm",
                 "2", "-o", str(tmp_path / "RS.dcm"), "--report", str(tmp_path / "r.json"),
                 "-q"]) == 0
    capsys.readouterr()
    cli = json.loads((tmp_path / "r.json").read_text())
    ts = plan_targets(ct, LesionsFile.model_validate(doc),
                      margins=MarginSpec(ctv_margin_mm=2))
    lib = write_structures(ts, ct, tmp_path / "RS2.dcm").model_dump(mode="json",
                                                                    exclude={"pet"})
    lib["rtstruct"] = cli["rtstruct"]
    assert cli == lib
    # an error of the library reaches the user naming the option
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lesions": [sphere("L1", [0.2, SKIN_Y_MM + 2, 0.4], 16.0)]}))
    assert main(["structures", "--ct", str(ct_dir), "--lesions", str(bad), "-o",
                 str(tmp_path / "RS3.dcm"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--body none" in err and "body='none'" not in err and "--body RS.dcm:ROI" in err
