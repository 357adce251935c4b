"""``rtplan lesions`` end to end on a synthetic BQML series written with pydicom.

Truth by construction: 70 kg, 368.08 MBq F-18 injected one hour before the scan, so
3600 Bq/ml is SUVbw 1.00 (hand calculation 368.08e6 * 2^(-3600/6586.2) / 70000 =
3600.0 Bq/ml); a 5 x 5 x 5 cube of 4 mm voxels at 28800 Bq/ml is SUV 8.00 and 8.0 cc.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtplan.cli.main import main


def write_series(folder, *, weight=70.0):
    folder.mkdir()
    series, n = generate_uid(), 16
    vol = np.full((n, 16, 16), 3600, np.uint16)
    vol[4:9, 4:9, 4:9] = 28800  # lesion L1: SUV 8
    vol[10:13, 10:13, 10:13] = 14400  # an unlisted hot spot: SUV 4 (a candidate)
    for k in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "PT", series, "1.2.3"
        ds.Units, ds.DecayCorrection = "BQML", "START"
        ds.CorrectedImage = ["NORM", "ATTN", "SCAT", "DECY", "RAN"]
        ds.SeriesDate = ds.AcquisitionDate = "20250101"
        ds.SeriesTime = ds.AcquisitionTime = "110000"
        if weight is not None:
            ds.PatientWeight = weight
        rp = Dataset()
        rp.RadiopharmaceuticalStartDateTime = "20250101100000"
        rp.RadionuclideTotalDose = 368.08e6
        rp.RadionuclideHalfLife = 6586.2
        ds.RadiopharmaceuticalInformationSequence = [rp]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, 4.0 * k]
        ds.PixelSpacing, ds.SliceThickness = [4.0, 4.0], 4.0
        ds.Rows = ds.Columns = 16
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1.0, 0.0
        ds.PixelData = vol[k].tobytes()
        ds.save_as(folder / f"slice{n - k:03d}.dcm", enforce_file_format=True)


def write_lesions(path):
    path.write_text(json.dumps({"lesions": [
        {"id": "L1", "site": "pelvic_node",
         "source": {"kind": "pet_seed", "point_mm": [26.0, 22.0, 24.0],
                    "method": "percent_max", "level": 0.5, "max_radius_mm": 25}},
        {"id": "L2", "site": "bone",
         "source": {"kind": "sphere", "center_mm": [0, 0, 0], "diameter_mm": 10}},
    ], "margins": {"ctv_margin_mm": 3}}))


def test_lesions_json(tmp_path, capsys):
    write_series(tmp_path / "pet")
    write_lesions(tmp_path / "lesions.json")
    code = main(["lesions", "--pet", str(tmp_path / "pet"), "--lesions",
                 str(tmp_path / "lesions.json"), "--candidates", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (l1,) = out["lesions"]
    assert l1["id"] == "L1" and l1["mitnm"] == "miN1a"
    assert l1["measures"]["suv_max"] == pytest.approx(8.0, rel=1e-5)  # SUV
    assert l1["measures"]["suv_mean"] == pytest.approx(8.0, rel=1e-5)
    assert l1["measures"]["volume_cc"] == pytest.approx(8.0)  # 125 x 64 mm^3
    assert l1["measures"]["suv_peak"] == pytest.approx(8.0, rel=1e-5)  # 20 mm cube holds 1 ml
    assert out["not_on_pet"] == ["L2"]
    assert out["mitnm"] == {"L1": "miN1a", "L2": "miM1b"}
    assert out["oligometastatic"]["oligometastatic"] is True
    (cand,) = out["candidates"]
    assert cand["status"] == "suggestion"
    assert cand["suv_max"] == pytest.approx(4.0, rel=1e-5)
    assert all(40.0 <= v <= 48.0 for v in cand["peak_point_mm"])  # inside the hot cube
    assert cand["centroid_mm"] == pytest.approx([44.0, 44.0, 44.0])  # cube centre (mm)
    # L1's own hot region is reported as delineated, not suggested
    (region,) = out["delineated_regions"]
    assert region["delineated_as"] == ["L1"] and region["n_voxels"] == 125
    assert "SeriesDate/SeriesTime" in out["suv"]["rules"][0]


def test_lesions_table_and_missing_weight(tmp_path, capsys):
    write_series(tmp_path / "pet", weight=None)
    write_lesions(tmp_path / "lesions.json")
    args = ["lesions", "--pet", str(tmp_path / "pet"), "--lesions",
            str(tmp_path / "lesions.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "PatientWeight (0010,1030) is missing" in err and "--weight-kg" in err
    assert main([*args, "--weight-kg", "70"]) == 0
    out = capsys.readouterr().out
    assert "SUVbw (g/ml)" in out
    line = next(row for row in out.splitlines() if row.startswith("L1"))
    assert "miN1a" in line and "8.00" in line
    assert "metastases: 2" in out


def test_lesions_file_errors(tmp_path, capsys):
    write_series(tmp_path / "pet")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "pet_seed", "point_mm": [0, 0, 0], "max_radius_mm": -5}}]}))
    assert main(["lesions", "--pet", str(tmp_path / "pet"), "--lesions", str(bad)]) == 2
    assert "max_radius_mm" in capsys.readouterr().err
    assert main(["lesions", "--pet", str(tmp_path / "pet"), "--lesions",
                 str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_lesions_preset(tmp_path, capsys):
    write_series(tmp_path / "pet")
    (tmp_path / "lesions.json").write_text(json.dumps({"lesions": [
        {"id": "L1", "site": "pelvic_node",
         "source": {"kind": "pet_seed", "point_mm": [26.0, 22.0, 24.0]}},
        {"id": "L3", "site": "bone",
         "source": {"kind": "pet_seed", "point_mm": [44.0, 44.0, 44.0],
                    "method": "absolute", "level": 2.0}},
    ]}))
    args = ["lesions", "--pet", str(tmp_path / "pet"), "--lesions",
            str(tmp_path / "lesions.json")]
    assert main([*args, "--preset", "specific", "--json"]) == 0
    l1, l3 = json.loads(capsys.readouterr().out)["lesions"]
    # specific = 45 % of SUVmax (Zamboglou 2019: 40-50 %); SUVmax 8 -> threshold 3.6
    assert (l1["preset"], l1["method"], l1["level"]) == ("specific", "percent_max", 0.45)
    assert l1["threshold_suv"] == pytest.approx(0.45 * 8.0, rel=1e-5)
    assert (l3["preset"], l3["method"], l3["threshold_suv"]) == (None, "absolute", 2.0)
    assert main([*args, "--preset", "sensitive"]) == 0
    out = capsys.readouterr().out
    assert "sensitive: percent_max 0.2 (>= 1.60)" in out
    assert "--preset sensitive applied to 1 of 2 pet_seed lesions" in out
    with pytest.raises(SystemExit) as exc:  # argparse: not a choice
        main([*args, "--preset", "wide"])
    assert exc.value.code == 2
    assert "invalid choice: 'wide'" in capsys.readouterr().err


def test_lesions_preset_conflict_and_help(tmp_path, capsys):
    write_series(tmp_path / "pet")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "pet_seed", "point_mm": [26.0, 22.0, 24.0], "preset": "sensitive",
        "level": 0.3}}]}))
    assert main(["lesions", "--pet", str(tmp_path / "pet"), "--lesions", str(bad)]) == 2
    assert "preset 'sensitive' means method percent_max, level 0.2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["lesions", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for fragment in ("Zamboglou et al., Radiother Oncol", "2019;141:208-213",
                     "PubMed 16876272", "not a published cut-off", "--preset"):
        assert fragment in text
