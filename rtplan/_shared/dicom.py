"""Small DICOM helpers shared by the readers and writers of CT, PET, RTSTRUCT and RTDOSE.

Decimal strings (:func:`format_ds`, :func:`ds_strings`, :func:`ds_bytes`), reading one
file (:func:`read_dataset`) and the modules every rtplan writer fills alike
(:func:`new_dataset`: SOP Common and file meta; :func:`set_patient`; :func:`set_study`:
General Study; :func:`set_series`: General or RT Series; :func:`set_equipment`: General
Equipment). Modality-specific attributes stay with each writer.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian

from rtplan import __version__
from rtplan.errors import DicomError, InputError

__all__ = [
    "MANUFACTURER",
    "PatientValues",
    "StudyValues",
    "ds_bytes",
    "ds_strings",
    "format_ds",
    "is_uid",
    "new_dataset",
    "read_dataset",
    "set_equipment",
    "set_patient",
    "set_series",
    "set_study",
]

#: Manufacturer (0008,0070) of every object rtplan writes.
MANUFACTURER = "rtplan"

#: DICOM limits a Decimal String (DS) value to 16 characters.
DS_MAX_CHARS = 16

#: DICOM limits a UID to 64 characters (PS3.5 9.1).
UID_MAX_CHARS = 64
_UID_STRICT = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
_UID_LOOSE = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def is_uid(text: str, *, strict: bool = False) -> bool:
    """True when ``text`` is a DICOM UID, not a label such as ``"PET"`` or ``"CT"``.

    PS3.5 9.1: a UID is an ``<org root>.<suffix>``, so at least two components of
    digits separated by ``.``; a component has no leading zero (``0`` alone is allowed);
    at most 64 characters. ``strict=False`` (the default) also accepts components with
    leading zeros and longer strings, which some systems write: used to tell UIDs from
    labels, it must not take a malformed UID for a label. ``strict=True`` checks the
    whole rule (for UIDs rtplan writes).

    Examples
    --------
    >>> is_uid("1.2.840.10008.5.1.4.1.1.66"), is_uid("PET"), is_uid("1"), is_uid("1..2")
    (True, False, False, False)
    >>> is_uid("1.2.03"), is_uid("1.2.03", strict=True), is_uid("1.2.0.3", strict=True)
    (True, False, True)
    """
    if not isinstance(text, str):
        return False
    if strict:
        return len(text) <= UID_MAX_CHARS and bool(_UID_STRICT.match(text))
    return bool(_UID_LOOSE.match(text))


def format_ds(value: float, decimals: int = 6) -> str:
    """Format a number as a DICOM Decimal String of at most 16 characters.

    Uses fixed notation with up to ``decimals`` decimals (trailing zeros removed),
    dropping decimals until the text fits DICOM's 16-character limit.

    Parameters
    ----------
    value
        The number (e.g. a coordinate in mm).
    decimals
        Most decimals to keep (6: a micrometre in mm is 3).

    Examples
    --------
    >>> format_ds(-123.456789012345)
    '-123.456789'
    >>> format_ds(1.0), format_ds(-0.0000001)
    ('1', '0')
    >>> len(format_ds(-12345678.123456789)) <= 16
    True
    """
    v = float(value)
    if not math.isfinite(v):
        raise DicomError(f"cannot write {value!r} as a DICOM decimal string: give finite numbers")
    for d in range(decimals, -1, -1):
        s = f"{v:.{d}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
        if len(s) <= DS_MAX_CHARS:
            return s
    s = f"{v:.8e}"
    if len(s) > DS_MAX_CHARS:
        raise DicomError(f"cannot write {value!r} in 16 characters as a DICOM decimal string")
    return s


def ds_strings(values: Iterable[float], decimals: int = 6) -> list[str]:
    """Format many numbers with :func:`format_ds` (a DS multi-value).

    Examples
    --------
    >>> ds_strings([0.5, 1 / 3])
    ['0.5', '0.333333']
    """
    return [format_ds(v, decimals) for v in values]


def ds_bytes(values: Iterable[float], decimals: int = 6) -> bytes:
    """A DS multi-value as the bytes DICOM stores: backslash-separated, even length.

    Same text as :func:`ds_strings`, but fast for the many values of contour data:
    numbers below 1e8 in magnitude always fit 16 characters with 6 decimals.

    Examples
    --------
    >>> ds_bytes([1.5, 2.5])  # padded to an even length
    b'1.5\\\\2.5 '
    >>> ds_bytes([-0.0000001, 2 / 3])
    b'0\\\\0.666667'
    """
    vals = [float(v) for v in values]
    if decimals == 6 and all(math.isfinite(v) and abs(v) < 1e8 for v in vals):
        texts = [f"{v:.6f}".rstrip("0").rstrip(".") for v in vals]
        texts = ["0" if t == "-0" else t for t in texts]
    else:
        texts = ds_strings(vals, decimals)
    data = "\\".join(texts).encode("ascii")
    return data + b" " if len(data) % 2 else data


# ============================================================================ reading
def read_dataset(path: str | os.PathLike[str], what: str) -> Dataset:
    """Read one DICOM file, also without preamble and file meta (older files).

    Parameters
    ----------
    path
        The file.
    what
        What the file should be, for the messages (``"RTDOSE"``, ``"registration"``...).

    Returns
    -------
    pydicom.Dataset
        The whole dataset, pixel data included. The caller checks that it is ``what``.

    Raises
    ------
    InputError
        ``path`` does not exist or is a folder.
    DicomError
        The file cannot be parsed as DICOM (truncated, unreadable).

    Examples
    --------
    >>> import tempfile
    >>> read_dataset(tempfile.mkdtemp() + "/RD.dcm", "RTDOSE")
    Traceback (most recent call last):
    ...
    rtplan.errors.InputError: RTDOSE file '.../RD.dcm' does not exist: give the path ...
    """
    from rtplan._shared.jsonio import check_input_file

    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise InputError(f"{what} file '{p}' does not exist: give the path of the {what} file")
    p = check_input_file(p, f"{what} file")  # folder, FIFO, device: said precisely
    try:
        try:
            return pydicom.dcmread(p)
        except InvalidDicomError:  # no preamble/file meta: the caller checks the class
            return pydicom.dcmread(p, force=True)
    except Exception as exc:  # pydicom raises many types on corrupt bytes
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DicomError(f"cannot read {what} file '{p}' as DICOM: {first}") from None


# ============================================================================ writing
class PatientValues(Protocol):
    """Patient module values (e.g. :class:`rtplan.imaging.ct.PatientInfo`)."""

    name: str
    patient_id: str
    birth_date: str
    sex: str


class StudyValues(Protocol):
    """General Study module values (e.g. :class:`rtplan.imaging.ct.StudyInfo`)."""

    date: str
    time: str
    study_id: str
    accession_number: str
    referring_physician: str
    description: str


def new_dataset(
    sop_class_uid: str,
    created: _dt.datetime,
    *,
    transfer_syntax_uid: str = ExplicitVRLittleEndian,
    character_set: str = "ISO_IR 192",
) -> Dataset:
    """A dataset with its file meta and the SOP Common module, but no SOPInstanceUID.

    Sets MediaStorageSOPClassUID and TransferSyntaxUID (file meta), SpecificCharacterSet
    (0008,0005), SOPClassUID (0008,0016) and InstanceCreationDate/Time (0008,0012/0013)
    to ``created`` (whole seconds). The caller sets SOPInstanceUID (0008,0018) and
    MediaStorageSOPInstanceUID per instance.

    Examples
    --------
    >>> import datetime as dt
    >>> ds = new_dataset("1.2.840.10008.5.1.4.1.1.2", dt.datetime(2025, 1, 2, 3, 4, 5, 6))
    >>> ds.SOPClassUID.name, ds.InstanceCreationDate, ds.InstanceCreationTime
    ('CT Image Storage', '20250102', '030405')
    >>> ds.file_meta.TransferSyntaxUID.name, ds.SpecificCharacterSet
    ('Explicit VR Little Endian', 'ISO_IR 192')
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = character_set
    ds.SOPClassUID = sop_class_uid
    ds.InstanceCreationDate = created.strftime("%Y%m%d")
    ds.InstanceCreationTime = created.strftime("%H%M%S")
    return ds


def set_patient(ds: Dataset, patient: PatientValues) -> None:
    """Set the Patient module: PatientName, PatientID, PatientBirthDate, PatientSex.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> ds = Dataset()
    >>> set_patient(ds, SimpleNamespace(name="Doe^J", patient_id="7", birth_date="", sex="M"))
    >>> str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex
    ('Doe^J', '7', '', 'M')
    """
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex


def set_study(
    ds: Dataset, study: StudyValues, study_instance_uid: str, *, date: str, time: str
) -> None:
    """Set the General Study module from ``study``.

    Parameters
    ----------
    ds
        Dataset to fill.
    study
        StudyDate/Time, StudyID, AccessionNumber, ReferringPhysicianName and
        StudyDescription; the type 2 ones may be empty.
    study_instance_uid
        StudyInstanceUID (0020,000D).
    date, time
        StudyDate (DA ``YYYYMMDD``) and StudyTime (TM) when ``study`` leaves them empty.

    Notes
    -----
    An empty StudyID is written as ``"1"``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> study = SimpleNamespace(date="", time="101500", study_id="", accession_number="",
    ...                         referring_physician="", description="pelvis")
    >>> ds = Dataset()
    >>> set_study(ds, study, "1.2.3", date="20250102", time="090000")
    >>> ds.StudyDate, ds.StudyTime, ds.StudyID, ds.StudyDescription, ds.StudyInstanceUID
    ('20250102', '101500', '1', 'pelvis', '1.2.3')
    """
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = study.date or date
    ds.StudyTime = study.time or time
    ds.StudyID = study.study_id or "1"
    ds.AccessionNumber = study.accession_number
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyDescription = study.description


def set_series(
    ds: Dataset,
    modality: str,
    series_instance_uid: str,
    *,
    number: str,
    description: str,
    date: str,
    time: str,
    body_part: str | None = None,
) -> None:
    """Set the General Series (or RT Series) module.

    Parameters
    ----------
    ds
        Dataset to fill.
    modality
        Modality (0008,0060): ``CT``, ``PT``, ``RTSTRUCT``...
    series_instance_uid, number
        SeriesInstanceUID (0020,000E), SeriesNumber (0020,0011).
    description
        SeriesDescription (0008,103E), cut to its 64 characters.
    date, time
        SeriesDate (DA) and SeriesTime (TM).
    body_part
        BodyPartExamined (0018,0015) of an unpaired part (upper case, 16 characters),
        so Laterality is absent; ``""`` writes an empty Laterality (0020,0060) instead
        (type 2C, unknown); ``None`` writes neither (the RT Series module has none).

    Examples
    --------
    >>> ds = Dataset()
    >>> set_series(ds, "CT", "1.2.3", number="1", description="planning CT",
    ...            date="20250102", time="090000", body_part="pelvis")
    >>> ds.Modality, ds.SeriesNumber, ds.BodyPartExamined, "Laterality" in ds
    ('CT', '1', 'PELVIS', False)
    >>> set_series(ds, "CT", "1.2.3", number="1", description="", date="", time="",
    ...            body_part="")
    >>> ds.Laterality
    ''
    """
    ds.Modality = modality
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = number
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.SeriesDescription = description[:64]
    if body_part:
        ds.BodyPartExamined = body_part[:16].upper()  # unpaired: Laterality absent
    elif body_part is not None:
        ds.Laterality = ""  # type 2C, unknown without a body part


def set_equipment(ds: Dataset, model_name: str) -> None:
    """Set the General Equipment module of rtplan output.

    Manufacturer (0008,0070) :data:`MANUFACTURER`, ManufacturerModelName (0008,1090)
    ``model_name`` and SoftwareVersions (0018,1020) the rtplan version.

    Examples
    --------
    >>> ds = Dataset()
    >>> set_equipment(ds, "rtplan synthetic CT")
    >>> ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions == __version__
    ('rtplan', 'rtplan synthetic CT', True)
    """
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = model_name
    ds.SoftwareVersions = __version__


@contextlib.contextmanager
def corrupt_as_dicom_error(where: str, fix: str = "export it again") -> Iterator[None]:
    """Turn the errors pydicom raises while parsing a corrupt element lazily (unknown VR,
    "No tag to read", struct errors, bad numbers) into one-line :class:`DicomError`
    naming ``where`` and what to do (``fix``); rtplan's own input errors pass through.

    Examples
    --------
    >>> with corrupt_as_dicom_error("RTPLAN 'RP.dcm'"):
    ...     int("AA")
    Traceback (most recent call last):
    ...
    rtplan.errors.DicomError: RTPLAN 'RP.dcm' is truncated or corrupt (ValueError: ...
    """
    try:
        yield
    except InputError:
        raise
    except (OSError, struct.error, ValueError, TypeError, KeyError, AttributeError,
            IndexError, EOFError, OverflowError, NotImplementedError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DicomError(
            f"{where} is truncated or corrupt ({type(exc).__name__}: {first}): {fix}"
        ) from None
