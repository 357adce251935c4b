"""``rtplan structures --qa DIR`` and the demo's QA images: written with the RTSTRUCT or not
at all.

Reference for the pixels: the RTSTRUCT read back with pydicom; each GTV contour vertex of
the axial panel must lie on a pixel of the GTV's display colour (as the library test of
``rtplan.structures.qa`` does), here reached through the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from rtplan.cli.main import main
from rtplan.imaging import Grid, write_ct_series

pytest.importorskip("matplotlib")


@pytest.fixture
def case(tmp_path):
    g = Grid((24, 64, 64), origin_mm=(-32.0, -32.0, -36.0), spacing_mm=(3.0, 1.0, 1.0))
    vol = np.full(g.shape, -1000.0)
    _, ii, jj = np.indices(g.shape)
    vol[(ii - 32) ** 2 + (jj - 32) ** 2 <= 28**2] = 30.0  # a cylinder of soft tissue
    write_ct_series(tmp_path / "ct", vol, g)
    lesions = {"lesions": [{"id": "L1", "site": "pelvic_node", "source": {
        "kind": "sphere", "center_mm": [2.0, -3.0, 0.5], "diameter_mm": 12}}]}
    (tmp_path / "lesions.json").write_text(json.dumps(lesions))
    return tmp_path


def _args(d, *extra):
    return ["structures", "--ct", str(d / "ct"), "--lesions", str(d / "lesions.json"),
            "-o", str(d / "RS.dcm"), "-q", *extra]


def test_qa_images_written_with_the_rtstruct(case, capsys):
    assert main(_args(case, "--qa", str(case / "qa"))) == 0
    assert "QA images in" in capsys.readouterr().out
    files = sorted(p.name for p in (case / "qa").iterdir())
    assert files == ["index.html", "qa_GTVn1.png"]
    assert "qa_GTVn1.png" in (case / "qa" / "index.html").read_text()
    names = [r.ROIName for r in pydicom.dcmread(case / "RS.dcm").StructureSetROISequence]
    assert names[:3] == ["GTVn1", "CTVn1", "PTVn1"]
    # no staging folder left behind
    assert not [p for p in case.iterdir() if p.name.startswith(".qa.")]


@pytest.mark.parametrize("how", ["file", "not-empty"])
def test_bad_qa_folder_writes_nothing(case, capsys, how):
    qa = case / "qa"
    if how == "file":
        qa.write_text("x")
    else:
        qa.mkdir()
        (qa / "old.png").write_bytes(b"old")
    assert main(_args(case, "--qa", str(qa))) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "qa" in err.lower()
    assert not (case / "RS.dcm").exists()


def test_qa_folder_may_not_be_an_input(case, capsys):
    assert main(_args(case, "--qa", str(case / "ct"))) == 2
    assert not (case / "RS.dcm").exists()


def test_failed_rtstruct_leaves_no_qa(case, capsys):
    (case / "RS.dcm").write_bytes(b"existing")  # refused without --force: nothing written
    assert main(_args(case, "--qa", str(case / "qa"))) == 2
    assert not (case / "qa").exists()
    assert (case / "RS.dcm").read_bytes() == b"existing"


def test_rerun_with_force_replaces_old_images(case, capsys):
    qa = case / "qa"
    qa.mkdir()
    (qa / "qa_GTVn9.png").write_bytes(b"an image of an earlier run")
    (qa / "notes.txt").write_text("the user's own file")
    assert main(_args(case, "--qa", str(qa), "--force")) == 0
    assert sorted(p.name for p in qa.iterdir()) == ["index.html", "notes.txt", "qa_GTVn1.png"]


def test_qa_error_names_the_option(case, capsys):
    (case / "qa").write_text("x")
    assert main(_args(case, "--qa", str(case / "qa"))) == 2
    err = capsys.readouterr().err
    assert "--qa" in err and "qa=" not in err
