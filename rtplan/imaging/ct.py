"""Planning CT series: load a folder of DICOM CT images, and write synthetic ones.

:func:`load_ct_series` groups the files of a folder by SeriesInstanceUID, sorts the
slices by their position along the slice normal (not by file name or InstanceNumber),
keeps each slice's own position (irregular spacing is allowed) and checks the geometry:
axial orientations (head/feet first, supine/prone; direction cosines of +-1) are
supported; gantry tilt, oblique or non-axial orientations, duplicate or missing slices
and inconsistent headers are refused with an error that says what was found.

:func:`write_ct_series` writes a volume on a :class:`~rtplan.imaging.grid.Grid` as a
valid CT Image series (new UIDs, every type 1 and 2 attribute).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from rtplan._shared.dicom import (
    corrupt_as_dicom_error,
    ds_strings,
    format_ds,
    new_dataset,
    set_equipment,
    set_patient,
    set_series,
    set_study,
)
from rtplan._shared.io import atomic_write
from rtplan.errors import (
    DicomError,
    GeometryError,
    InputError,
    OutputExistsError,
    SeriesError,
    from_validation_error,
)
from rtplan.imaging.grid import Grid

__all__ = [
    "CTSeries",
    "PatientInfo",
    "SeriesSummary",
    "StudyInfo",
    "ct_series_from_datasets",
    "find_image_series",
    "load_ct_series",
    "write_ct_series",
]

#: Largest deviation (direction cosine) from an exact +-1/0 axis for an axial series.
_COSINE_TOL = 1e-3
#: Slices closer than this along the normal (mm) are duplicates.
_DUPLICATE_TOL_MM = 0.01
#: A gap larger than this factor times the median spacing means missing slices.
_GAP_FACTOR = 1.5
#: Written file names look like CT_0000.dcm.
_WRITTEN_NAME = re.compile(r"^CT_\d{4,}\.dcm$")


class PatientInfo(BaseModel):
    """Patient module values (DICOM type 2: may be empty).

    Examples
    --------
    >>> PatientInfo(name="Test^Patient", patient_id="RTP001", sex="M").name
    'Test^Patient'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("", max_length=320, description="PatientName (0010,0010)")
    patient_id: str = Field("", max_length=64, description="PatientID (0010,0020)")
    birth_date: str = Field("", description="PatientBirthDate (0010,0030), YYYYMMDD")
    sex: str = Field("", description="PatientSex (0010,0040): M, F, O or empty")


class StudyInfo(BaseModel):
    """General Study module values other than the UID (DICOM type 2: may be empty).

    Examples
    --------
    >>> StudyInfo(date="20240131", time="101500").study_id
    ''
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: str = Field("", description="StudyDate (0008,0020), YYYYMMDD")
    time: str = Field("", description="StudyTime (0008,0030), HHMMSS")
    study_id: str = Field("", max_length=16, description="StudyID (0020,0010)")
    accession_number: str = Field("", max_length=16, description="AccessionNumber (0008,0050)")
    referring_physician: str = Field(
        "", max_length=320, description="ReferringPhysicianName (0008,0090)"
    )
    description: str = Field("", max_length=64, description="StudyDescription (0008,1030)")


class _WritePatient(PatientInfo):
    """PatientInfo with the stricter checks applied to what rtplan writes."""

    @field_validator("sex")
    @classmethod
    def _sex(cls, v: str) -> str:
        if v not in ("", "M", "F", "O"):
            raise ValueError("sex must be 'M', 'F', 'O' or empty")
        return v

    @field_validator("birth_date")
    @classmethod
    def _date(cls, v: str) -> str:
        if v and not re.fullmatch(r"\d{8}", v):
            raise ValueError("birth date must be YYYYMMDD or empty")
        return v


@dataclass(frozen=True)
class SeriesSummary:
    """One image series found in a folder (for listings and error messages)."""

    series_instance_uid: str
    modality: str
    n_files: int
    series_number: str
    description: str

    def __str__(self) -> str:
        return (
            f"{self.series_instance_uid} ({self.modality}, {self.n_files} files, "
            f"series number {self.series_number or '-'}, "
            f"description '{self.description}')"
        )


@dataclass(frozen=True, eq=False)
class CTSeries:
    """A planning CT: Hounsfield units on a grid, and what an RTSTRUCT must reference.

    Attributes
    ----------
    volume_hu
        ``[slice, row, column]`` CT numbers in HU after RescaleSlope/RescaleIntercept:
        int16 when every slice's rescale is integral and the values fit, else float32.
    grid
        Geometry (LPS mm); slices ordered along ``grid.direction[0]``, the slice normal
        ImageOrientationPatient[0:3] x ImageOrientationPatient[3:6].
    study_instance_uid, series_instance_uid, frame_of_reference_uid
        StudyInstanceUID, SeriesInstanceUID, FrameOfReferenceUID.
    sop_class_uids, sop_instance_uids
        SOPClassUID and SOPInstanceUID of every slice, in grid slice order.
    patient, study
        Patient and General Study module values.
    patient_position
        PatientPosition (HFS, FFS, HFP, FFP, ... or empty when the files leave it empty).
    headers
        Every slice's dataset without pixel data, in grid slice order.
    paths
        Source file of every slice (empty strings for series built in memory).
    """

    volume_hu: NDArray
    grid: Grid
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_class_uids: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]
    patient: PatientInfo
    study: StudyInfo
    patient_position: str
    headers: tuple[Dataset, ...]
    paths: tuple[str, ...]

    @property
    def n_slices(self) -> int:
        """Number of slices."""
        return self.grid.shape[0]

    def __repr__(self) -> str:
        return (
            f"CTSeries({self.grid!r}, series={self.series_instance_uid}, "
            f"patient_position={self.patient_position!r})"
        )


# ----------------------------------------------------------------------------- reading
#: SOP classes of single-image objects a CT folder may hold (broken ones are refused).
_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}



def _corrupt_as_dicom_error(where: str) -> contextlib.AbstractContextManager[None]:
    return corrupt_as_dicom_error(where, "repair or re-export the series, or remove the file")


def _has_dicom_magic(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _scan_all(
    folder: Path, recursive: bool
) -> tuple[dict[str, list[tuple[Path, Dataset]]], list[tuple[Path, str, str]]]:
    """Headers of the image files of ``folder`` grouped by SeriesInstanceUID, and the
    broken image files: (path, reason, SeriesInstanceUID or "")."""
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise InputError(f"CT folder '{folder}' {state}: give the folder of the CT series")
    try:
        files = sorted(folder.rglob("*") if recursive else folder.iterdir())
    except OSError as exc:
        raise InputError(f"CT folder '{folder}' cannot be listed: {exc.strerror or exc}") from None
    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    broken: list[tuple[Path, str, str]] = []
    for p in files:
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types on bad bytes
            if _has_dicom_magic(p):  # a DICOM file that cannot be parsed: truncated?
                broken.append((p, f"cannot be parsed ({type(exc).__name__})", ""))
            continue  # not a DICOM file (README, licence, ...)
        try:
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            sop_class = str(
                getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")
                or ds.get("SOPClassUID", "")
                or ""
            )
            is_image = "Rows" in ds and "ImagePositionPatient" in ds
        except Exception as exc:  # pydicom raises many types on bad bytes
            broken.append((p, f"holds an unreadable header ({type(exc).__name__})", ""))
            continue
        if uid and is_image:
            groups[uid].append((p, ds))
        elif sop_class in _IMAGE_SOP_CLASSES:
            missing = [k for k in ("SeriesInstanceUID", "Rows", "ImagePositionPatient")
                       if k not in ds or not ds.get(k)]
            broken.append((p, f"is an image without {', '.join(missing)} (truncated?)", uid))
        # else: not an image (RTSTRUCT, RTPLAN, ...) or no series
    return groups, broken


def _scan(folder: Path, recursive: bool) -> dict[str, list[tuple[Path, Dataset]]]:
    """Headers of the DICOM image files of ``folder``, grouped by SeriesInstanceUID."""
    return _scan_all(folder, recursive)[0]


def _summary(uid: str, items: list[tuple[Path, Dataset]]) -> SeriesSummary:
    ds = items[0][1]
    return SeriesSummary(
        series_instance_uid=uid,
        modality=str(ds.get("Modality", "") or "?"),
        n_files=len(items),
        series_number=str(ds.get("SeriesNumber", "") or ""),
        description=str(ds.get("SeriesDescription", "") or ""),
    )


def find_image_series(
    folder: str | os.PathLike[str], *, recursive: bool = False
) -> list[SeriesSummary]:
    """List the image series (any modality) in a folder of DICOM files.

    Files that are not DICOM, and DICOM objects that are not images (RTSTRUCT,
    RTPLAN, ...), are ignored.

    Parameters
    ----------
    folder
        Folder of DICOM files.
    recursive
        Also look in sub-folders.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging.grid import Grid
    >>> d = tempfile.mkdtemp()
    >>> _ = write_ct_series(d, np.zeros((2, 4, 4)), Grid((2, 4, 4), (0, 0, 0), (2, 1, 1)))
    >>> [(s.modality, s.n_files) for s in find_image_series(d)]
    [('CT', 2)]
    """
    groups = _scan(Path(folder), recursive)
    return [_summary(uid, items) for uid, items in sorted(groups.items())]


def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> NDArray[np.float64]:
    value = ds.get(keyword)
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        arr = np.array([])
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise DicomError(
            f"'{path.name}': {keyword} must hold {n} numbers, got {value!r}: "
            "the file is not a usable image slice"
        )
    return arr


def _axial_axes(iop: NDArray[np.float64], where: str) -> tuple[NDArray, NDArray]:
    """Snap an axial ImageOrientationPatient to exact +-1 cosines or raise."""
    row_cos, col_cos = iop[:3], iop[3:]
    if not (
        np.isclose(np.linalg.norm(row_cos), 1, atol=1e-3)
        and np.isclose(np.linalg.norm(col_cos), 1, atol=1e-3)
        and abs(float(row_cos @ col_cos)) < 1e-3
    ):
        raise GeometryError(
            f"{where}: ImageOrientationPatient {iop.tolist()} is not two orthogonal unit "
            "vectors: the header is corrupt"
        )
    snapped_r, snapped_c = np.round(row_cos), np.round(col_cos)
    axis_aligned = (
        np.max(np.abs(row_cos - snapped_r)) < _COSINE_TOL
        and np.max(np.abs(col_cos - snapped_c)) < _COSINE_TOL
    )
    if not axis_aligned:
        normal = np.cross(row_cos, col_cos)
        angle = np.degrees(np.arccos(min(1.0, float(np.max(np.abs(normal))))))
        raise GeometryError(
            f"{where}: oblique ImageOrientationPatient {np.round(iop, 5).tolist()} "
            f"(slice normal {angle:.2f} deg from the nearest patient axis) is not "
            "supported: resample the CT to an axial orientation first"
        )
    if abs(snapped_r[0]) != 1 or abs(snapped_c[1]) != 1:
        raise GeometryError(
            f"{where}: ImageOrientationPatient {snapped_r.tolist() + snapped_c.tolist()} "
            "is a sagittal or coronal orientation; only axial series "
            "([+-1,0,0,0,+-1,0]: HFS, FFS, HFP, FFP) are supported: reformat the CT to "
            "axial first"
        )
    return snapped_r, snapped_c


def _check_same(items: list[tuple[Path, Dataset]], keyword: str, what: str) -> None:
    found: dict[str, list[str]] = defaultdict(list)
    for p, ds in items:
        v = ds.get(keyword)
        try:
            key = str([float(x) for x in v]) if keyword in ("PixelSpacing",) else str(v)
        except (TypeError, ValueError, OverflowError):
            key = f"missing or unreadable ({v!r})"
        found[key].append(p.name)
    if len(found) > 1:
        listing = "; ".join(
            f"{k} in {len(v)} files (e.g. {v[0]})" for k, v in sorted(found.items())
        )
        raise SeriesError(
            f"inconsistent {what} ({keyword}) within one series: {listing}: a CT series "
            "must have one image size and pixel spacing; remove the odd files"
        )


def _geometry(
    items: list[tuple[Path, Dataset]],
) -> tuple[list[int], Grid]:
    """Slice order (indices into ``items``) and grid of one series; checks geometry."""
    for keyword in ("Rows", "Columns"):
        _check_same(items, keyword, "image size")
    _check_same(items, "PixelSpacing", "pixel spacing")
    first_path, first = items[0]
    iops = np.array([_floats(ds, "ImageOrientationPatient", 6, p) for p, ds in items])
    bad = np.flatnonzero(np.max(np.abs(iops - iops[0]), axis=1) > 1e-4)
    if bad.size:
        raise SeriesError(
            "inconsistent ImageOrientationPatient within one series: "
            f"{np.round(iops[0], 5).tolist()} in '{first_path.name}' but "
            f"{np.round(iops[bad[0]], 5).tolist()} in '{items[bad[0]][0].name}' "
            f"({bad.size} files differ): remove the files of the other orientation"
        )
    row_cos, col_cos = _axial_axes(iops[0], f"series {first.get('SeriesInstanceUID')}")
    normal = np.cross(row_cos, col_cos)
    spacing_rc = _floats(first, "PixelSpacing", 2, first_path)
    if np.any(spacing_rc <= 0):
        raise DicomError(f"'{first_path.name}': PixelSpacing must be positive, got {spacing_rc}")
    ipps = np.array([_floats(ds, "ImagePositionPatient", 3, p) for p, ds in items])
    along = ipps @ normal
    order = np.argsort(along, kind="stable")
    ipps, along = ipps[order], along[order]
    names = [items[i][0].name for i in order]

    # gantry tilt: slice positions must lie along the normal
    delta = ipps - ipps[0]
    d_along = delta @ normal
    in_plane = np.linalg.norm(delta - d_along[:, None] * normal, axis=1)
    tol = 0.01 + 1e-4 * np.abs(d_along)
    if np.any(in_plane > tol):
        k = int(np.argmax(in_plane - tol))
        angle = np.degrees(np.arctan2(in_plane[k], abs(d_along[k]) or 1e-12))
        raise GeometryError(
            f"slice positions are not along the slice normal {normal.tolist()}: "
            f"'{names[k]}' is shifted {in_plane[k]:.3f} mm in-plane over "
            f"{abs(d_along[k]):.3f} mm along the normal (gantry tilt about {angle:.2f} deg). "
            "Tilted CT is not supported: resample it to an untilted grid first"
        )
    if along.size > 1:
        steps = np.diff(along)
        dup = np.flatnonzero(steps <= _DUPLICATE_TOL_MM)
        if dup.size:
            listing = "; ".join(
                f"'{names[i]}' and '{names[i + 1]}' at {along[i]:.3f} mm" for i in dup[:5]
            )
            raise SeriesError(
                f"{dup.size} duplicate slice position(s) along the slice normal: {listing}: "
                "remove the duplicate files (or choose one series) and retry"
            )
        if along.size > 2:
            median = float(np.median(steps))
            gaps = np.flatnonzero(steps > _GAP_FACTOR * median)
            if gaps.size:
                listing = "; ".join(
                    f"{steps[i]:.3f} mm between '{names[i]}' ({along[i]:.3f} mm) and "
                    f"'{names[i + 1]}' ({along[i + 1]:.3f} mm), about "
                    f"{round(steps[i] / median) - 1} missing"
                    for i in gaps[:5]
                )
                raise SeriesError(
                    f"missing slice(s): gap larger than {_GAP_FACTOR} x the median spacing "
                    f"{median:.3f} mm: {listing}: add the missing files or export the "
                    "complete series"
                )
        offsets = along - along[0]
        slice_spacing = float(offsets[-1] / (offsets.size - 1))
    else:
        offsets = None
        ds0 = items[order[0]][1]
        slice_spacing = 0.0
        for kw in ("SpacingBetweenSlices", "SliceThickness"):
            try:
                slice_spacing = float(ds0.get(kw) or 0.0)
            except (TypeError, ValueError):
                slice_spacing = 0.0
            if slice_spacing > 0:
                break
        if slice_spacing <= 0:
            slice_spacing = 1.0
    grid = Grid(
        shape=(len(items), _int(first, "Rows", 0, first_path),
               _int(first, "Columns", 0, first_path)),
        origin_mm=ipps[0],
        spacing_mm=(slice_spacing, float(spacing_rc[0]), float(spacing_rc[1])),
        direction=np.stack([normal, col_cos, row_cos]),
        slice_offsets_mm=offsets,
    )
    return [int(i) for i in order], grid


def _text(ds: Dataset, keyword: str) -> str:
    v = ds.get(keyword, "")
    return "" if v is None else str(v)


def _series_from(
    headers: list[Dataset], paths: list[str], grid: Grid, volume_hu: NDArray
) -> CTSeries:
    ds = headers[0]
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID"):
        values = {_text(h, keyword) for h in headers}
        if len(values) != 1 or "" in values:
            raise SeriesError(
                f"{keyword} must be present and the same in every slice, found "
                f"{sorted(values)}: the series is not one consistent CT"
            )
    patient = PatientInfo(
        name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
    )
    study = StudyInfo(
        date=_text(ds, "StudyDate"),
        time=_text(ds, "StudyTime"),
        study_id=_text(ds, "StudyID")[:16],
        accession_number=_text(ds, "AccessionNumber")[:16],
        referring_physician=_text(ds, "ReferringPhysicianName"),
        description=_text(ds, "StudyDescription")[:64],
    )
    volume_hu.setflags(write=False)
    return CTSeries(
        volume_hu=volume_hu,
        grid=grid,
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
        sop_class_uids=tuple(_text(h, "SOPClassUID") for h in headers),
        sop_instance_uids=tuple(_text(h, "SOPInstanceUID") for h in headers),
        patient=patient,
        study=study,
        patient_position=_text(ds, "PatientPosition"),
        headers=tuple(headers),
        paths=tuple(paths),
    )


def _int(ds: Dataset, keyword: str, default: int, path: Path) -> int:
    try:
        value = ds.get(keyword, default)
        return default if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomError(
            f"'{path.name}': {keyword} must be a whole number, got {ds.get(keyword)!r}"
        ) from None


def _rescale(ds: Dataset, path: Path) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept of a CT slice (type 1 in the CT Image module).

    Missing values are refused, not defaulted to 1 and 0: raw stored values of
    0..4095 read as HU would make air look like soft tissue (an External of twice the
    body volume).
    """
    values = []
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        raw = ds.get(keyword)
        if raw is None or str(raw).strip() == "":
            raise DicomError(
                f"'{path.name}': {keyword} (0028,{'1053' if 'Slope' in keyword else '1052'}) "
                "is missing: the CT Image module requires it to turn stored values into "
                "HU; without it the HU (and the body outline) would be wrong. Export the "
                "CT with its rescale attributes"
            )
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):
            value = float("nan")
        if not np.isfinite(value):
            raise DicomError(f"'{path.name}': {keyword} must be a finite number, got {raw!r}")
        values.append(value)
    slope, intercept = values
    if slope == 0:
        raise DicomError(
            f"'{path.name}': RescaleSlope is 0, which would make every voxel "
            f"{intercept:g} HU: the header is corrupt"
        )
    return slope, intercept


def load_ct_series(
    folder: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    recursive: bool = False,
) -> CTSeries:
    """Load a planning CT from a folder of DICOM files.

    Parameters
    ----------
    folder
        Folder holding the CT image files (other files and non-image DICOM objects,
        e.g. an RTSTRUCT, are ignored).
    series_uid
        SeriesInstanceUID to load when the folder holds several CT series.
    recursive
        Also read files in sub-folders.

    Returns
    -------
    CTSeries
        HU volume ``[slice, row, column]`` (RescaleSlope/RescaleIntercept applied),
        its grid, UIDs and headers, slices sorted along the slice normal.

    Raises
    ------
    SeriesError
        No CT series, several CT series and no ``series_uid``, duplicate or missing
        slices, inconsistent image size, pixel spacing or orientation, or a broken
        image file in the folder (a DICOM file that cannot be parsed, or an image
        without SeriesInstanceUID, Rows or ImagePositionPatient: a truncated slice is
        refused, never dropped).
    GeometryError
        Gantry tilt, oblique or non-axial orientation.
    DicomError
        A slice misses a required attribute (RescaleSlope and RescaleIntercept are
        required; RescaleSlope 0 is refused) or its pixel data cannot be decoded.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging.grid import Grid
    >>> d = tempfile.mkdtemp()
    >>> g = Grid((3, 4, 5), origin_mm=(-2, -2, 10), spacing_mm=(2.5, 1, 1))
    >>> _ = write_ct_series(d, np.full((3, 4, 5), 40.0), g)
    >>> ct = load_ct_series(d)
    >>> ct.volume_hu.shape, int(ct.volume_hu[0, 0, 0]), ct.grid.spacing_mm
    ((3, 4, 5), 40, (2.5, 1.0, 1.0))
    """
    folder = Path(folder)
    groups, broken = _scan_all(folder, recursive)
    with _corrupt_as_dicom_error(f"a CT file in '{folder}'"):
        return _load_series(folder, groups, broken, series_uid)


def _load_series(
    folder: Path,
    groups: dict[str, list[tuple[Path, Dataset]]],
    broken: list[tuple[Path, str, str]],
    series_uid: str | None,
) -> CTSeries:
    summaries = {uid: _summary(uid, items) for uid, items in groups.items()}
    found = "; ".join(str(s) for s in summaries.values()) or "no image series"
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesError(
                f"series {series_uid} is not in '{folder}'; found: {found}"
            )
        chosen = series_uid
    else:
        ct_uids = [u for u, s in summaries.items() if s.modality == "CT"]
        if not ct_uids:
            raise SeriesError(f"no CT image series in '{folder}'; found: {found}")
        if len(ct_uids) > 1:
            listing = "; ".join(str(summaries[u]) for u in sorted(ct_uids))
            raise SeriesError(
                f"'{folder}' holds {len(ct_uids)} CT series: {listing}: choose one with "
                "--series-uid UID (rtplan structures; library: series_uid=) or put each "
                "series in its own folder"
            )
        chosen = ct_uids[0]
    if summaries[chosen].modality != "CT":
        raise SeriesError(f"series {summaries[chosen]} is not a CT series")
    bad = [(p, why) for p, why, uid in broken if uid in ("", chosen)]
    if bad:
        listing = "; ".join(f"'{p.name}' {why}" for p, why in bad[:5])
        raise SeriesError(
            f"{len(bad)} broken DICOM image file(s) in '{folder}': {listing}: a slice of "
            "the series may be missing; repair or re-export the series, or remove the "
            "broken files"
        )
    items = groups[chosen]
    for p, ds in items:
        if _int(ds, "NumberOfFrames", 1, p) > 1:
            raise DicomError(
                f"'{p.name}' is a multi-frame image; only single-frame CT Image Storage "
                "series are supported"
            )
    order, grid = _geometry(items)
    items = [items[i] for i in order]

    volume = _volume(items, grid, lambda p, ds: pydicom.dcmread(p).pixel_array)
    return _series_from(
        [ds for _, ds in items], [str(p) for p, _ in items], grid, volume
    )


def _volume(
    items: list[tuple[Path, Dataset]],
    grid: Grid,
    pixels: Callable[[Path, Dataset], NDArray],
) -> NDArray:
    """HU volume of sorted slices: int16 when the rescale is integral and fits."""
    rescales = [_rescale(ds, p) for p, ds in items]
    integral = all(float(s).is_integer() and float(b).is_integer() for s, b in rescales)
    # float64 per slice (exact rescale), stored as float32 (exact for integral HU; the
    # int16 volume below when they fit): no float64 copy of the whole volume
    volume = np.empty(grid.shape, dtype=np.float32)
    for k, ((p, ds), (slope, intercept)) in enumerate(zip(items, rescales, strict=True)):
        try:
            arr = pixels(p, ds)
        except Exception as exc:  # decoder errors come in many types
            raise DicomError(
                f"cannot decode the pixel data of '{p}': {exc}; for compressed transfer "
                "syntaxes install a pydicom pixel-data plugin (e.g. pylibjpeg)"
            ) from exc
        if arr.shape != grid.shape[1:]:
            raise DicomError(
                f"'{p.name}': pixel data shape {arr.shape} differs from Rows x Columns "
                f"{grid.shape[1:]}"
            )
        volume[k] = arr * np.float64(slope) + np.float64(intercept)
    if integral and volume.min() >= -32768 and volume.max() <= 32767:
        return volume.astype(np.int16)
    return volume


def _without_pixels(ds: Dataset) -> Dataset:
    header = Dataset()
    for elem in ds:
        if elem.tag.group != 0x7FE0:
            header.add(elem)
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    return header


def ct_series_from_datasets(datasets: Sequence[Dataset]) -> CTSeries:
    """Build a :class:`CTSeries` from CT slice datasets already in memory.

    The same checks as :func:`load_ct_series` apply (one series, sorting along the
    slice normal, geometry); use it for slices from a network query or another
    library (e.g. an rt-utils ``RTStruct.series_data``).

    Parameters
    ----------
    datasets
        Slice datasets with pixel data, in any order, all of one series.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((3, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.zeros(g.shape), g)
    >>> slices = [pydicom.dcmread(p) for p in reversed(ct.paths)]
    >>> ct_series_from_datasets(slices).sop_instance_uids == ct.sop_instance_uids
    True
    """
    datasets = list(datasets)
    if not datasets:
        raise SeriesError("no CT slices given")
    groups: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for i, ds in enumerate(datasets):
        name = ds.filename if isinstance(getattr(ds, "filename", None), str) else ""
        groups[_text(ds, "SeriesInstanceUID")].append((Path(name or f"dataset[{i}]"), ds))
    if len(groups) > 1:
        listing = "; ".join(str(_summary(u, it)) for u, it in sorted(groups.items()))
        raise SeriesError(f"the slices belong to {len(groups)} series: {listing}: pass one")
    ((uid, items),) = groups.items()
    with _corrupt_as_dicom_error("a CT slice dataset"):
        return _series_of(uid, items)


def _series_of(uid: str, items: list[tuple[Path, Dataset]]) -> CTSeries:
    summary = _summary(uid, items)
    if summary.modality != "CT":
        raise SeriesError(f"series {summary} is not a CT series")
    order, grid = _geometry(items)
    items = [items[i] for i in order]
    volume = _volume(items, grid, lambda p, ds: ds.pixel_array)
    paths = [str(p) if p.name and not p.name.startswith("dataset[") else "" for p, _ in items]
    return _series_from([_without_pixels(ds) for _, ds in items], paths, grid, volume)


# ----------------------------------------------------------------------------- writing
def _check_writable_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"output '{folder}' exists and is not a folder")
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"output folder '{folder}' is not empty: choose an empty or new folder, or "
                "pass --force (overwrite=True) to replace the CT_*.dcm files in it"
            )
        others = [
            p.name
            for p in folder.iterdir()
            if p.suffix.lower() == ".dcm" and not _WRITTEN_NAME.match(p.name)
        ]
        if others:
            raise OutputExistsError(
                f"output folder '{folder}' holds DICOM files rtplan did not write "
                f"({others[:3]}...): they would mix with the new series; choose another "
                "folder"
            )


def write_ct_series(
    folder: str | os.PathLike[str],
    volume_hu: ArrayLike,
    grid: Grid,
    *,
    patient: PatientInfo | dict | None = None,
    study: StudyInfo | dict | None = None,
    patient_position: str = "HFS",
    series_description: str = "rtplan synthetic CT",
    body_part: str = "PELVIS",
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    overwrite: bool = False,
) -> CTSeries:
    """Write a volume as a DICOM CT Image series, one file per slice.

    Parameters
    ----------
    folder
        Output folder (created; must be empty unless ``overwrite``). Files are named
        ``CT_0000.dcm``, ``CT_0001.dcm``, ... in grid slice order.
    volume_hu
        ``[slice, row, column]`` CT numbers in HU; rounded to integers and stored as
        signed 16-bit with RescaleIntercept -1024, RescaleSlope 1.
    grid
        Geometry; must be axial (direction cosines +-1) and right-handed
        (``direction[0]`` = ``direction[2] x direction[1]``) so that reading the series
        back gives the same grid. Irregular slice spacing is written as is.
    patient, study
        Patient and study values (type 2 attributes, empty by default).
    patient_position
        PatientPosition (0018,5100): ``HFS``, ``FFS``, ``HFP``, ``FFP``, ...
    series_description
        SeriesDescription.
    body_part
        BodyPartExamined (an unpaired part such as ``PELVIS``, ``ABDOMEN``, ``HEAD``);
        empty writes an empty Laterality instead.
    study_instance_uid, frame_of_reference_uid
        Reuse existing UIDs; new ones are generated by default.
    overwrite
        Replace an earlier series written by this function in ``folder``.

    Returns
    -------
    CTSeries
        The series as :func:`load_ct_series` would read it back.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.full((2, 3, 4), -1000.0), g,
    ...                      patient={"name": "Demo^Patient", "patient_id": "D1"})
    >>> ct.patient.name, int(ct.volume_hu.min()), len(ct.sop_instance_uids)
    ('Demo^Patient', -1000, 2)
    """
    folder = Path(folder)
    vol = np.asarray(volume_hu, dtype=float)
    if vol.shape != grid.shape:
        raise GeometryError(f"volume shape {vol.shape} differs from grid shape {grid.shape}")
    if not np.all(np.isfinite(vol)):
        raise InputError("CT volume holds NaN or infinite values: give finite HU")
    pat = _validated(_WritePatient, patient, "patient")
    stu = _validated(StudyInfo, study, "study")
    _check_writable_grid(grid)
    _check_writable_folder(folder, overwrite)

    stored = np.clip(np.rint(vol) + 1024.0, -32768, 32767).astype(np.int16)
    now = _dt.datetime.now()
    study_uid = study_instance_uid or generate_uid()
    series_uid = generate_uid()
    for_uid = frame_of_reference_uid or generate_uid()
    base = _ct_base_dataset(
        pat, stu, study_uid, series_uid, for_uid, grid, patient_position,
        series_description, body_part, now,
    )
    headers = _slice_datasets(base, grid)
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for old in folder.iterdir():
            if _WRITTEN_NAME.match(old.name):
                old.unlink()
    paths = []
    for k, ds in enumerate(headers):
        ds.PixelData = stored[k].tobytes()
        path = folder / f"CT_{k:04d}.dcm"
        def save(t: Path, ds: Dataset = ds) -> None:
            ds.save_as(t, enforce_file_format=True)

        atomic_write(path, save, overwrite=overwrite)
        del ds.PixelData
        paths.append(str(path))
    # read back what was written: DS strings round the positions
    pairs = [(Path(p), h) for p, h in zip(paths, headers, strict=True)]
    order, read_grid = _geometry(pairs)
    if order != list(range(grid.shape[0])):
        raise GeometryError("written slices do not read back in grid order")  # pragma: no cover
    return _series_from(headers, paths, read_grid, (stored.astype(np.int32) - 1024).astype(
        np.int16))


def _validated(model: type[BaseModel], value: object, what: str):
    if isinstance(value, BaseModel):
        value = value.model_dump()
    try:
        return model.model_validate(dict(value or {}))  # type: ignore[call-overload]
    except ValidationError as exc:
        raise from_validation_error(exc, what) from exc


def _ct_base_dataset(
    pat: PatientInfo,
    stu: StudyInfo,
    study_uid: str,
    series_uid: str,
    for_uid: str,
    grid: Grid,
    patient_position: str,
    series_description: str,
    body_part: str,
    now: _dt.datetime,
) -> Dataset:
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds = new_dataset(CTImageStorage, now)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    set_patient(ds, pat)
    set_study(ds, stu, study_uid, date=date, time=time)
    set_series(ds, "CT", series_uid, number="1", description=series_description, date=date,
               time=time, body_part=body_part)
    set_equipment(ds, "rtplan synthetic CT")
    ds.PatientPosition = patient_position
    # General Image, CT Image
    ds.ContentDate = date
    ds.ContentTime = time
    ds.AcquisitionNumber = "1"
    ds.KVP = "120"
    _set_image_geometry(ds, grid, for_uid)
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def _check_writable_grid(grid: Grid) -> None:
    """Refuse a grid that would not read back as itself: not axial, or left-handed."""
    row_cos, col_cos = _axial_axes(
        np.concatenate([grid.direction[2], grid.direction[1]]), "grid"
    )
    if not np.allclose(grid.direction[0], np.cross(row_cos, col_cos), atol=1e-6):
        raise GeometryError(
            "grid slice direction must be the right-handed normal "
            f"{np.cross(row_cos, col_cos).tolist()} (got {grid.direction[0].tolist()}): "
            "reverse the slice order of the volume and its grid"
        )


def _set_image_geometry(ds: Dataset, grid: Grid, frame_of_reference_uid: str) -> None:
    """Frame of Reference, the per-series Image Plane attributes and a signed 16-bit
    Image Pixel module, as the CT and PET writers store them."""
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = ds_strings(
        np.concatenate([grid.direction[2], grid.direction[1]])
    )
    ds.SliceThickness = format_ds(grid.spacing_mm[0])
    ds.PixelSpacing = ds_strings(grid.spacing_mm[1:])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.shape[1]
    ds.Columns = grid.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1


def _slice_datasets(base: Dataset, grid: Grid) -> list[Dataset]:
    """One copy of ``base`` per grid slice with a new SOPInstanceUID, InstanceNumber,
    ImagePositionPatient and SliceLocation (no pixel data)."""
    n = grid.shape[0]
    positions = grid.index_to_world(np.stack([np.arange(n), np.zeros(n), np.zeros(n)], axis=1))
    out = []
    for k in range(n):
        ds = copy.deepcopy(base)
        sop_uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = str(k + 1)
        ds.ImagePositionPatient = ds_strings(positions[k])
        ds.SliceLocation = format_ds(float(positions[k] @ grid.direction[0]))
        out.append(ds)
    return out
