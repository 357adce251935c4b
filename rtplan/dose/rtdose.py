"""RT Dose: read a dose grid (Gy) and write a derived one (e.g. EQD2) as a new RTDOSE.

Reading (:func:`read_rtdose`) applies DoseGridScaling (3004,000E), checks DoseUnits
(3004,0002: ``GY``; ``CGY`` only when conversion is asked for), DoseType (3004,0004:
``PHYSICAL``; ``EFFECTIVE`` only when asked for), DoseSummationType (3004,000A: ``PLAN``
is the total of the plan's fractions, ``FRACTION`` one fraction, multiplied by the
fraction count; ``BEAM``, ``MULTI_PLAN`` and the others are refused because they are not
the dose of one course) and GridFrameOffsetVector (3004,000C, relative to
ImagePositionPatient when its first value is 0, else absolute z positions).

Writing (:func:`write_rtdose`) keeps the patient, study and frame of reference of a
template RTDOSE, gives new SOP and series UIDs, recomputes DoseGridScaling for 32-bit
unsigned pixel data and writes atomically.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ImplicitVRLittleEndian, RTDoseStorage, RTPlanStorage, generate_uid

from rtplan import __version__
from rtplan._shared.dicom import corrupt_as_dicom_error, ds_strings, format_ds, read_dataset
from rtplan._shared.io import atomic_write
from rtplan.errors import (
    DicomError,
    GeometryError,
    GridMismatchError,
    InvalidParameterError,
)
from rtplan.imaging.grid import Grid

__all__ = [
    "DoseGrid",
    "build_rtdose",
    "fractions_from_rtplan",
    "read_rtdose",
    "write_rtdose",
]

#: DoseSummationType values that hold the total dose of one course (all its fractions).
_TOTAL_TYPES = ("PLAN",)
#: ... and the one that holds the dose of a single fraction.
_PER_FRACTION_TYPES = ("FRACTION",)
#: Largest NumberOfFractionsPlanned accepted.
_MAX_FRACTIONS = 10000
#: Largest pixel value for BitsAllocated 16 and 32 (unsigned).
_UINT_MAX = {16: 65535, 32: 4294967295}
_GFOV_TOL_MM = 1e-3


@dataclass(frozen=True, eq=False)
class DoseGrid:
    """A dose distribution on a grid in patient coordinates.

    Attributes
    ----------
    dose_gy
        ``float64 [slice, row, column]`` dose in Gy: the total over ``fractions``
        fractions (a per-fraction RTDOSE has already been multiplied).
    grid
        Where the voxels are (:class:`~rtplan.imaging.Grid`; LPS, mm).
    frame_of_reference_uid
        FrameOfReferenceUID (0020,0052); empty when unknown.
    fractions
        Number of fractions the dose is delivered in, or None when not known yet.
    dose_type
        DoseType of the source (``PHYSICAL`` or ``EFFECTIVE``).
    summation_type
        DoseSummationType of the source file (``PLAN`` or ``FRACTION``).
    source
        Path of the file read, or ``""``.
    dataset
        The source dataset without its pixel data (a template for writing), or None.
    warnings
        Warnings attached by the computation that made the grid (e.g. LQ used above
        10 Gy per fraction in some voxels, see :func:`rtplan.dose.eqd2_dose`).

    Examples
    --------
    >>> g = Grid((1, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2.5, 2.5))
    >>> d = DoseGrid(np.full(g.shape, 2.0), g, fractions=5)
    >>> d.max_gy, d.dose_gy.shape
    (2.0, (1, 2, 2))
    """

    dose_gy: NDArray[np.float64]
    grid: Grid
    frame_of_reference_uid: str = ""
    fractions: int | None = None
    dose_type: str = "PHYSICAL"
    summation_type: str = "PLAN"
    source: str = ""
    dataset: Dataset | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        d = np.asarray(self.dose_gy, dtype=float)
        if d.shape != self.grid.shape:
            raise GridMismatchError(
                f"dose array of shape {d.shape} does not match its grid {self.grid.shape}"
            )
        if d.size and not (np.isfinite(d).all() and d.min() >= 0):
            raise InvalidParameterError(
                "dose values must be finite and >= 0 Gy "
                f"(min {np.nanmin(d)!r}, max {np.nanmax(d)!r})"
            )
        if self.fractions is not None and int(self.fractions) < 1:
            raise InvalidParameterError(f"fractions must be >= 1, got {self.fractions!r}")
        object.__setattr__(self, "dose_gy", d)
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        if self.fractions is not None:
            object.__setattr__(self, "fractions", int(self.fractions))

    @property
    def max_gy(self) -> float:
        """Largest voxel dose (Gy)."""
        return float(self.dose_gy.max())

    def with_fractions(self, fractions: int) -> DoseGrid:
        """A copy that records ``fractions`` (the array is shared, not copied)."""
        return DoseGrid(
            self.dose_gy, self.grid, self.frame_of_reference_uid, int(fractions),
            self.dose_type, self.summation_type, self.source, self.dataset,
        )


# ============================================================================ reading

def fractions_from_rtplan(path: str | os.PathLike[str], fraction_group: int | None = None) -> int:
    """NumberOfFractionsPlanned (300A,0078) of an RTPLAN's fraction group.

    Parameters
    ----------
    path
        RT Plan file.
    fraction_group
        FractionGroupNumber (300A,0071) to use; required when the plan has several
        fraction groups.

    Returns
    -------
    int
        Planned number of fractions.

    Examples
    --------
    >>> import tempfile, os
    >>> ds = Dataset(); ds.SOPClassUID = RTPlanStorage; ds.Modality = "RTPLAN"
    >>> fg = Dataset(); fg.FractionGroupNumber = 1; fg.NumberOfFractionsPlanned = 5
    >>> ds.FractionGroupSequence = DicomSequence([fg])
    >>> p = os.path.join(tempfile.mkdtemp(), "RP.dcm"); ds.save_as(p, implicit_vr=True)
    >>> fractions_from_rtplan(p)
    5
    """
    p = Path(path)
    ds = read_dataset(p, "RTPLAN")
    with corrupt_as_dicom_error(f"RTPLAN '{p}'"):
        return _fractions_from(ds, p, fraction_group)


def _fractions_from(ds: Dataset, p: Path, fraction_group: int | None) -> int:
    if ds.get("Modality") != "RTPLAN" and ds.get("SOPClassUID") != RTPlanStorage:
        raise DicomError(
            f"'{p}' is not an RTPLAN (Modality {ds.get('Modality')!r}): give the plan file"
        )
    groups = list(ds.get("FractionGroupSequence", []))
    if not groups:
        raise DicomError(f"RTPLAN '{p}' has no FractionGroupSequence: give --fractions")
    if fraction_group is not None:
        groups = [g for g in groups if str(g.get("FractionGroupNumber", "")).strip()
                  == str(fraction_group)]
        if not groups:
            raise DicomError(f"RTPLAN '{p}' has no fraction group {fraction_group}")
    elif len(groups) > 1:
        numbers = [g.get("FractionGroupNumber") for g in groups]
        raise DicomError(
            f"RTPLAN '{p}' has {len(groups)} fraction groups {numbers}: choose one "
            "(fraction_group=...) or give the number of fractions"
        )
    n = groups[0].get("NumberOfFractionsPlanned")
    try:
        count = int(n) if n is not None else 0
    except (TypeError, ValueError, OverflowError):
        count = 0
    if not 1 <= count <= _MAX_FRACTIONS:
        raise DicomError(
            f"RTPLAN '{p}': NumberOfFractionsPlanned is {n!r}, not a whole number from 1 to "
            f"{_MAX_FRACTIONS}: give the number of fractions"
        )
    return count


def _check_plan_matches(ds: Dataset, plan_path: Path, where: str) -> None:
    """Refuse an RTPLAN the RTDOSE does not reference, or in another frame."""
    plan = pydicom.dcmread(plan_path, stop_before_pixels=True, force=True)
    refs = [
        str(r.get("ReferencedSOPInstanceUID", ""))
        for r in ds.get("ReferencedRTPlanSequence", [])
    ]
    uid = str(plan.get("SOPInstanceUID", ""))
    if refs and uid and uid not in refs:
        raise DicomError(
            f"{where} references RTPLAN {refs}, but '{plan_path}' is {uid}: give the "
            "plan this dose was calculated for (or --fractions)"
        )
    frame, plan_frame = ds.get("FrameOfReferenceUID"), plan.get("FrameOfReferenceUID")
    if frame and plan_frame and frame != plan_frame:
        raise GridMismatchError(
            f"{where} is in frame of reference {frame}, the RTPLAN '{plan_path}' in "
            f"{plan_frame}: they do not belong together"
        )


def _grid_from(ds: Dataset, where: str) -> Grid:
    try:
        ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        spacing = [float(v) for v in ds.PixelSpacing]
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise DicomError(f"{where}: missing or bad image plane attribute ({exc})") from exc
    if ipp.shape != (3,) or iop.shape != (6,) or len(spacing) != 2:
        raise DicomError(
            f"{where}: ImagePositionPatient needs 3 values, ImageOrientationPatient 6 and "
            f"PixelSpacing 2; got {ipp.size}, {iop.size} and {len(spacing)}: the header "
            "is corrupt"
        )
    if not (np.all(np.isfinite(ipp)) and np.all(np.isfinite(iop))
            and np.all(np.isfinite(spacing)) and min(spacing) > 0):
        raise DicomError(
            f"{where}: ImagePositionPatient {ipp.tolist()}, ImageOrientationPatient "
            f"{iop.tolist()} or PixelSpacing {spacing} is not finite (or spacing <= 0)"
        )
    if rows < 1 or cols < 1 or frames < 1:
        raise DicomError(
            f"{where}: Rows {rows}, Columns {cols}, NumberOfFrames {frames}: each must be >= 1"
        )
    row_dir, col_dir = iop[:3], iop[3:]  # along a row (column index), along a column
    if not (
        np.isclose(np.linalg.norm(row_dir), 1, atol=1e-3)
        and np.isclose(np.linalg.norm(col_dir), 1, atol=1e-3)
        and abs(float(row_dir @ col_dir)) < 1e-3
    ):
        raise GeometryError(
            f"{where}: ImageOrientationPatient {iop.tolist()} is not two orthogonal unit "
            "vectors: the header is corrupt"
        )
    normal = np.cross(row_dir, col_dir)
    gfov = ds.get("GridFrameOffsetVector")
    if gfov is None:
        if frames > 1:
            raise DicomError(f"{where}: {frames} frames but no GridFrameOffsetVector")
        offsets = np.zeros(1)
    else:
        try:
            offsets = np.asarray(gfov, dtype=float).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise DicomError(
                f"{where}: GridFrameOffsetVector is not a list of numbers ({gfov!r})"
            ) from None
        if not np.all(np.isfinite(offsets)):
            raise DicomError(f"{where}: GridFrameOffsetVector holds NaN or infinite values")
        if offsets.size != frames:
            raise DicomError(
                f"{where}: GridFrameOffsetVector has {offsets.size} values for "
                f"{frames} frames"
            )
        if abs(offsets[0]) > _GFOV_TOL_MM:
            # absolute (type b): z coordinates, allowed only for axial grids
            if not np.allclose(normal, [0, 0, 1], atol=1e-4):
                raise GeometryError(
                    f"{where}: GridFrameOffsetVector starts at {offsets[0]} (absolute "
                    "positions), which DICOM allows only for axial (1,0,0,0,1,0) grids"
                )
            if abs(offsets[0] - ipp[2]) > _GFOV_TOL_MM:
                raise DicomError(
                    f"{where}: GridFrameOffsetVector starts at {offsets[0]} mm, neither 0 "
                    f"(relative) nor ImagePositionPatient z {ipp[2]} mm (absolute)"
                )
            offsets = offsets - offsets[0]
    if frames > 1:
        steps = np.diff(offsets)
        if np.all(steps < 0):  # frames stored against the normal: flip the slice axis
            normal, offsets = -normal, -offsets
        elif not np.all(steps > 0):
            raise GeometryError(
                f"{where}: GridFrameOffsetVector is not monotonic "
                f"({offsets[:6].tolist()}...): frames must be ordered along the normal"
            )
        slice_mm = float(abs(offsets[-1]) / (frames - 1))
    else:
        slice_mm = float(ds.get("SliceThickness") or 0) or 1.0
    return Grid(
        shape=(frames, rows, cols),
        origin_mm=ipp,
        spacing_mm=(slice_mm, spacing[0], spacing[1]),
        direction=np.stack([normal, col_dir, row_dir]),
        slice_offsets_mm=offsets if frames > 1 else None,
    )


def read_rtdose(
    path: str | os.PathLike[str],
    *,
    fractions: int | None = None,
    rtplan: str | os.PathLike[str] | None = None,
    allow_effective: bool = False,
    convert_cgy: bool = False,
) -> DoseGrid:
    """Read an RTDOSE file into a :class:`DoseGrid` of total dose (Gy).

    Parameters
    ----------
    path
        RT Dose file (grid dose, any orientation).
    fractions
        Number of fractions of the course. With ``rtplan`` as well, both must agree.
    rtplan
        RTPLAN whose NumberOfFractionsPlanned gives the fraction count.
    allow_effective
        Accept DoseType EFFECTIVE (already biologically weighted; converting it again
        is usually wrong). Default: refuse.
    convert_cgy
        Accept DoseUnits CGY and divide by 100. Default: refuse.

    Returns
    -------
    DoseGrid
        ``dose_gy`` is the course total: a ``FRACTION`` grid is multiplied by the
        number of fractions (which is then required).

    Raises
    ------
    DicomError
        Not an RTDOSE, no pixel data, unsupported units, type or summation type.
    GeometryError
        Inconsistent GridFrameOffsetVector.
    InvalidParameterError
        ``fractions`` and the RTPLAN disagree, or a per-fraction grid without fractions.
    GridMismatchError
        The RTPLAN is in another frame of reference (or is not the plan the RTDOSE
        references: :class:`DicomError`).

    Examples
    --------
    >>> import tempfile, os
    >>> g = Grid((2, 2, 3), origin_mm=(0, 0, 0), spacing_mm=(3, 2, 2))
    >>> p = os.path.join(tempfile.mkdtemp(), "RD.dcm")
    >>> _ = write_rtdose(p, DoseGrid(np.full(g.shape, 1.5), g), description="test")
    >>> d = read_rtdose(p, fractions=5, allow_effective=True)
    >>> round(d.max_gy, 6), d.fractions, d.grid.shape
    (1.5, 5, (2, 2, 3))
    """
    p = Path(path)
    ds = read_dataset(p, "RTDOSE")
    where = f"RTDOSE '{p}'"
    with corrupt_as_dicom_error(where):
        return _read_rtdose(ds, p, where, fractions, rtplan, allow_effective, convert_cgy)


def _read_rtdose(
    ds: Dataset,
    p: Path,
    where: str,
    fractions: int | None,
    rtplan: str | os.PathLike[str] | None,
    allow_effective: bool,
    convert_cgy: bool,
) -> DoseGrid:
    if ds.get("Modality") != "RTDOSE" and ds.get("SOPClassUID") != RTDoseStorage:
        raise DicomError(
            f"'{p}' is not an RTDOSE (Modality {ds.get('Modality')!r}, SOPClassUID "
            f"{ds.get('SOPClassUID')})"
        )
    if "PixelData" not in ds:
        raise DicomError(f"{where} has no dose grid (PixelData): it may hold only DVHs")
    units = str(ds.get("DoseUnits", "")).upper()
    if units == "CGY":
        if not convert_cgy:
            raise DicomError(
                f"{where}: DoseUnits is CGY: pass convert_cgy=True (--convert-cgy) to "
                "divide by 100 and work in Gy"
            )
        unit_factor = 0.01
    elif units == "GY":
        unit_factor = 1.0
    else:
        raise DicomError(
            f"{where}: DoseUnits {units!r} is not GY (RELATIVE doses have no absolute "
            "value): export the dose in Gy"
        )
    dose_type = str(ds.get("DoseType", "")).upper()
    if dose_type == "EFFECTIVE" and not allow_effective:
        raise DicomError(
            f"{where}: DoseType is EFFECTIVE (already biologically weighted, e.g. an "
            "EQD2 or RBE grid): converting it again is usually wrong; pass "
            "allow_effective=True (--allow-effective) if you mean it"
        )
    if dose_type not in ("PHYSICAL", "EFFECTIVE"):
        raise DicomError(f"{where}: DoseType {dose_type!r} is not PHYSICAL")
    summation = str(ds.get("DoseSummationType", "")).upper()
    if summation not in _TOTAL_TYPES + _PER_FRACTION_TYPES:
        hint = {
            "BEAM": "it holds one beam's dose: sum the beams of the plan first (or export "
            "the plan dose), because EQD2 needs each voxel's total dose per fraction",
            "MULTI_PLAN": "it sums several plans whose fraction counts may differ: read "
            "each plan's dose and use 'rtplan dose sum'",
        }.get(summation, "export the plan dose (DoseSummationType PLAN)")
        raise DicomError(f"{where}: DoseSummationType {summation!r} is not supported: {hint}")

    n_plan = None
    if rtplan is not None:
        n_plan = fractions_from_rtplan(rtplan)
        _check_plan_matches(ds, Path(rtplan), where)
    if fractions is not None:
        if int(fractions) != fractions or int(fractions) < 1:
            raise InvalidParameterError(f"fractions must be a whole number >= 1, got {fractions!r}")
        if n_plan is not None and n_plan != int(fractions):
            raise InvalidParameterError(
                f"{fractions} fractions given but the RTPLAN '{rtplan}' plans {n_plan}: "
                "give one or the other"
            )
    n = int(fractions) if fractions is not None else n_plan
    if summation in _PER_FRACTION_TYPES and n is None:
        raise InvalidParameterError(
            f"{where} holds the dose of one fraction (DoseSummationType FRACTION): give "
            "the number of fractions (--fractions or an RTPLAN) to get the course total"
        )

    grid = _grid_from(ds, where)
    scaling = _dose_grid_scaling(ds, where)
    _check_pixel_header(ds, grid, where)
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise DicomError(f"{where}: cannot decode the pixel data ({exc})") from None
    pixels = np.asarray(pixels)
    if pixels.size != int(np.prod(grid.shape)):
        raise DicomError(
            f"{where}: the pixel data hold {pixels.size} values but NumberOfFrames x Rows x "
            f"Columns is {' x '.join(map(str, grid.shape))}: the file is inconsistent"
        )
    pixels = pixels.reshape(grid.shape)
    dose = pixels.astype(np.float64) * (scaling * unit_factor)
    if not np.all(np.isfinite(dose)):
        raise DicomError(f"{where}: the dose grid holds NaN or infinite values")
    if dose.size and float(dose.min()) < 0:
        raise DicomError(
            f"{where}: the dose grid holds negative doses (min {float(dose.min()):g} Gy): "
            "the pixel data or DoseGridScaling is corrupt"
        )
    if summation in _PER_FRACTION_TYPES:
        assert n is not None  # refused above without a fraction count
        dose *= n
    header = ds.copy()
    del header.PixelData
    if "DVHSequence" in header:
        del header.DVHSequence
    return DoseGrid(
        dose_gy=dose,
        grid=grid,
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
        fractions=n,
        dose_type=dose_type,
        summation_type=summation,
        source=str(p),
        dataset=header,
    )


def _dose_grid_scaling(ds: Dataset, where: str) -> float:
    """DoseGridScaling (3004,000E): present, finite and > 0 (0 would give a zero grid)."""
    if "DoseGridScaling" not in ds:
        raise DicomError(f"{where}: DoseGridScaling (3004,000E) is missing")
    raw = ds.get("DoseGridScaling")
    try:
        scaling = float(raw)
    except (TypeError, ValueError, OverflowError):
        scaling = float("nan")
    if not (np.isfinite(scaling) and scaling > 0):
        raise DicomError(
            f"{where}: DoseGridScaling (3004,000E) is {raw!r}; it must be a positive "
            "number (0 would make every dose 0 Gy): the file is corrupt"
        )
    return scaling


def _check_pixel_header(ds: Dataset, grid: Grid, where: str) -> None:
    """Refuse pixel data whose size does not match the header before decoding it."""
    try:
        bits = int(ds.get("BitsAllocated", 0) or 0)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError, OverflowError):
        raise DicomError(
            f"{where}: BitsAllocated {ds.get('BitsAllocated')!r} or SamplesPerPixel "
            f"{ds.get('SamplesPerPixel')!r} is not a whole number"
        ) from None
    if bits not in (16, 32) or samples != 1:
        raise DicomError(
            f"{where}: BitsAllocated {bits} and SamplesPerPixel {samples}: RTDOSE needs "
            "16 or 32 bits and 1 sample per pixel"
        )
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and getattr(tsyntax, "is_compressed", False):
        return  # compressed: the decoder checks the size
    expected = int(np.prod(grid.shape)) * bits // 8
    try:
        actual = len(ds.PixelData)
    except Exception:
        raise DicomError(f"{where}: the pixel data cannot be read") from None
    if actual not in (expected, expected + 1):
        raise DicomError(
            f"{where}: the pixel data hold {actual} bytes but NumberOfFrames x Rows x "
            f"Columns ({' x '.join(map(str, grid.shape))}) at BitsAllocated {bits} needs "
            f"{expected}: the header or the pixel data is wrong"
        )


# ============================================================================ writing
def _scaling_and_pixels(
    dose_gy: NDArray[np.float64], bits: int
) -> tuple[str, NDArray[np.unsignedinteger]]:
    """DoseGridScaling (as the DS text written) and unsigned pixels for ``dose_gy``."""
    top = float(dose_gy.max()) if dose_gy.size else 0.0
    dtype = np.uint16 if bits == 16 else np.uint32
    if top <= 0:
        return "1", np.zeros(dose_gy.shape, dtype=dtype)
    # 9 significant digits (14 characters, within DS's 16); the 1e-7 margin exceeds
    # the rounding, so the largest dose fits the integer range
    text = f"{top / _UINT_MAX[bits] * (1 + 1e-7):.8e}"
    scaling = float(text)
    pixels = np.rint(dose_gy / scaling)
    return text, np.clip(pixels, 0, _UINT_MAX[bits]).astype(dtype)


def _shorten_lo(text: str, limit: int = 64) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (DICOM LO: 64).

    A text that fits is returned unchanged; otherwise the words that fit before
    ``limit - 3`` characters are kept, with trailing punctuation dropped, and ``"..."``
    appended. A single word longer than that is cut inside the word.

    Examples
    --------
    >>> _shorten_lo("EQD2 (Gy) by the linear-quadratic model, voxel-wise", 30)
    'EQD2 (Gy) by the...'
    >>> _shorten_lo("short", 30)
    'short'
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = limit - 3
    head = text[:room + 1]
    cut = head.rfind(" ")
    kept = (head[:cut] if cut > 0 else text[:room]).rstrip(" ,;:.(-/")
    return kept + "..."


#: Image-plane attributes copied verbatim from the template when the grid is its grid.
_GEOMETRY_KEYWORDS = (
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "GridFrameOffsetVector",
)


def _same_grid(template: Dataset, grid: Grid) -> bool:
    """True when ``template``'s image plane describes ``grid`` (voxel centres within 1e-6 mm)."""
    try:
        other = _grid_from(template, "template")
    except (DicomError, GeometryError, ValueError, TypeError):
        return False
    if other.shape != grid.shape:
        return False
    n = grid.shape[0]
    idx = np.array([[k, 0, 0] for k in range(n)] + [[0, 1, 0], [0, 0, 1]], dtype=float)
    return bool(np.allclose(other.index_to_world(idx), grid.index_to_world(idx),
                            rtol=0, atol=1e-6))


def _orientation(grid: Grid) -> tuple[list[float], NDArray[np.float64]]:
    row_dir, col_dir = grid.direction[2], grid.direction[1]
    return [*row_dir.tolist(), *col_dir.tolist()], np.cross(row_dir, col_dir)


def build_rtdose(
    dose: DoseGrid,
    *,
    description: str,
    template: Dataset | None = None,
    dose_type: str = "EFFECTIVE",
    summation_type: str = "PLAN",
    comment: str = "",
    referenced_plans: list[str] | None = None,
    bits_allocated: int = 16,
    when: _dt.datetime | None = None,
) -> pydicom.FileDataset:
    """Build an RT Dose dataset for a dose grid.

    Parameters
    ----------
    dose
        The grid to write (Gy). ``dose.dataset`` is the default template.
    description
        SeriesDescription, e.g. ``"EQD2, 5 fx, LQ, a/b 1.5 Gy"``; a longer one is cut
        at a word boundary to 64 characters (:func:`_shorten_lo`).
    template
        An RTDOSE dataset whose patient, study, frame of reference, equipment and
        referenced plan are kept. Without one a new study is made.
    dose_type
        DoseType to write: ``EFFECTIVE`` (biologically weighted) or ``PHYSICAL``.
    summation_type
        DoseSummationType to write (``PLAN`` or ``MULTI_PLAN``).
    comment
        Longer text for ImageComments (0020,4000), e.g. every alpha/beta used; it also
        goes into DoseComment (3004,0006), cut at a word boundary to 64 characters.
    referenced_plans
        RTPLAN SOPInstanceUIDs for ReferencedRTPlanSequence (default: the template's).
    bits_allocated
        16 (default) or 32-bit unsigned pixels. 16 bits resolve the largest dose to
        1/65535 (0.0015 Gy at 100 Gy; rounding error at most half that); 32 bits are
        finer, but dicom3tools' dciodvfy cannot check 32-bit pixel data (it aborts on
        planning-system RTDOSE files too).
    when
        Creation date and time (default: now).

    Returns
    -------
    pydicom.FileDataset
        With new SOP and series UIDs, unsigned pixel data and DoseGridScaling
        chosen so that the largest dose uses the full integer range. When the grid is
        the template's grid (voxel centres within 1e-6 mm), ImagePositionPatient,
        ImageOrientationPatient, PixelSpacing, SliceThickness and
        GridFrameOffsetVector are copied verbatim from the template.

    Examples
    --------
    >>> g = Grid((2, 3, 4), origin_mm=(-5, -5, 10), spacing_mm=(2.5, 2, 2))
    >>> ds = build_rtdose(DoseGrid(np.linspace(0, 60, 24).reshape(g.shape), g),
    ...                   description="EQD2 LQ a/b 3 Gy")
    >>> ds.DoseType, ds.DoseUnits, [float(v) for v in ds.GridFrameOffsetVector]
    ('EFFECTIVE', 'GY', [0.0, 2.5])
    >>> bool(abs(ds.pixel_array.max() * float(ds.DoseGridScaling) - 60) < 1e-4)
    True
    """
    if bits_allocated not in _UINT_MAX:
        raise InvalidParameterError(f"bits_allocated must be 16 or 32, got {bits_allocated!r}")
    if dose_type not in ("EFFECTIVE", "PHYSICAL"):
        raise InvalidParameterError(f"dose_type must be EFFECTIVE or PHYSICAL, got {dose_type!r}")
    template = dose.dataset if template is None else template
    now = when or _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    grid = dose.grid
    iop, normal = _orientation(grid)
    if not np.allclose(normal, grid.direction[0], atol=1e-4) and not np.allclose(
        -normal, grid.direction[0], atol=1e-4
    ):
        raise GeometryError("the grid's slice axis is not normal to its rows and columns")
    offsets = (grid.index_to_world(
        np.stack([np.arange(grid.shape[0]), np.zeros(grid.shape[0]), np.zeros(grid.shape[0])],
                 axis=1)
    ) - grid.origin_mm) @ normal

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTDoseStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    # Implicit VR, as most planning systems write RTDOSE: dicom3tools' dciodvfy cannot
    # check 32-bit pixel data encoded as explicit VR OW
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds = pydicom.FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    t = template if template is not None else Dataset()
    for kw in ("SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate",
               "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime",
               "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
               "PositionReferenceIndicator", "TissueHeterogeneityCorrection"):
        if kw in t:
            setattr(ds, kw, t.get(kw))
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
               "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
               "PositionReferenceIndicator"):
        if kw not in ds:
            setattr(ds, kw, "")
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = generate_uid()
    ds.SOPClassUID = RTDoseStorage
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = "1"
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.SeriesDescription = _shorten_lo(description)
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = dose.frame_of_reference_uid or t.get(
        "FrameOfReferenceUID", generate_uid()
    )
    ds.Manufacturer = "rtplan"
    ds.ManufacturerModelName = "rtplan"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = "1"
    ds.ContentDate = date
    ds.ContentTime = time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = description[:1024]
    if comment:
        ds.ImageComments = comment[:10240]
    if template is not None and "SOPInstanceUID" in template:
        src = Dataset()
        src.ReferencedSOPClassUID = template.get("SOPClassUID", RTDoseStorage)
        src.ReferencedSOPInstanceUID = template.SOPInstanceUID
        ds.SourceImageSequence = DicomSequence([src])
    # Image Plane, Image Pixel, Multi-frame
    ds.ImagePositionPatient = ds_strings(grid.origin_mm)
    ds.ImageOrientationPatient = ds_strings(iop)
    ds.PixelSpacing = ds_strings(grid.spacing_mm[1:])
    ds.SliceThickness = format_ds(grid.spacing_mm[0]) if grid.shape[0] > 1 else ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = str(grid.shape[0])
    ds.FrameIncrementPointer = pydicom.tag.Tag("GridFrameOffsetVector")
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_allocated
    ds.HighBit = bits_allocated - 1
    ds.PixelRepresentation = 0
    # RT Dose
    ds.DoseUnits = "GY"
    ds.DoseType = dose_type
    ds.DoseSummationType = summation_type
    if comment:
        ds.DoseComment = _shorten_lo(comment)
    ds.GridFrameOffsetVector = ds_strings(offsets)
    if template is not None and _same_grid(template, grid):
        # same grid: keep the input's own strings (no re-formatting of its numbers)
        for kw in _GEOMETRY_KEYWORDS:
            if kw in template and template[kw].value not in (None, ""):
                ds[kw] = copy.deepcopy(template[kw])
    scaling, pixels = _scaling_and_pixels(dose.dose_gy, bits_allocated)
    ds.DoseGridScaling = scaling
    plans = referenced_plans
    if plans is None and template is not None:
        plans = [
            str(r.ReferencedSOPInstanceUID)
            for r in template.get("ReferencedRTPlanSequence", [])
            if "ReferencedSOPInstanceUID" in r
        ]
    if plans:
        ds.ReferencedRTPlanSequence = DicomSequence(
            [_plan_ref(uid) for uid in plans]
        )
    ds.PixelData = pixels.tobytes()
    return ds


def _plan_ref(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = RTPlanStorage
    item.ReferencedSOPInstanceUID = uid
    return item


def write_rtdose(
    path: str | os.PathLike[str],
    dose: DoseGrid,
    *,
    description: str,
    overwrite: bool = False,
    **options: object,
) -> Path:
    """Write a :class:`DoseGrid` as a new RTDOSE file, atomically.

    Parameters
    ----------
    path
        Output file; refused when it exists unless ``overwrite``.
    dose
        The dose (Gy) and its grid.
    description
        SeriesDescription, see :func:`build_rtdose`.
    overwrite
        Replace an existing file.
    **options
        Passed to :func:`build_rtdose` (``comment``, ``dose_type``, ``template``...).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, os
    >>> g = Grid((1, 2, 2), origin_mm=(0, 0, 0), spacing_mm=(3, 2.5, 2.5))
    >>> p = write_rtdose(os.path.join(tempfile.mkdtemp(), "RD.dcm"),
    ...                  DoseGrid(np.ones(g.shape), g), description="EQD2")
    >>> pydicom.dcmread(p).DoseType
    'EFFECTIVE'
    """
    ds = build_rtdose(dose, description=description, **options)  # type: ignore[arg-type]
    return atomic_write(
        path, lambda t: ds.save_as(t, enforce_file_format=True), overwrite=overwrite
    )
