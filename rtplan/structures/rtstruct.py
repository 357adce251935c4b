"""RTSTRUCT export and import.

Export (:func:`build_rtstruct`, :func:`write_rtstruct`): an RT Structure Set that
references the CT's study, series, frame of reference and every slice (in the
ReferencedFrameOfReferenceSequence and per contour), with RTROIInterpretedType,
ROIDisplayColor and ROIDescription set, CLOSED_PLANAR contours whose decimal strings fit
DICOM's 16 characters, no empty ContourSequence, new SOP and series UIDs, written
atomically and never over an existing file unless asked.

Import (:func:`read_rtstruct`, :func:`rasterize_polygons`, :func:`rtstruct_masks`):
contours are matched to CT slices by the position of their plane along the slice
normal (no per-contour image reference is needed), holes follow from even-odd nesting
(the polygons of one ROI on one slice are XOR-ed), and a voxel is inside when its
centre is inside (a half-open rule decides centres exactly on an edge, so that
polygons on voxel edges give exactly their area). :func:`rtstruct_masks` applies the
slab rule of ``rtplan.structures.raster`` along the normal (each contour plane stands
for half a contour spacing either side), the rule the DVHs use on dose grids.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import ArrayLike, NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RTStructureSetStorage,
    generate_uid,
)

from rtplan._shared.dicom import ds_bytes, read_dataset, set_equipment, set_series
from rtplan._shared.io import atomic_write
from rtplan.errors import (
    DicomError,
    GeometryError,
    GridMismatchError,
    InputError,
    InvalidParameterError,
)
from rtplan.imaging.ct import CTSeries
from rtplan.imaging.grid import Grid
from rtplan.structures.contour import PlanarContour, ROIContours
from rtplan.structures.raster import polygons_on_slices, slab_mask, snapped_to_slices

__all__ = [
    "RT_ROI_INTERPRETED_TYPES",
    "StructureSet",
    "StructureSetROI",
    "build_rtstruct",
    "rasterize_polygons",
    "read_rtstruct",
    "rtstruct_masks",
    "write_rtstruct",
]

#: Defined terms of RTROIInterpretedType (3006,00A4), PS3.3 C.8.8.8.
RT_ROI_INTERPRETED_TYPES = frozenset(
    {
        "EXTERNAL", "PTV", "CTV", "GTV", "TREATED_VOLUME", "IRRAD_VOLUME", "OAR",
        "BOLUS", "AVOIDANCE", "ORGAN", "MARKER", "REGISTRATION", "ISOCENTER",
        "CONTRAST_AGENT", "CAVITY", "BRACHY_CHANNEL", "BRACHY_ACCESSORY",
        "BRACHY_SRC_APP", "BRACHY_CHNL_SHLD", "SUPPORT", "FIXATION", "DOSE_REGION",
        "CONTROL", "DOSE_MEASUREMENT",
    }
)
_GENERATION_ALGORITHMS = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
#: Study Component Management SOP Class, the conventional RTReferencedStudy class.
_STUDY_COMPONENT_CLASS = "1.2.840.10008.3.1.2.3.1"
#: Largest distance (mm) of a written contour point from its slice plane.
_WRITE_PLANE_TOL_MM = 0.01
#: ContourData (3006,0050).
_CONTOUR_DATA = Tag(0x3006, 0x0050)
#: Longest value an explicit-VR DS element can hold (16-bit length).
_EXPLICIT_MAX_BYTES = 0xFFFE


# ============================================================================ export
def _check_rois(rois: Sequence[ROIContours], ct: CTSeries) -> None:
    seen: dict[str, str] = {}
    n = ct.grid.shape[0]
    pos = ct.grid.slice_positions_mm
    for roi in rois:
        if not isinstance(roi, ROIContours):
            raise InputError(f"expected ROIContours, got {type(roi).__name__}")
        name = roi.name
        if not name or not name.strip() or len(name) > 64 or "\\" in name:
            raise InvalidParameterError(
                f"ROI name {name!r} is not a valid ROIName: give 1-64 characters, no "
                "backslash (TG-263 names have at most 16)"
            )
        if name.lower() in seen:
            raise InvalidParameterError(
                f"ROI names must be unique (ignoring case): {seen[name.lower()]!r} and "
                f"{name!r}: rename one"
            )
        seen[name.lower()] = name
        if roi.roi_type not in RT_ROI_INTERPRETED_TYPES:
            raise InvalidParameterError(
                f"ROI {name!r}: RTROIInterpretedType {roi.roi_type!r} is not a DICOM defined "
                f"term; use one of {sorted(RT_ROI_INTERPRETED_TYPES)}"
            )
        if len(roi.description) > 64:
            raise InvalidParameterError(
                f"ROI {name!r}: description has {len(roi.description)} characters, "
                "ROIDescription holds at most 64"
            )
        c: PlanarContour
        for c in roi.contours:
            if not 0 <= c.slice_index < n:
                raise GeometryError(
                    f"ROI {name!r}: contour on slice {c.slice_index}, but the CT has slices "
                    f"0-{n - 1}: build the contours on this CT's grid"
                )
            along = (c.points_mm - ct.grid.origin_mm) @ ct.grid.direction[0]
            off = float(np.max(np.abs(along - pos[c.slice_index])))
            if off > _WRITE_PLANE_TOL_MM:
                raise GeometryError(
                    f"ROI {name!r}: a contour of slice {c.slice_index} lies up to {off:.4f} mm "
                    f"off that slice's plane (allowed {_WRITE_PLANE_TOL_MM} mm): contours "
                    "must lie on the CT slice planes"
                )


def _sop_ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _needs_utf8(texts: Iterable[str]) -> bool:
    return any(not t.isascii() for t in texts)


def build_rtstruct(
    ct: CTSeries,
    rois: Sequence[ROIContours],
    *,
    label: str = "rtplan",
    structure_set_name: str = "",
    series_description: str = "rtplan structures",
    operator: str = "",
    when: _dt.datetime | None = None,
) -> pydicom.FileDataset:
    """Build an RT Structure Set dataset for contours drawn on a CT series.

    Parameters
    ----------
    ct
        The CT the contours lie on (see :func:`rtplan.imaging.load_ct_series`).
    rois
        The ROIs, numbered 1, 2, ... in the order given. An ROI without contours is
        written without a ContourSequence (never an empty one).
    label
        StructureSetLabel (at most 16 characters).
    structure_set_name
        StructureSetName (optional).
    series_description
        SeriesDescription of the new RTSTRUCT series.
    operator
        OperatorsName (type 2; empty by default).
    when
        Creation date and time (default: now).

    Returns
    -------
    pydicom.FileDataset
        The dataset, with file meta information, ready to save.

    Raises
    ------
    InvalidParameterError
        Duplicate or invalid ROI names, a blank or unknown RTROIInterpretedType.
    GeometryError
        A contour on a slice the CT does not have, or off its slice plane.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> g = Grid((2, 8, 8), origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1))
    >>> ct = write_ct_series(tempfile.mkdtemp(), np.zeros(g.shape), g)
    >>> square = PlanarContour(1, [[1.5, 1.5, 3], [5.5, 1.5, 3], [5.5, 5.5, 3], [1.5, 5.5, 3]])
    >>> ds = build_rtstruct(ct, [ROIContours("GTV_1", "GTV", (255, 0, 0), [square])])
    >>> ds.Modality, ds.StructureSetROISequence[0].ROIName
    ('RTSTRUCT', 'GTV_1')
    >>> [float(v) for v in ds.ROIContourSequence[0].ContourSequence[0].ContourData[:3]]
    [1.5, 1.5, 3.0]
    """
    rois = list(rois)
    _check_rois(rois, ct)
    if len(label) > 16:
        raise InvalidParameterError(f"StructureSetLabel {label!r} is longer than 16 characters")
    now = when or _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    first = ct.headers[0]

    meta = FileMetaDataset()
    sop_uid = generate_uid()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)

    texts = [r.name for r in rois] + [r.description for r in rois] + [
        str(first.get("PatientName", "")), label, structure_set_name, series_description,
    ]
    charset = first.get("SpecificCharacterSet")
    if charset:
        ds.SpecificCharacterSet = charset
    elif _needs_utf8(texts):
        ds.SpecificCharacterSet = "ISO_IR 192"
    # SOP Common
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    # Patient and General Study: copied from the CT
    ds.PatientName = first.get("PatientName", "")
    ds.PatientID = first.get("PatientID", "")
    ds.PatientBirthDate = first.get("PatientBirthDate", "")
    ds.PatientSex = first.get("PatientSex", "")
    ds.StudyInstanceUID = ct.study_instance_uid
    ds.StudyDate = first.get("StudyDate", "")
    ds.StudyTime = first.get("StudyTime", "")
    ds.ReferringPhysicianName = first.get("ReferringPhysicianName", "")
    ds.StudyID = first.get("StudyID", "")
    ds.AccessionNumber = first.get("AccessionNumber", "")
    if first.get("StudyDescription"):
        ds.StudyDescription = first.StudyDescription
    # RT Series
    ct_series_number = str(first.get("SeriesNumber", "") or "")
    set_series(ds, "RTSTRUCT", generate_uid(), number="2" if ct_series_number == "1" else "1",
               description=series_description, date=date, time=time)
    ds.OperatorsName = operator
    # Frame of Reference (in the RT Structure Set IOD since DICOM 2024)
    ds.FrameOfReferenceUID = ct.frame_of_reference_uid
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    set_equipment(ds, "rtplan")
    # Structure Set
    ds.StructureSetLabel = label
    if structure_set_name:
        ds.StructureSetName = structure_set_name[:64]
    ds.StructureSetDate = date
    ds.StructureSetTime = time
    ds.InstanceNumber = "1"

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = ct.series_instance_uid
    series_ref.ContourImageSequence = DicomSequence(
        [_sop_ref(c, i) for c, i in zip(ct.sop_class_uids, ct.sop_instance_uids, strict=True)]
    )
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = _STUDY_COMPONENT_CLASS
    study_ref.ReferencedSOPInstanceUID = ct.study_instance_uid
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    for_ref = Dataset()
    for_ref.FrameOfReferenceUID = ct.frame_of_reference_uid
    for_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([for_ref])

    ss_rois, roi_contours, observations = [], [], []
    longest = 0
    for number, roi in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = ct.frame_of_reference_uid
        item.ROIName = roi.name
        if roi.description:
            item.ROIDescription = roi.description
        algorithm = roi.generation_algorithm.upper()
        item.ROIGenerationAlgorithm = (
            algorithm if algorithm in _GENERATION_ALGORITHMS else "SEMIAUTOMATIC"
        )
        ss_rois.append(item)

        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [int(v) for v in roi.color]
        contours = sorted(roi.contours, key=lambda c: c.slice_index)
        if contours:
            seq = []
            for cn, c in enumerate(contours, start=1):
                citem = Dataset()
                citem.ContourNumber = cn
                citem.ContourImageSequence = DicomSequence(
                    [_sop_ref(ct.sop_class_uids[c.slice_index],
                              ct.sop_instance_uids[c.slice_index])]
                )
                citem.ContourGeometricType = "CLOSED_PLANAR"
                citem.NumberOfContourPoints = c.n_points
                data = ds_bytes(c.points_mm.ravel().tolist())
                longest = max(longest, len(data))
                # raw DS bytes: the text is already valid, skip per-value conversion
                citem[_CONTOUR_DATA] = RawDataElement(
                    _CONTOUR_DATA, "DS", len(data), data, 0, False, True
                )
                seq.append(citem)
            rc.ContourSequence = DicomSequence(seq)
        roi_contours.append(rc)

        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = roi.roi_type
        obs.ROIInterpreter = operator
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(ss_rois)
    ds.ROIContourSequence = DicomSequence(roi_contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    implicit = longest > _EXPLICIT_MAX_BYTES
    if implicit:
        # explicit VR stores a DS length in 16 bits: long contours need implicit VR
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    for rc in roi_contours:
        for citem in rc.get("ContourSequence", []):
            # mark the items as already encoded so that pydicom writes the raw contour
            # bytes as they are instead of converting every value (slow)
            citem.set_original_encoding(implicit, True, citem._character_set)
    return ds


def write_rtstruct(
    path: str | os.PathLike[str],
    ct: CTSeries,
    rois: Sequence[ROIContours],
    *,
    overwrite: bool = False,
    **options: object,
) -> Path:
    """Write an RTSTRUCT file for contours on a CT series, atomically.

    Parameters
    ----------
    path
        Output file; refused when it exists unless ``overwrite``.
    ct, rois
        As for :func:`build_rtstruct`.
    overwrite
        Replace an existing file.
    **options
        Passed to :func:`build_rtstruct` (``label``, ``series_description``, ...).

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile, os
    >>> from rtplan.imaging import Grid, write_ct_series
    >>> d = tempfile.mkdtemp()
    >>> g = Grid((1, 4, 4), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> ct = write_ct_series(os.path.join(d, "ct"), np.zeros(g.shape), g)
    >>> tri = PlanarContour(0, [[0.5, 0.5, 0], [2.5, 0.5, 0], [0.5, 2.5, 0]])
    >>> roi = ROIContours("A", "ORGAN", (0, 0, 255), [tri])
    >>> p = write_rtstruct(os.path.join(d, "RS.dcm"), ct, [roi])
    >>> read_rtstruct(p).names
    ('A',)
    """
    ds = build_rtstruct(ct, rois, **options)  # type: ignore[arg-type]
    return atomic_write(
        path, lambda t: ds.save_as(t, enforce_file_format=True), overwrite=overwrite
    )


# ============================================================================ import
@dataclass(frozen=True, eq=False)
class StructureSetROI:
    """One ROI read from an RTSTRUCT: its CLOSED_PLANAR polygons in patient coordinates.

    Attributes
    ----------
    number
        ROINumber.
    name
        ROIName.
    roi_type
        RTROIInterpretedType (may be empty in files from other tools).
    color
        ROIDisplayColor, or None.
    description
        ROIDescription.
    polygons_mm
        ``(N, 3)`` LPS points (mm) of every CLOSED_PLANAR contour.
    frame_of_reference_uid
        ReferencedFrameOfReferenceUID of the ROI.
    n_skipped
        Contours of other geometric types (POINT, OPEN_PLANAR, ...) not kept.
    """

    number: int
    name: str
    roi_type: str
    color: tuple[int, int, int] | None
    description: str
    polygons_mm: tuple[NDArray[np.float64], ...]
    frame_of_reference_uid: str
    n_skipped: int = 0


@dataclass(frozen=True, eq=False)
class StructureSet:
    """The ROIs of an RTSTRUCT file, independent of any image grid."""

    rois: tuple[StructureSetROI, ...]
    sop_instance_uid: str
    frame_of_reference_uids: tuple[str, ...]
    referenced_series_uids: tuple[str, ...]
    label: str
    path: str

    @property
    def names(self) -> tuple[str, ...]:
        """ROI names in file order."""
        return tuple(r.name for r in self.rois)

    def roi(self, name: str) -> StructureSetROI:
        """The ROI called ``name`` (exact match, else a unique case-insensitive one).

        Raises :class:`InputError` listing the available names otherwise.
        """
        exact = [r for r in self.rois if r.name == name]
        if len(exact) == 1:
            return exact[0]
        folded = [r for r in self.rois if r.name.strip().lower() == name.strip().lower()]
        if len(exact) > 1 or len(folded) > 1:
            raise InputError(
                f"{len(exact) or len(folded)} ROIs are called {name!r} in '{self.path}': "
                "the name is ambiguous"
            )
        if folded:
            return folded[0]
        raise InputError(
            f"no ROI called {name!r} in '{self.path}'; available: {list(self.names)}"
        )


def _contour_points(item: Dataset) -> NDArray[np.float64]:
    raw = item.get_item("ContourData")
    if raw is None:
        return np.empty((0, 3))
    value = raw.value
    if isinstance(value, bytes | bytearray):  # fast path: parse the raw DS text
        text = bytes(value).decode("ascii", "replace").strip(" \0")
        try:
            arr = np.array(text.split("\\"), dtype=float) if text else np.empty(0)
        except ValueError as exc:
            raise DicomError(f"unreadable ContourData {text[:60]!r}...") from exc
    else:
        arr = np.asarray(item.ContourData, dtype=float)
    if arr.size % 3:
        raise DicomError(f"ContourData holds {arr.size} numbers, not a multiple of 3")
    if not np.all(np.isfinite(arr)):
        raise DicomError("ContourData holds NaN or infinite coordinates")
    return arr.reshape(-1, 3)


def read_rtstruct(path: str | os.PathLike[str] | Dataset) -> StructureSet:
    """Read the ROIs of an RTSTRUCT file (polygons in patient coordinates, mm).

    Parameters
    ----------
    path
        RT Structure Set file, or its dataset already read.

    Returns
    -------
    StructureSet
        ROIs with name, RTROIInterpretedType, colour and CLOSED_PLANAR polygons. No image
        grid is needed; see :func:`rtstruct_masks` to make masks.

    Raises
    ------
    InputError
        The file does not exist.
    DicomError
        It cannot be read as DICOM, or is not an RTSTRUCT.

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> ss = read_rtstruct(get_path("rt_ss"))
    >>> ss.names, ss.roi("Patient").roi_type, len(ss.roi("patient").polygons_mm)
    (('patient', 'Isocenter 1', 'Isocenter 2'), 'EXTERNAL', 3)
    """
    if isinstance(path, Dataset):
        ds = path
        path = Path(str(getattr(ds, "filename", "") or "<dataset>"))
    else:
        path = Path(path)
        ds = read_dataset(path, "RTSTRUCT")
    return _structure_set(ds, path)


def _roi_number(item: Dataset, keyword: str, where: str, path: Path) -> int:
    value = item.get(keyword)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise DicomError(
            f"RTSTRUCT '{path}': an item of {where} has "
            f"{'no ' + keyword if value is None else f'{keyword} {value!r}'}, which must be "
            "a whole number: the file is incomplete or corrupt"
        ) from None


def _display_color(rc: Dataset) -> tuple[int, int, int] | None:
    """ROIDisplayColor as 3 integers 0-255, or None when absent or unreadable
    (the colour is for display only)."""
    try:
        raw = rc.get("ROIDisplayColor")
        if not raw:
            return None
        color = tuple(int(float(v)) for v in raw)
    except (TypeError, ValueError, OverflowError):
        return None
    if len(color) != 3 or not all(0 <= v <= 255 for v in color):
        return None
    return color


def _structure_set(ds: Dataset, path: Path) -> StructureSet:
    try:
        return _structure_set_unchecked(ds, path)
    except DicomError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, EOFError,
            OSError, NotImplementedError, OverflowError) as exc:
        # a truncated or corrupt file fails when pydicom parses an element lazily
        raise DicomError(
            f"RTSTRUCT '{path}' cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else ''}): the file is truncated "
            "or corrupt; export it again"
        ) from None


def _structure_set_unchecked(ds: Dataset, path: Path) -> StructureSet:
    if ds.get("SOPClassUID") != RTStructureSetStorage and ds.get("Modality") != "RTSTRUCT":
        raise DicomError(
            f"'{path}' is not an RTSTRUCT (SOPClassUID {ds.get('SOPClassUID')}, "
            f"Modality {ds.get('Modality')})"
        )
    types = {
        _roi_number(o, "ReferencedROINumber", "RTROIObservationsSequence", path):
            str(o.get("RTROIInterpretedType", "") or "")
        for o in ds.get("RTROIObservationsSequence", [])
        if "ReferencedROINumber" in o
    }
    contours: dict[int, tuple[tuple[int, int, int] | None, list[NDArray[np.float64]], int]] = {}
    for rc in ds.get("ROIContourSequence", []):
        number = _roi_number(rc, "ReferencedROINumber", "ROIContourSequence", path)
        color = _display_color(rc)
        polys: list[NDArray[np.float64]] = []
        skipped = 0
        for item in rc.get("ContourSequence", []):
            if str(item.get("ContourGeometricType", "")) != "CLOSED_PLANAR":
                skipped += 1
                continue
            pts = _contour_points(item)
            if pts.shape[0] >= 3:
                pts.setflags(write=False)
                polys.append(pts)
            else:
                skipped += 1
        contours[number] = (color, polys, skipped)
    rois = []
    for item in ds.get("StructureSetROISequence", []):
        number = _roi_number(item, "ROINumber", "StructureSetROISequence", path)
        color, polys, skipped = contours.get(number, (None, [], 0))
        rois.append(
            StructureSetROI(
                number=number,
                name=str(item.get("ROIName", "") or ""),
                roi_type=types.get(number, ""),
                color=color,
                description=str(item.get("ROIDescription", "") or ""),
                polygons_mm=tuple(polys),
                frame_of_reference_uid=str(item.get("ReferencedFrameOfReferenceUID", "") or ""),
                n_skipped=skipped,
            )
        )
    fors, series = [], []
    for f in ds.get("ReferencedFrameOfReferenceSequence", []):
        fors.append(str(f.get("FrameOfReferenceUID", "")))
        for st in f.get("RTReferencedStudySequence", []):
            for se in st.get("RTReferencedSeriesSequence", []):
                series.append(str(se.get("SeriesInstanceUID", "")))
    return StructureSet(
        rois=tuple(rois),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        frame_of_reference_uids=tuple(fors),
        referenced_series_uids=tuple(series),
        label=str(ds.get("StructureSetLabel", "") or ""),
        path=str(path),
    )


def rasterize_polygons(
    polygons_mm: Iterable[ArrayLike],
    grid: Grid,
    *,
    plane_tol_mm: float = 0.1,
    off_grid: str = "error",
) -> NDArray[np.bool_]:
    """Voxelise planar polygons (patient coordinates) onto a grid, even-odd per slice.

    Each polygon is assigned to the slice whose plane it lies on (its position along
    the slice normal, within ``plane_tol_mm``); the polygons on a slice are combined by
    even-odd nesting (a polygon inside another is a hole; one inside a hole is an
    island). A voxel is inside when its centre is inside; a centre exactly on an edge
    counts as inside on left/top edges and outside on right/bottom ones (a polygon
    along voxel edges covers exactly its area). This is the in-plane rule of
    ``rtplan.structures.raster``; a polygon fills only its own slice here (no slab rule:
    :func:`rtstruct_masks` adds it).

    Parameters
    ----------
    polygons_mm
        ``(N, 3)`` LPS points (mm) per polygon (closed implicitly).
    grid
        Target grid (any supported orientation; irregular slices allowed).
    plane_tol_mm
        Largest distance (mm) of a polygon's points from the slice plane it is put on.
    off_grid
        ``"error"`` (default) raises :class:`GeometryError` for a polygon on no slice of
        the grid; ``"ignore"`` drops it.

    Returns
    -------
    numpy.ndarray
        Boolean ``[slice, row, column]`` mask.

    Examples
    --------
    >>> g = Grid((1, 4, 6), origin_mm=(0, 0, 0), spacing_mm=(2, 1, 1))
    >>> square = [[0.5, 0.5, 0], [3.5, 0.5, 0], [3.5, 2.5, 0], [0.5, 2.5, 0]]
    >>> rasterize_polygons([square], g)[0].astype(int)
    array([[0, 0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0]])
    """
    return polygons_on_slices(polygons_mm, grid, plane_tol_mm=plane_tol_mm, off_grid=off_grid)


def check_roi_frame(roi: StructureSetROI, target: CTSeries | Grid, check: bool = True) -> None:
    """Raise :class:`GridMismatchError` when ``check``, ``target`` is a CT and the ROI's
    ReferencedFrameOfReferenceUID is another one."""
    if (
        isinstance(target, CTSeries)
        and check
        and roi.frame_of_reference_uid
        and roi.frame_of_reference_uid != target.frame_of_reference_uid
    ):
        raise GridMismatchError(
            f"ROI {roi.name!r} is in frame of reference {roi.frame_of_reference_uid}, "
            f"the CT in {target.frame_of_reference_uid}: the RTSTRUCT belongs to another "
            "scan. Use the RTSTRUCT drawn on this planning CT, or register the structure "
            "onto it first (library: check_frame_of_reference=False if you know both "
            "share coordinates)"
        )


def rtstruct_masks(
    source: str | os.PathLike[str] | StructureSet,
    target: CTSeries | Grid,
    names: Sequence[str] | None = None,
    *,
    plane_tol_mm: float = 0.1,
    off_grid: str = "error",
    check_frame_of_reference: bool = True,
) -> dict[str, NDArray[np.bool_]]:
    """Masks of RTSTRUCT ROIs on a CT grid.

    Parameters
    ----------
    source
        RTSTRUCT path, or a :class:`StructureSet` from :func:`read_rtstruct`.
    target
        The CT (its FrameOfReferenceUID is checked) or just a grid.
    names
        ROI names to rasterise (looked up as in :meth:`StructureSet.roi`); default all
        ROIs with contours.
    plane_tol_mm, off_grid
        See :func:`rasterize_polygons`.
    check_frame_of_reference
        With a CT, refuse ROIs whose ReferencedFrameOfReferenceUID differs from the CT's.

    Returns
    -------
    dict
        ROI name -> boolean ``[slice, row, column]`` mask. Every contour must lie on a CT
        slice (within ``plane_tol_mm``); each contour plane then fills the CT slices of
        its slab ``[z - t/2, z + t/2)``, ``t`` the ROI's contour spacing (a single
        plane: its own slice), so an ROI contoured on every other slice also covers
        the slices between (``rtplan.structures.raster``, the DVH's convention). In
        plane, a voxel is inside when its centre is inside (even-odd).

    Examples
    --------
    >>> from pydicom.examples import get_path
    >>> g = Grid((3, 30, 40), origin_mm=(-195, -145, -200), spacing_mm=(10, 10, 10))
    >>> m = rtstruct_masks(get_path("rt_ss"), g, ["patient"])
    >>> m["patient"].shape, int(m["patient"][0].sum())  # 400 x 300 mm: 40 x 30 voxels
    ((3, 30, 40), 1200)
    """
    ss = source if isinstance(source, StructureSet) else read_rtstruct(source)
    grid = target.grid if isinstance(target, CTSeries) else target
    rois = [ss.roi(n) for n in names] if names is not None else [
        r for r in ss.rois if r.polygons_mm
    ]
    out: dict[str, NDArray[np.bool_]] = {}
    for roi in rois:
        check_roi_frame(roi, target, check_frame_of_reference)
        on_slices = snapped_to_slices(roi.polygons_mm, grid, plane_tol_mm=plane_tol_mm,
                                      off_grid=off_grid)
        out[roi.name] = slab_mask(on_slices, grid)
    return out

