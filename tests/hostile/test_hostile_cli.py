"""Issue 11, the command line and the JSON readers: every hostile input gives a result or
one line on stderr with exit status 2 (never a traceback), inputs are never written, and
outputs are all or nothing.

References: the exit-status contract of ``rtplan.cli.main`` (0 ok, 2 bad input), the
SHA-256 of every input before and after a run, and the files present in the output
folder (none after a refusal).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.examples import get_path

from rtplan.cli.main import main
from rtplan.dose import DoseGrid, write_rtdose
from rtplan.errors import InputError
from rtplan.imaging import Grid, write_ct_series

# ----------------------------------------------------------------------------- helpers
FRAME = "1.2.826.0.1.3680043.8.498.2010020400001.2"  # frame of pydicom's rt_ss example
LESIONS = {"lesions": [{"id": "L1", "site": "bone", "source": {
    "kind": "sphere", "center_mm": [0, 0, 0], "diameter_mm": 10}}]}
IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
PLAN = {"name": "p", "fractions": 5, "levels": [{"name": "lesion", "total_dose_gy": 35}]}
BIG_INT = "9" * 5000


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors (one line, status 2)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv: str, match: str | None = None) -> str:
    """Run ``argv``; assert exit 2, exactly one line on stderr, no traceback."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    if match is not None:
        assert match in err, err
    return err


def digest(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file (folders: every file inside)."""
    out = {}
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def ct(tmp_path) -> Path:
    """A small CT: a water box (0 HU) in air, 2 x 2 x 3 mm voxels."""
    g = Grid((12, 24, 24), origin_mm=(-23, -23, -16.5), spacing_mm=(3, 2, 2))
    hu = np.full(g.shape, -1000.0)
    hu[:, 3:21, 3:21] = 0.0
    folder = tmp_path / "CT"
    write_ct_series(folder, hu, g)
    return folder


@pytest.fixture
def lesions_file(tmp_path) -> Path:
    return write_json(tmp_path / "lesions.json", LESIONS)


@pytest.fixture
def dose_files(tmp_path) -> dict[str, Path]:
    """RTDOSE (2 Gy everywhere, 10 mm voxels over pydicom's rt_ss 'patient' ROI) in the
    RTSTRUCT's frame, a second course in the same frame, and the RTSTRUCT."""
    g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    rd = write_rtdose(tmp_path / "RD.dcm", DoseGrid(np.full(g.shape, 2.0), g,
                                                     frame_of_reference_uid=FRAME),
                      description="test", dose_type="PHYSICAL")
    rd2 = write_rtdose(tmp_path / "RD2.dcm", DoseGrid(np.full(g.shape, 3.0), g,
                                                       frame_of_reference_uid=FRAME),
                       description="test 2", dose_type="PHYSICAL")
    rs = tmp_path / "RS.dcm"
    rs.write_bytes(Path(get_path("rt_ss")).read_bytes())
    return {"rd": rd, "rd2": rd2, "rs": rs}


# ========================================================== 1. the six JSON readers
def _deep(path: Path) -> Path:
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    return path


def _latin1(path: Path, doc: dict) -> Path:
    # a valid document with a Latin-1 'é' in a free-text field
    text = json.dumps(doc, ensure_ascii=False)
    path.write_bytes(text[:-1].encode("latin-1") + ', "x": "Ren\xe9"}'.encode("latin-1"))
    return path


def _big_int(path: Path, doc_text: str) -> Path:
    path.write_text(doc_text)
    return path


HOSTILE = {
    "deep": (lambda p, doc, big: _deep(p), "nested 200000 levels deep"),
    "latin1": (lambda p, doc, big: _latin1(p, doc), "is not UTF-8 text"),
    "huge-int": (lambda p, doc, big: _big_int(p, big), "integer of 5000 digits"),
}


def _lesions_doc_big() -> str:
    return ('{"lesions": [{"id": "L1", "site": "bone", "source": {"kind": "sphere", '
            f'"center_mm": [0, 0, 0], "diameter_mm": {BIG_INT}}}}}]}}')


def _matrix_doc(src: str = "PET", dst: str = "CT") -> dict:
    return {"matrix": IDENTITY, "from_frame": src, "to_frame": dst}


def _matrix_big() -> str:
    return ('{"matrix": [[' + BIG_INT + ', 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], '
            '[0, 0, 0, 1]], "from_frame": "PET", "to_frame": "CT"}')


def _plan_big() -> str:
    return ('{"name": "p", "fractions": ' + BIG_INT
            + ', "levels": [{"name": "lesion", "total_dose_gy": 35}]}')


def _truth_doc() -> dict:
    return {"fwhm_mm": 6}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_lesions_file_reader_refuses(tmp_path, kind):
    from rtplan.lesions import load_lesions_file

    make, match = HOSTILE[kind]
    p = make(tmp_path / "lesions.json", LESIONS, _lesions_doc_big())
    with pytest.raises(InputError, match=match):
        load_lesions_file(p)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_matrix_file_reader_refuses(tmp_path, kind):
    from rtplan.imaging import load_matrix

    make, match = HOSTILE[kind]
    p = make(tmp_path / "m.json", _matrix_doc(), _matrix_big())
    with pytest.raises(InputError, match=match):
        load_matrix(p)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_demo_truth_reader_refuses(tmp_path, kind, lesions_file):
    from rtplan.demo import measure_demo_pet

    make, match = HOSTILE[kind]
    truth = make(tmp_path / "truth.json", _truth_doc(), '{"fwhm_mm": ' + BIG_INT + "}")
    with pytest.raises(InputError, match=match):
        measure_demo_pet(tmp_path / "no-pet", lesions_file, truth)


def test_demo_truth_reader_validates(tmp_path, lesions_file):
    from rtplan.demo import measure_demo_pet

    truth = write_json(tmp_path / "truth.json", {"fwhm_mm": True})
    with pytest.raises(InputError, match="PET truth file"):
        measure_demo_pet(tmp_path / "no-pet", lesions_file, truth)


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("command", ["lesions", "structures"])
def test_lesions_file_cli(capsys, tmp_path, ct, kind, command):
    make, match = HOSTILE[kind]
    p = make(tmp_path / "hostile.json", LESIONS, _lesions_doc_big())
    before = digest(p, ct)
    if command == "lesions":
        refused(capsys, "lesions", "--pet", ct, "--lesions", p, match=match)
    else:
        out = tmp_path / "RS.dcm"
        refused(capsys, "structures", "--ct", ct, "--lesions", p, "-o", out, "-q",
                match=match)
        assert not out.exists()
    assert digest(p, ct) == before


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_matrix_file_cli(capsys, tmp_path, ct, lesions_file, kind):
    make, match = HOSTILE[kind]
    p = make(tmp_path / "m.json", _matrix_doc(), _matrix_big())
    refused(capsys, "lesions", "--pet", ct, "--lesions", lesions_file,
            "--pet-to-ct-matrix", p, match=match)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_compare_plan_file_cli(capsys, tmp_path, kind):
    make, match = HOSTILE[kind]
    p = make(tmp_path / "plan.json", PLAN, _plan_big())
    refused(capsys, "compare", p, match=match)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_dose_sum_registration_json_cli(capsys, tmp_path, dose_files, kind):
    make, match = HOSTILE[kind]
    p = make(tmp_path / "reg.json", _matrix_doc("course", "common"), _matrix_big())
    out = tmp_path / "sum.dcm"
    refused(capsys, "dose", "sum", dose_files["rd"], dose_files["rd2"], "--fractions", "5",
            "--fractions", "5", "--alpha-beta", "3", "--registration", f"1={p}", "-o", out,
            match=match)
    assert not out.exists()


def test_utf16_with_bom_reads_like_utf8(tmp_path, capsys):
    """UTF-16 with a BOM is a valid encoding: the same result as the UTF-8 file."""
    from rtplan.imaging import load_matrix
    from rtplan.lesions import load_lesions_file

    for name, doc in (("lesions", LESIONS), ("plan", PLAN), ("m", _matrix_doc())):
        (tmp_path / f"{name}8.json").write_text(json.dumps(doc), encoding="utf-8")
        (tmp_path / f"{name}16.json").write_text(json.dumps(doc), encoding="utf-16")
    assert (load_lesions_file(tmp_path / "lesions16.json")
            == load_lesions_file(tmp_path / "lesions8.json"))
    assert np.array_equal(load_matrix(tmp_path / "m16.json").matrix,
                          load_matrix(tmp_path / "m8.json").matrix)
    code16, out16, _ = run(capsys, "compare", tmp_path / "plan16.json", "--json")
    code8, out8, _ = run(capsys, "compare", tmp_path / "plan8.json", "--json")
    assert code16 == code8 == 0
    assert json.loads(out16) == json.loads(out8)


# ============================================== 2. true/false where a number goes
def _sphere(**source) -> dict:
    return {"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [0, 0, 0], "diameter_mm": 10, **source}}]}


BOOLS = {
    "diameter": _sphere(diameter_mm=True),
    "centre": _sphere(center_mm=[0, False, 0]),
    "ctv-margin": {**LESIONS, "margins": {"ctv_margin_mm": True}},
    "ptv-margin-six": {**LESIONS, "margins": {"ptv_margin_mm": [1, 2, 3, 3, 2, True]}},
    "eni-margin": {**LESIONS, "eni": {"margin_mm": False}},
    "eni-dose": {**LESIONS, "eni": {"boost_dose_gy": True}},
    "eni-sib-number": {**LESIONS, "eni": {"sib": 1}},
    "seed-point": {"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "pet_seed", "point_mm": [True, 0, 0]}}]},
    "seed-level": {"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "pet_seed", "point_mm": [0, 0, 0], "level": True}}]},
    "mask-label": {"lesions": [{"id": "L1", "site": "bone", "source": {
        "kind": "mask", "path": "m.nii.gz", "label": True}}]},
}


@pytest.mark.parametrize("case", list(BOOLS))
def test_bool_as_number_refused_library(tmp_path, case):
    from rtplan.lesions import load_lesions_file

    p = write_json(tmp_path / "lesions.json", BOOLS[case])
    with pytest.raises(InputError) as info:
        load_lesions_file(p)
    msg = str(info.value)
    assert "\n" not in msg
    assert "true/false is not a number" in msg or "valid boolean" in msg


def test_bool_diameter_refused_cli(capsys, tmp_path, ct):
    # the reported case: "diameter_mm": true became a 1 mm (0.0005 cc) GTV
    p = write_json(tmp_path / "lesions.json", BOOLS["diameter"])
    out = tmp_path / "RS.dcm"
    err = refused(capsys, "structures", "--ct", ct, "--lesions", p, "-o", out, "-q",
                  match="diameter_mm")
    assert "true/false is not a number" in err
    assert not out.exists()
    refused(capsys, "lesions", "--pet", ct, "--lesions", p, match="true/false")


def test_numbers_still_accepted(tmp_path):
    from rtplan.lesions import load_lesions_file

    p = write_json(tmp_path / "lesions.json", {**_sphere(diameter_mm=12),
                                               "margins": {"ctv_margin_mm": 2}})
    spec = load_lesions_file(p)
    assert spec.lesions[0].source.diameter_mm == 12.0
    assert spec.margins.ctv_margin_mm == 2.0


def test_bool_in_matrix_refused(tmp_path):
    from rtplan.imaging import load_matrix

    m = [[True, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    p = write_json(tmp_path / "m.json", {"matrix": m, "from_frame": "PET", "to_frame": "CT"})
    with pytest.raises(InputError, match="true/false is not a number"):
        load_matrix(p)


@pytest.mark.parametrize("where", ["fractions", "total_dose_gy"])
def test_bool_in_plan_refused(capsys, tmp_path, where):
    doc = json.loads(json.dumps(PLAN))
    if where == "fractions":
        doc["fractions"] = True
    else:
        doc["levels"][0]["total_dose_gy"] = True
    p = write_json(tmp_path / "plan.json", doc)
    refused(capsys, "compare", p, match=where)


# ============================================================ 3. lesions --candidates
@pytest.mark.parametrize("option", ["--candidates", "--fwhm-mm", "--weight-kg",
                                    "--injected-dose-mbq"])
@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "abc"])
def test_lesions_number_options(capsys, tmp_path, lesions_file, option, value):
    refused(capsys, "lesions", "--pet", tmp_path, "--lesions", lesions_file,
            f"{option}={value}", match=option)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_structures_inside_skin_refused(capsys, tmp_path, ct, lesions_file, value):
    refused(capsys, "structures", "--ct", ct, "--lesions", lesions_file, "-o",
            tmp_path / "RS.dcm", f"--inside-skin-mm={value}", match="--inside-skin-mm")


# ======================================================================= 4. dose dvh
def _duplicate_name(rs: Path, out: Path) -> Path:
    """pydicom's rt_ss with a copy of 'patient' (ROI 1) as ROI 9, also named 'patient'
    but shifted 20 mm to the left: two ROIs of one name, different DVHs."""
    ds = pydicom.dcmread(rs, force=True)
    roi = copy.deepcopy(ds.StructureSetROISequence[0])
    roi.ROINumber = 9
    ds.StructureSetROISequence.append(roi)
    contour = copy.deepcopy(ds.ROIContourSequence[0])
    contour.ReferencedROINumber = 9
    for item in contour.ContourSequence:
        pts = np.asarray(item.ContourData, dtype=float).reshape(-1, 3)
        pts[:, 0] += 20
        item.ContourData = [f"{v:.3f}" for v in pts.ravel()]
    ds.ROIContourSequence.append(contour)
    obs = copy.deepcopy(ds.RTROIObservationsSequence[0])
    obs.ObservationNumber = 9
    obs.ReferencedROINumber = 9
    ds.RTROIObservationsSequence.append(obs)
    ds.save_as(out)
    return out


def test_dvh_duplicate_roi_names_refused_library(dose_files, tmp_path):
    from rtplan.dose import read_rtdose, structure_dvhs

    rs = _duplicate_name(dose_files["rs"], tmp_path / "RS_dup.dcm")
    dose = read_rtdose(dose_files["rd"], allow_effective=True)
    for names in (None, ["patient"]):
        with pytest.raises(InputError, match=r"ROIs 1, 9 \(ROINumber\).*'patient'"):
            structure_dvhs(dose, rs, names, supersampling=1)
    # the unambiguous original still gives its DVH (reference: 2 Gy everywhere)
    h = structure_dvhs(dose, dose_files["rs"], ["patient"], supersampling=1)["patient"]
    assert h.mean_gy == pytest.approx(2.0, abs=1e-5)  # Gy, 16-bit RTDOSE scaling


def test_dvh_duplicate_roi_names_refused_cli(capsys, dose_files, tmp_path):
    rs = _duplicate_name(dose_files["rs"], tmp_path / "RS_dup.dcm")
    before = digest(rs, dose_files["rd"])
    refused(capsys, "dose", "dvh", dose_files["rd"], "--structures", rs, match="ROIs 1, 9")
    refused(capsys, "dose", "dvh", dose_files["rd"], "--structures", rs, "--roi", "patient",
            match="ROIs 1, 9")
    assert digest(rs, dose_files["rd"]) == before


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the dose is read or a DVH built (the checks must come first)."""
    import rtplan.dose

    def boom(*_a, **_k):
        raise AssertionError("computed before the options were checked")

    monkeypatch.setattr(rtplan.dose, "read_rtdose", boom)
    monkeypatch.setattr(rtplan.dose, "structure_dvhs", boom)


@pytest.mark.parametrize("name", ["x.xyz", "dvh.jpg", "dvh.dcm.bak"])
def test_dvh_plot_unknown_format_refused_before_computing(capsys, dose_files, tmp_path,
                                                          no_compute, name):
    refused(capsys, "dose", "dvh", dose_files["rd"], "--structures", dose_files["rs"],
            "--plot", tmp_path / name, match="unknown picture format")
    assert not (tmp_path / name).exists()


def test_dvh_plot_missing_matplotlib_refused_before_computing(capsys, dose_files, tmp_path,
                                                              no_compute, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    refused(capsys, "dose", "dvh", dose_files["rd"], "--structures", dose_files["rs"],
            "--plot", tmp_path / "dvh.png", match="pip install")


@pytest.mark.parametrize("width", ["1e-9", "0", "-1", "nan", "inf"])
@pytest.mark.parametrize("curve", ["--curve", "--differential"])
def test_dvh_bin_width_refused_before_building_dvhs(capsys, dose_files, monkeypatch,
                                                    width, curve):
    import rtplan.dose

    def boom(*_a, **_k):
        raise AssertionError("DVHs built before --bin-width-gy was checked")

    monkeypatch.setattr(rtplan.dose, "structure_dvhs", boom)
    t0 = time.perf_counter()
    refused(capsys, "dose", "dvh", dose_files["rd"], "--structures", dose_files["rs"],
            "--json", curve, f"--bin-width-gy={width}", match="--bin-width-gy")
    # (no allocation: it returns at once; the time is printed, not asserted)
    print(f"refused in {time.perf_counter() - t0:.3f} s")


def test_dvh_reasonable_bin_width_still_works(capsys, dose_files):
    code, out, _ = run(capsys, "dose", "dvh", dose_files["rd"], "--structures",
                       dose_files["rs"], "--roi", "patient", "--json", "--curve",
                       "--bin-width-gy", "0.5", "--supersampling", "1")
    assert code == 0
    rec = json.loads(out)["structures"][0]
    # reference: 2 Gy everywhere -> the cumulative DVH is the full volume up to 2 Gy
    assert rec["mean_gy"] == pytest.approx(2.0, abs=1e-5)  # Gy, 16-bit RTDOSE scaling
    assert rec["cumulative"]["dose_gy"][:5] == [0.0, 0.5, 1.0, 1.5, 2.0]


# ====================================================== 5. outputs: never an input
def _output_cases(tmp_path: Path, ct: Path, lesions: Path, files: dict[str, Path]):
    """(command argv, the input the output option points at) for every output option."""
    rd, rd2, rs = files["rd"], files["rd2"], files["rs"]
    return {
        "dose eqd2 -o": (["dose", "eqd2", rd, "--fractions", "5", "--alpha-beta", "3",
                          "-o", rd], rd),
        "dose eqd2 -o=structures": (["dose", "eqd2", rd, "--fractions", "5",
                                     "--alpha-beta", "3", "--structures", rs,
                                     "--alpha-beta-roi", "patient=3", "-o", rs], rs),
        "dose sum -o": (["dose", "sum", rd, rd2, "--fractions", "5", "--fractions", "5",
                         "--alpha-beta", "3", "-o", rd2], rd2),
        "dose dvh --plot": (["dose", "dvh", rd, "--structures", rs, "--plot",
                             tmp_path / "RS.dcm"], rs),
        "structures -o": (["structures", "--ct", ct, "--lesions", lesions, "-o", lesions,
                           "-q"], lesions),
        "structures -o in CT": (["structures", "--ct", ct, "--lesions", lesions, "-o",
                                 ct / "RS.dcm", "-q"], ct),
        "structures --report": (["structures", "--ct", ct, "--lesions", lesions, "-o",
                                 tmp_path / "RS_new.dcm", "--report", lesions, "-q"],
                                lesions),
        "structures --qa": (["structures", "--ct", ct, "--lesions", lesions, "-o",
                             tmp_path / "RS_new.dcm", "--qa", ct, "-q"], ct),
    }


OUTPUT_CASES = ["dose eqd2 -o", "dose eqd2 -o=structures", "dose sum -o", "dose dvh --plot",
                "structures -o", "structures -o in CT", "structures --report",
                "structures --qa"]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_every_output_option_refuses_an_input(capsys, tmp_path, ct, lesions_file, dose_files,
                                              case, force):
    if case == "structures --qa":
        pytest.importorskip("matplotlib")
    argv, target = _output_cases(tmp_path, ct, lesions_file, dose_files)[case]
    inputs = [ct, lesions_file, *dose_files.values()]
    before = digest(*inputs)
    names_before = sorted(p.name for p in tmp_path.rglob("*"))
    err = refused(capsys, *argv, *(["--force"] if force else []), match="is also an input")
    assert f"'{target}'" in err  # the message names the input
    assert digest(*inputs) == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == names_before  # nothing written


def test_output_table_lists_every_output_option():
    """Every option of every command whose help says it writes a file or folder is in
    the table above (a new output option must be added there)."""
    from rtplan.cli.main import build_parser

    parser = build_parser()
    writes = set()

    def walk(p, prefix):
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())
            elif any(o in ("-o", "--output", "--report", "--qa", "--plot", "--plots",
                           "--markdown", "--dose-plot") for o in action.option_strings):
                writes.add(f"{prefix} {action.option_strings[0]}")

    walk(parser, "")
    covered = {" ".join(c.split()[:3 if c.startswith("dose") else 2]).split("=")[0]
               for c in OUTPUT_CASES}
    # outcomes and cohort (another engineer's commands): tests/hostile/
    # test_hostile_outputs.py and their own tests; demo -o has no input (its refusals:
    # test_demo_* below)
    done_elsewhere = {w for w in writes if w.split()[0] in ("outcomes", "cohort")}
    assert writes - covered - done_elsewhere - {"demo -o"} == set()
    assert covered <= writes  # the table names real options


def test_structures_unwritable_report_leaves_no_rtstruct(capsys, tmp_path, ct, lesions_file):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    out = tmp_path / "RS.dcm"
    refused(capsys, "structures", "--ct", ct, "--lesions", lesions_file, "-o", out,
            "--report", a_file / "report.json", "-q", match="cannot be created")
    assert not out.exists()


@pytest.mark.parametrize("command", ["eqd2", "sum"])
def test_dose_output_checked_before_computing(capsys, tmp_path, dose_files, no_compute,
                                              command):
    exists = tmp_path / "exists.dcm"
    exists.write_bytes(b"old")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    courses = ([dose_files["rd"]] if command == "eqd2"
               else [dose_files["rd"], dose_files["rd2"], "--fractions", "5"])
    for out, match in ((exists, "already exists"), (a_file / "x.dcm", "cannot be created")):
        refused(capsys, "dose", command, *courses, "--fractions", "5", "--alpha-beta", "3",
                "-o", out, match=match)
    assert exists.read_bytes() == b"old"


# ============================================================================ demo
def test_demo_onto_a_file_is_one_line(capsys, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("keep")
    refused(capsys, "demo", "-o", f, "-q", match="is a file, not a folder")
    refused(capsys, "demo", "-o", f / "sub", "-q", match="is a file")
    assert f.read_text() == "keep"


@pytest.mark.parametrize("exists", [False, True], ids=["new-folder", "empty-folder"])
def test_demo_disk_full_leaves_nothing(capsys, tmp_path, monkeypatch, exists):
    import rtplan.structures.rtstruct as rtstruct

    def full(*_a, **_k):  # the CT series is written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rtstruct, "write_rtstruct", full)
    out = tmp_path / "parent" / "demo"
    if exists:
        out.mkdir(parents=True)
    refused(capsys, "demo", "-o", out, "-q", match="disk full")
    if exists:
        assert list(out.iterdir()) == []
    else:
        assert not (tmp_path / "parent").exists()


def test_demo_force_keeps_unrelated_files_on_failure(capsys, tmp_path, monkeypatch):
    import rtplan.structures.rtstruct as rtstruct

    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(rtstruct, "write_rtstruct",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EIO, "I/O")))
    refused(capsys, "demo", "-o", out, "-q", "--force", match="nothing was left behind")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# ============================================ 6. a GTV smaller than a voxel
@pytest.mark.parametrize("body", ["auto", "none"])
def test_gtv_smaller_than_a_voxel_is_not_called_outside_the_body(ct, body):
    from rtplan.imaging import load_ct_series
    from rtplan.lesions import LesionsFile
    from rtplan.structures import plan_targets

    spec = LesionsFile.model_validate(_sphere(diameter_mm=0.5))
    with pytest.raises(InputError) as info:
        plan_targets(load_ct_series(ct), spec, body=body)
    msg = str(info.value)
    assert "smaller than the CT grid resolves" in msg and "0.5 mm" in msg
    assert "outside" not in msg


def test_gtv_outside_the_body_still_says_so(ct):
    from rtplan.imaging import load_ct_series
    from rtplan.lesions import LesionsFile
    from rtplan.structures import plan_targets

    # centre at x = -21 mm: in the air around the water box (which spans -17..+17 mm)
    spec = LesionsFile.model_validate(_sphere(center_mm=[-21, 0, 0], diameter_mm=3))
    with pytest.raises(InputError, match="outside the body"):
        plan_targets(load_ct_series(ct), spec, body="auto")


# ============================================ 7. radiobiology: huge and tiny numbers
@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["equivalent", "--target-eqd2", "1e308", "--dose-per-fraction", "1e-300",
          "--alpha-beta", "3"], "target dose"),
        (["equivalent", "--target-eqd2", "60", "--dose-per-fraction", "1e-300",
          "--alpha-beta", "3"], "fractions"),
        (["equivalent", "--target-eqd2", "60", "--fractions", "9" * 30, "--alpha-beta", "3"],
         "fractions"),
        (["eqd2", "27/3", "--alpha-beta", "1e-320"], "alpha/beta"),
        (["eqd2", "27/3", "--alpha-beta", "1e308"], "alpha/beta"),
        (["eqd2", f"{BIG_INT}/3", "--alpha-beta", "3"], "too long"),
        (["eqd2", f"27/{BIG_INT}", "--alpha-beta", "3"], "too long"),
        (["eqd2", "1e308/1", "--alpha-beta", "3"], "schedule"),
        (["compare", "27/3", "--alpha-beta", "nan"], "alpha/beta"),
        (["compare", "27/3", "--alpha-beta=-inf"], "alpha/beta"),
    ],
    ids=["eqd2-1e308-per-1e-300", "per-fraction-1e-300", "fractions-30-digits",
         "ab-denormal", "ab-1e308", "total-5000-digits", "fractions-5000-digits",
         "total-1e308", "compare-ab-nan", "compare-ab-minus-inf"],
)
def test_radiobiology_extremes(capsys, argv, match):
    refused(capsys, *argv, match=match)


# ============================================ 8. the hostile sweep, one case per line
@pytest.fixture
def zoo(tmp_path, ct, lesions_file, dose_files) -> dict[str, str]:
    """Hostile files: empty, random bytes, a folder, a FIFO, a NUL byte, a unicode name,
    matrices with NaN / 1e308 entries; and valid CT, lesions, RTDOSE, RTSTRUCT."""
    rng = np.random.default_rng(11)
    files = {
        "empty": b"", "garbage": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "nul.json": b'{"a":\x00}', "list.json": b"[1, 2, 3]", "inf.json": b"1e999",
        "nanm.txt": b"nan 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1",
        "bigm.txt": b"1e308 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1",
        "zerom.txt": b"0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1",
        "l\u00fcsi\u00f6ns_\u65e5\u672c.json": b'{"lesions": []}',
        "plan_frac.json": b'{"name": "p", "fractions": 5.5, "levels": '
                          b'[{"name": "a", "total_dose_gy": 10}]}',
        "plan_big.json": b'{"name": "p", "fractions": 1e308, "levels": '
                         b'[{"name": "a", "total_dose_gy": 10}]}',
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    paths = {k.split(".")[0]: str(tmp_path / k) for k in files}
    paths["unicode"] = str(tmp_path / "l\u00fcsi\u00f6ns_\u65e5\u672c.json")
    return {**paths, "dir": str(tmp_path / "folder"), "fifo": str(tmp_path / "fifo"),
            "ct": str(ct), "lesions": str(lesions_file), "rd": str(dose_files["rd"]),
            "rd2": str(dose_files["rd2"]), "rs": str(dose_files["rs"]),
            "out": str(tmp_path / "new_out.dcm")}


_RD = "dose eqd2 {rd} --fractions 5 --alpha-beta 3 -o {out}"
_SUM = "dose sum {rd} {rd2} --fractions 5 --fractions 5 --alpha-beta 3 -o {out}"
_DVH = "dose dvh {rd} --structures {rs}"
_LES = "lesions --pet {dir} --lesions"
_STR = "structures --ct {ct} --lesions {lesions} -o {out} -q"
SWEEP = [
    # lesions: the lesions file and the PET folder
    (f"{_LES} {{dir}}", "is a folder, not a file"),
    (f"{_LES} /dev/null", "is a device"),
    (f"{_LES} {{fifo}}", "named pipe"),
    (f"{_LES} {{empty}}", "not valid JSON"),
    (f"{_LES} {{garbage}}", "not UTF-8"),
    (f"{_LES} {{nul}}", "NUL characters"),
    (f"{_LES} {{list}}", "valid dictionary"),
    (f"{_LES} {{inf}}", "too large"),
    (f"{_LES} {{unicode}}", "at least 1 item"),
    ("lesions --pet /dev/null --lesions {lesions}", "is a device"),
    ("lesions --pet {fifo} --lesions {lesions}", "named pipe"),
    ("lesions --pet {garbage} --lesions {lesions}", "no PET image"),
    ("lesions --pet {ct} --lesions {lesions} --pet-to-ct-matrix {nanm}", "not a plausible"),
    ("lesions --pet {ct} --lesions {lesions} --pet-to-ct-matrix {bigm}", "not a plausible"),
    ("lesions --pet {ct} --lesions {lesions} --pet-to-ct-matrix {zerom}", "not rigid"),
    ("lesions --pet {ct} --lesions {lesions} --registration {garbage}",
     "not a Spatial Registration"),
    # structures
    ("structures --ct /dev/null --lesions {lesions} -o {out} -q", "not a folder"),
    ("structures --ct {fifo} --lesions {lesions} -o {out} -q", "not a folder"),
    ("structures --ct {dir} --lesions {lesions} -o {out} -q", "no CT image series"),
    ("structures --ct {ct} --lesions {lesions} -o {dir}", "already exists"),
    ("structures --ct {ct} --lesions {lesions} -o /dev/null", "already exists"),
    (f"{_STR} --ctv-margin-mm nan", "finite number"),
    (f"{_STR} --ctv-margin-mm 1e308", "less than or equal to 20"),
    (f"{_STR} --eni-margin-mm -1", "greater than or equal to 0"),
    (f"{_STR} --ptv-margin-mm 1,2,3", "six"),
    (f"{_STR} --eni-ctv atlas.nii.gz:abc", "whole number"),
    (f"{_STR} --eni-ctv {{garbage}}:x", "not an RTSTRUCT"),
    (f"{_STR} --body {{garbage}}:x", "not an RTSTRUCT"),
    (f"{_STR} --body {{rs}}:nope", "no ROI called 'nope'"),
    (f"{_STR} --inside-skin-mm 1e308", "inset_mm"),
    (f"{_STR} --report {{dir}}", "already exists"),
    (f"{_STR} --qa {{garbage}}", "not a folder"),
    # dose
    ("dose eqd2 {empty} --fractions 5 --alpha-beta 3 -o {out}", "not an RTDOSE"),
    ("dose eqd2 {garbage} --fractions 5 --alpha-beta 3 -o {out}", "not an RTDOSE"),
    ("dose eqd2 {dir} --fractions 5 --alpha-beta 3 -o {out}", "is a folder"),
    ("dose eqd2 /dev/null --fractions 5 --alpha-beta 3 -o {out}", "is a device"),
    ("dose eqd2 {fifo} --fractions 5 --alpha-beta 3 -o {out}", "named pipe"),
    ("dose eqd2 {rs} --fractions 5 --alpha-beta 3 -o {out}", "not an RTDOSE"),
    ("dose eqd2 {rd} --fractions 0 --alpha-beta 3 -o {out}", "--fractions"),
    ("dose eqd2 {rd} --fractions " + "9" * 5000 + " --alpha-beta 3 -o {out}", "--fractions"),
    ("dose eqd2 {rd} --plan {garbage} --alpha-beta 3 -o {out}", "not an RTPLAN"),
    ("dose eqd2 {rd} --fractions 5 --alpha-beta 3 -o {dir}", "already exists"),
    ("dose eqd2 {rd} --fractions 5 --alpha-beta 3 -o /dev/null", "already exists"),
    (f"{_RD} --model lql --transition-dose-gy 1e308", "at most 100000 Gy"),
    (f"{_RD} --model lql --transition-dose-gy nan", "finite number"),
    ("dose eqd2 {rd} --fractions 5 --model usc --usc-alpha 1e300 --usc-d0-gy 1 "
     "--usc-dq-gy 1 -o {out}", "alpha * D0 < 1"),
    ("dose eqd2 {rd} --fractions 5 --model usc --usc-alpha inf --usc-d0-gy 1 "
     "--usc-dq-gy 1 -o {out}", "finite number"),
    (f"{_DVH} --supersampling 100000", "supersampling"),
    (f"{_DVH} --d-percent nan", "--d-percent"),
    (f"{_DVH} --geud-a nan", "gEUD"),
    (f"{_DVH} --geud-a=-inf", "gEUD"),
    (f"{_DVH} --roi nope", "no ROI called 'nope'"),
    (f"{_DVH} --plot {{dir}}", "already exists"),
    (f"{_DVH} --plot /dev/null", "already exists"),
    ("dose dvh {rd} --structures {garbage}", "not an RTSTRUCT"),
    ("dose dvh {rd} --structures {dir}", "is a folder"),
    (f"{_SUM} --recovery nan", "--recovery"),
    (f"{_SUM} --recovery 1", "--recovery"),
    (f"{_SUM} --registration 1={{garbage}}", "not UTF-8"),
    (f"{_SUM} --registration 1={{nanm}}", "not a plausible"),
    (f"{_SUM} --registration 1={{bigm}}", "not a plausible"),
    (f"{_SUM} --registration 1={{empty}}", "holds 0 numbers"),
    (f"{_SUM} --registration 1={{rs}}", "not a Spatial Registration"),
    (f"{_SUM} --registration 1={{dir}}", "is a folder, not a file"),
    (f"{_SUM} --registration 1={{fifo}}", "named pipe"),
    (f"{_SUM} --registration 1=/dev/null", "is a device"),
    (f"{_SUM} --registration 1=missing.json", "does not exist"),
    (f"{_SUM} --registration {'9' * 5000}=x", "digits"),
    ("dose sum {rd} {rd2} --fractions 5 --alpha-beta 3 -o {out}", "one per course"),
    # radiobiology
    ("eqd2 nan/3 --alpha-beta 3", "cannot parse"),
    ("eqd2 inf/3 --alpha-beta 3", "cannot parse"),
    ("eqd2 3xnan --alpha-beta 3", "cannot parse"),
    ("eqd2 27/3 --alpha-beta 3 --model lql --transition-dose-gy -1", "greater than 0"),
    ("eqd2 27/3 --alpha-beta 3 --model usc --usc-alpha 0.33 --usc-d0-gy 1e5 --usc-dq-gy 1e5",
     "alpha * D0 < 1"),
    ("equivalent --target-eqd2 nan --fractions 5 --alpha-beta 3", "target dose"),
    ("equivalent --target-eqd2 60 --dose-per-fraction inf --alpha-beta 3",
     "dose per fraction"),
    ("compare {garbage}", "neither a preset"),
    ("compare {nul}", "NUL characters"),
    ("compare {plan_frac}", "fractional part"),
    ("compare {plan_big}", "fractions"),
    # outcomes, demo
    ("outcomes {dir}", "is a folder"),
    ("outcomes /dev/null", "is a device"),
    ("outcomes {fifo}", "named pipe"),
    ("outcomes {nul}", "NUL characters"),
    ("demo -o {garbage}", "is a file, not a folder"),
    ("demo -o /dev/null", "is a file, not a folder"),
    ("demo -o {garbage}/sub", "is a file"),
]


@pytest.mark.filterwarnings("error")  # a RuntimeWarning (overflow) fails the case
@pytest.mark.parametrize(("template", "match"), SWEEP,
                         ids=[f"{i:02d}-{t.split()[0]}" for i, (t, _) in enumerate(SWEEP)])
def test_sweep_one_line_exit_2(capsys, zoo, template, match):
    argv = [part.format(**zoo) for part in template.split(" ")]
    inputs = [Path(p) for k, p in zoo.items() if k not in ("out", "fifo")]
    before = digest(*[p for p in inputs if p.exists()])
    refused(capsys, *argv, match=match)
    assert digest(*[p for p in inputs if p.exists()]) == before
    assert not Path(zoo["out"]).exists()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("a", [-1e308, -1000.0, -10.0, -1.0, 1.0, 10.0, 1000.0, 1e308])
def test_geud_extreme_a_has_no_overflow(a):
    """Reference: gEUD = (sum v_i D_i^a / V)^(1/a) of doses 2, 2, 4 Gy (equal volumes):
    a = 1 the mean 8/3, a = -1 the harmonic mean 2.4; a -> +inf Dmax 4, -inf Dmin 2."""
    from rtplan.dose.dvh import dvh_from_samples

    h = dvh_from_samples([2.0, 2.0, 4.0], 1.0)
    expected = {1.0: 8 / 3, -1.0: 2.4, 1e308: 4.0, -1e308: 2.0}
    value = h.geud_gy(a)
    if a in expected:
        assert value == pytest.approx(expected[a], rel=1e-12)
    else:  # exact formula with math.fsum in log space (no overflow: |a| <= 1000)
        import math

        terms = [math.log(1 / 3) + a * math.log(d) for d in (2.0, 2.0, 4.0)]
        top = max(terms)
        log_mean = top + math.log(math.fsum(math.exp(t - top) for t in terms))
        assert value == pytest.approx(math.exp(log_mean / a), rel=1e-12)
