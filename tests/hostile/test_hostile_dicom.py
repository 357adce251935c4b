"""Issue 11, DICOM readers: hostile or broken files give a one-line InputError, never a
traceback or a silently wrong number (CT series, RTDOSE, RTPLAN, RTSTRUCT, PET)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.examples import get_path
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import RTPlanStorage

from rtplan.dose import DoseGrid, fractions_from_rtplan, read_rtdose, write_rtdose
from rtplan.errors import DicomError, InputError, SeriesError
from rtplan.imaging import Grid, load_ct_series, write_ct_series
from rtplan.structures.rtstruct import read_rtstruct

# ------------------------------------------------------------------------------ CT
CT_GRID = Grid((5, 6, 7), origin_mm=(-3, -3, 0), spacing_mm=(2.5, 1, 1))


@pytest.fixture
def ct_folder(tmp_path) -> Path:
    """A 5-slice CT of -1000 HU air with a 40 HU block (stored = HU + 1024)."""
    vol = np.full(CT_GRID.shape, -1000.0)
    vol[:, 2:4, 2:5] = 40.0
    folder = tmp_path / "ct"
    write_ct_series(folder, vol, CT_GRID)
    return folder


def _edit(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def test_ct_reads_hu_with_rescale(ct_folder):
    # reference: the values written (HU = stored - 1024 with RescaleIntercept -1024)
    ct = load_ct_series(ct_folder)
    assert int(ct.volume_hu.min()) == -1000 and int(ct.volume_hu.max()) == 40


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"RescaleSlope": None}, "RescaleSlope .* is missing"),
        ({"RescaleIntercept": None}, "RescaleIntercept .* is missing"),
        ({"RescaleSlope": "0"}, "RescaleSlope is 0"),
        ({"RescaleIntercept": "nan"}, "finite number"),
        ({"PixelSpacing": None}, "PixelSpacing"),
    ],
    ids=["no-slope", "no-intercept", "slope-0", "intercept-nan", "no-pixel-spacing"],
)
@pytest.mark.parametrize("which", [0, 2, -1], ids=["first", "middle", "last"])
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_ct_refuses_a_slice_that_would_give_wrong_hu(ct_folder, changes, match, which):
    # without RescaleIntercept the stored values (0..1064) would be read as HU: air
    # becomes soft tissue and the External doubles (issue: 26,537 cc for 11,385 cc)
    _edit(sorted(ct_folder.iterdir())[which], **changes)
    with pytest.raises(DicomError, match=match) as exc:
        load_ct_series(ct_folder)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("which", [0, 2, -1], ids=["first", "middle", "last"])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_ct_broken_slice_is_refused_not_dropped(ct_folder, which, fraction):
    # a truncated slice at either end used to be dropped silently (59 of 60 slices)
    path = sorted(ct_folder.iterdir())[which]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(SeriesError, match="broken DICOM image file"):
        load_ct_series(ct_folder)


@pytest.mark.parametrize("which", [0, -1], ids=["first", "last"])
def test_ct_slice_without_position_is_refused(ct_folder, which):
    _edit(sorted(ct_folder.iterdir())[which], ImagePositionPatient=None)
    with pytest.raises(SeriesError, match="without ImagePositionPatient"):
        load_ct_series(ct_folder)


def test_ct_other_files_are_still_ignored(ct_folder):
    (ct_folder / "README.txt").write_text("not DICOM")
    shutil.copy(get_path("rt_ss"), ct_folder / "RS.dcm")
    assert load_ct_series(ct_folder).n_slices == 5


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "f.dcm").write_bytes(b"x") and p / "f.dcm", "is a file, not a folder"),
    ],
    ids=["missing", "file"],
)
def test_ct_folder_messages(tmp_path, make, match):
    with pytest.raises(InputError, match=match):
        load_ct_series(make(tmp_path))


# -------------------------------------------------------------------------- RTDOSE
@pytest.fixture
def rd(tmp_path) -> Path:
    g = Grid((3, 4, 5), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    dose = np.linspace(0.0, 60.0, int(np.prod(g.shape))).reshape(g.shape)
    return write_rtdose(tmp_path / "RD.dcm", DoseGrid(dose, g), description="test")


class Text:
    """A raw text value for a numeric attribute (written with VR LO)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _rd_variant(rd: Path, **changes) -> Path:
    ds = pydicom.dcmread(rd)
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        elif isinstance(value, Text):  # invalid text pydicom would refuse to set
            tag = pydicom.datadict.tag_for_keyword(keyword)
            if keyword in ds:
                del ds[tag]
            ds.add_new(tag, "LO", value.text)
        else:
            setattr(ds, keyword, value)
    out = rd.with_name("RD_variant.dcm")
    ds.save_as(out)
    return out


def test_rtdose_reads_back(rd):
    # reference: the 60 Gy maximum written
    assert read_rtdose(rd, fractions=5, allow_effective=True).max_gy == pytest.approx(60, 1e-4)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"DoseGridScaling": "0"}, "DoseGridScaling .* must be a positive number"),
        ({"DoseGridScaling": "-1"}, "DoseGridScaling .* must be a positive number"),
        ({"DoseGridScaling": "nan"}, "DoseGridScaling .* must be a positive number"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 1]}, "ImageOrientationPatient 6"),
        ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "not two orthogonal unit"),
        ({"NumberOfFrames": "4", "GridFrameOffsetVector": [0, 3, 6, 9]}, "pixel data hold"),
        ({"NumberOfFrames": "2", "GridFrameOffsetVector": [0, 3]}, "pixel data hold"),
        ({"NumberOfFrames": Text("AA")}, "missing or bad image plane"),
        ({"BitsAllocated": 32}, "pixel data hold .* bytes"),
        ({"BitsAllocated": 8}, "16 or 32 bits"),
        ({"Rows": 0}, "each must be >= 1"),
        ({"PixelSpacing": [0, 2]}, "spacing <= 0"),
        ({"GridFrameOffsetVector": Text("a\\b\\c")}, "GridFrameOffsetVector"),
    ],
    ids=["scaling-0", "scaling-negative", "scaling-nan", "iop-5-values", "iop-parallel",
         "frames-more", "frames-fewer", "frames-text", "bits-32-for-16", "bits-8", "rows-0",
         "spacing-0", "gfov-text"],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_rtdose_refusals(rd, changes, match):
    bad = _rd_variant(rd, **changes)
    with pytest.raises(InputError, match=match) as exc:
        read_rtdose(bad, fractions=5, allow_effective=True)
    assert "\n" not in str(exc.value)


def _plan(tmp_path, n) -> Path:
    ds = Dataset()
    ds.SOPClassUID = RTPlanStorage
    ds.Modality = "RTPLAN"
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = n
    ds.FractionGroupSequence = DicomSequence([fg])
    p = tmp_path / "RP.dcm"
    ds.save_as(p, implicit_vr=True)
    return p


@pytest.mark.parametrize("value", ["AA", "0", "-3", "99999999", "1e308", ""])
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_rtplan_fractions_refused(tmp_path, value):
    with pytest.raises(DicomError, match="NumberOfFractionsPlanned") as exc:
        fractions_from_rtplan(_raw_is(tmp_path, value))
    assert "\n" not in str(exc.value)


def _raw_is(tmp_path, text: str) -> Path:
    """An RTPLAN whose NumberOfFractionsPlanned holds arbitrary text."""
    from pydicom.config import settings

    old = settings.writing_validation_mode
    settings.writing_validation_mode = 0  # allow an invalid IS value in the file
    try:
        ds = Dataset()
        ds.SOPClassUID = RTPlanStorage
        ds.Modality = "RTPLAN"
        fg = Dataset()
        fg.FractionGroupNumber = 1
        fg.add_new(0x300A0078, "LO", text)  # stored as text; read back as IS
        ds.FractionGroupSequence = DicomSequence([fg])
        p = tmp_path / "RP_text.dcm"
        ds.save_as(p, implicit_vr=True)
    finally:
        settings.writing_validation_mode = old
    return p


def test_rtplan_fractions_ok(tmp_path):
    assert fractions_from_rtplan(_plan(tmp_path, 5)) == 5


# ------------------------------------------------------------------------ RTSTRUCT
def _rs_variant(tmp_path, edit) -> Path:
    ds = pydicom.dcmread(get_path("rt_ss"), force=True)
    edit(ds)
    p = tmp_path / "RS.dcm"
    ds.save_as(p)
    return p


def test_rtstruct_reads():
    # reference: pydicom's example structure set (3 ROIs, 'patient' is EXTERNAL)
    assert read_rtstruct(get_path("rt_ss")).names == ("patient", "Isocenter 1", "Isocenter 2")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda ds: delattr(ds.StructureSetROISequence[0], "ROINumber"), "no ROINumber"),
        (lambda ds: delattr(ds.ROIContourSequence[0], "ReferencedROINumber"),
         "no ReferencedROINumber"),
        (lambda ds: setattr(ds, "Modality", "CT") or delattr(ds, "SOPClassUID"),
         "not an RTSTRUCT"),
    ],
    ids=["no-roinumber", "no-referenced-roinumber", "not-rtstruct"],
)
def test_rtstruct_refusals(tmp_path, edit, match):
    with pytest.raises(DicomError, match=match):
        read_rtstruct(_rs_variant(tmp_path, edit))


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_rtstruct_non_numeric_colour_is_dropped(tmp_path):
    from pydicom.config import settings

    old = settings.writing_validation_mode
    settings.writing_validation_mode = 0
    try:
        ds = pydicom.dcmread(get_path("rt_ss"), force=True)
        del ds.ROIContourSequence[0].ROIDisplayColor
        ds.ROIContourSequence[0].add_new(0x3006002A, "LO", "red\\green\\blue")
        p = tmp_path / "RS.dcm"
        ds.save_as(p)
    finally:
        settings.writing_validation_mode = old
    ss = read_rtstruct(p)
    assert ss.roi("patient").color is None
    assert len(ss.roi("patient").polygons_mm) == 3


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.7, 0.9])
def test_rtstruct_truncated(tmp_path, fraction):
    data = Path(get_path("rt_ss")).read_bytes()
    p = tmp_path / "RS.dcm"
    p.write_bytes(data[: int(len(data) * fraction)])
    try:
        read_rtstruct(p)
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d, "is a folder, not a file"),
        (lambda d: Path("/dev/null"), "is a device"),
        (lambda d: d / "missing.dcm", "does not exist"),
    ],
    ids=["folder", "dev-null", "missing"],
)
def test_input_file_messages_are_precise(tmp_path, make, match):
    with pytest.raises(InputError, match=match):
        read_rtstruct(make(tmp_path))


def test_fifo_is_named_as_fifo(tmp_path):
    import os

    fifo = tmp_path / "RD.dcm"
    os.mkfifo(fifo)  # reading it would block forever: refused before opening
    with pytest.raises(InputError, match=r"named pipe \(FIFO\)"):
        read_rtdose(fifo, fractions=5)
