"""``rtplan structures`` never writes over its inputs (not even with --force), and picks
one CT series out of a folder holding several (--series-uid).

References: file digests before and after (SHA-256), and the exit codes and messages of
the CLI contract (exit 2, one line naming the offending path and what to do).
"""

import hashlib
import json
import shutil

import numpy as np
import pydicom
import pytest

from rtplan.cli.main import main
from rtplan.imaging.ct import write_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures import PlanarContour, ROIContours, write_rtstruct


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def inputs(tmp_path):
    """A small CT (soft tissue cylinder), a lesions file and an ENI RTSTRUCT."""
    grid = Grid((12, 40, 40), origin_mm=(-19.5, -19.5, -16.5), spacing_mm=(3.0, 1.0, 1.0))
    yy, xx = np.mgrid[:40, :40]
    vol = np.where((yy - 19.5) ** 2 + (xx - 19.5) ** 2 <= 18**2, 30.0, -1000.0)
    ct = write_ct_series(tmp_path / "in" / "ct", np.broadcast_to(vol, grid.shape), grid)
    sq = np.array([[-4.0, -4.0], [4.0, -4.0], [4.0, 4.0], [-4.0, 4.0]])
    node = [PlanarContour(k, np.column_stack([sq, np.full(4, -16.5 + 3.0 * k)]))
            for k in range(4, 8)]
    eni = write_rtstruct(tmp_path / "in" / "eni.dcm", ct,
                         [ROIContours("CTV_Elective", "CTV", (0, 255, 255), node)])
    lesions = tmp_path / "in" / "lesions.json"
    lesions.write_text(json.dumps({"lesions": [{"id": "L1", "site": "pelvic_node", "source": {
        "kind": "sphere", "center_mm": [0.3, 0.2, 0.4], "diameter_mm": 8.0}}]}))
    return {"ct": tmp_path / "in" / "ct", "lesions": lesions, "eni": eni,
            "root": tmp_path / "in"}


def _run(paths, *extra):
    return main(["structures", "--ct", str(paths["ct"]), "--lesions", str(paths["lesions"]),
                 "--eni-ctv", f"{paths['eni']}:CTV_Elective", "-q", *extra])


@pytest.mark.parametrize(
    ("output", "report"),
    [
        pytest.param("ct/CT_0000.dcm", None, id="output-is-a-CT-slice"),
        pytest.param("ct/RS_new.dcm", None, id="output-inside-the-CT-folder"),
        pytest.param("eni.dcm", None, id="output-is-the-ENI-RTSTRUCT"),
        pytest.param("lesions.json", None, id="output-is-the-lesions-file"),
        pytest.param("../RS.dcm", "lesions.json", id="report-is-the-lesions-file"),
        pytest.param("../RS.dcm", "ct/CT_0003.dcm", id="report-is-a-CT-slice"),
        pytest.param("../RS.dcm", "eni.dcm", id="report-is-the-ENI-RTSTRUCT"),
    ],
)
def test_outputs_never_replace_inputs_even_with_force(inputs, capsys, output, report):
    root = inputs["root"]
    before = _digest(root)
    extra = ["-o", str(root / output), "--force"]
    if report is not None:
        extra += ["--report", str(root / report)]
    assert _run(inputs, *extra) == 2
    err = capsys.readouterr().err
    assert "is also an input" in err and "even with --force" in err
    assert len(err.strip().splitlines()) == 1
    assert _digest(root) == before  # every input byte for byte, no file added
    assert not (root.parent / "RS.dcm").exists()


def test_report_and_output_must_differ(inputs, tmp_path, capsys):
    out = tmp_path / "RS.dcm"
    assert _run(inputs, "-o", str(out), "--report", str(out)) == 2
    assert "two different files" in capsys.readouterr().err
    assert not out.exists()


def test_series_uid_picks_one_ct_series(inputs, tmp_path, capsys):
    # a folder holding two CT series of the same patient: refused with the list and the
    # option to use; --series-uid picks one
    grid = Grid((12, 40, 40), origin_mm=(-19.5, -19.5, -16.5), spacing_mm=(3.0, 1.0, 1.0))
    other = write_ct_series(tmp_path / "other", np.full(grid.shape, 30.0), grid)
    mixed = tmp_path / "mixed"
    shutil.copytree(inputs["ct"], mixed)
    for p in sorted((tmp_path / "other").glob("*.dcm")):
        shutil.copy(p, mixed / f"B_{p.name}")
    argv = ["structures", "--ct", str(mixed), "--lesions", str(inputs["lesions"]),
            "--body", "none", "-o", str(tmp_path / "RS.dcm"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds 2 CT series" in err and "--series-uid UID" in err
    assert other.series_instance_uid in err
    assert main([*argv, "--series-uid", other.series_instance_uid, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["structures"][0]["name"] == "GTVn1"
    ds = pydicom.dcmread(tmp_path / "RS.dcm")
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert series.RTReferencedSeriesSequence[0].SeriesInstanceUID == other.series_instance_uid
