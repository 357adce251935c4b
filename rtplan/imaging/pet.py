"""Load a PET (Modality PT) DICOM series as an SUV volume on its own grid.

Slices are sorted by their position along the slice normal (ImagePositionPatient
projected on the cross product of the ImageOrientationPatient cosines), never by file
name or InstanceNumber. Every slice is converted with its own RescaleSlope and its own
:func:`~rtplan.imaging.suv.suv_factor`, so per-slice slopes and per-slice acquisition
times (DecayCorrection NONE, back-computed reference times) are honoured.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from rtplan._shared.jsonio import check_input_file
from rtplan.errors import DicomError, GeometryError, InputError, SeriesError
from rtplan.imaging._dicom_time import parse_da, parse_tm
from rtplan.imaging.grid import Grid
from rtplan.imaging.suv import (
    ReferenceTimeRule,
    SUVNormalization,
    SUVOverrides,
    SUVProvenance,
    _overrides,
    suv_factor,
)

__all__ = ["PETVolume", "load_pet", "load_pet_datasets"]

_POS_TOL_MM = 1e-3
_IOP_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class PETVolume:
    """An SUV volume with its grid and the provenance of every slice's conversion.

    Attributes
    ----------
    suv
        ``float32`` array ``[slice, row, column]`` of SUV (g/ml; cm^2/ml for bsa).
    grid
        Geometry of ``suv`` in LPS mm.
    provenance
        One :class:`~rtplan.imaging.suv.SUVProvenance` per slice, in ``suv`` order.
    normalization
        The SUV normalization of ``suv``.
    series_instance_uid, frame_of_reference_uid
        SeriesInstanceUID (0020,000E) and FrameOfReferenceUID (0020,0052).
    sources
        File of every slice, in ``suv`` order (empty for in-memory datasets).
    """

    suv: NDArray[np.float32]
    grid: Grid
    provenance: tuple[SUVProvenance, ...]
    normalization: SUVNormalization
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    sources: tuple[str, ...] = ()

    @property
    def factors(self) -> NDArray[np.float64]:
        """SUV factor of every slice (multiplies the rescaled values)."""
        return np.array([p.factor for p in self.provenance])

    @property
    def heuristics(self) -> tuple[str, ...]:
        """Every distinct plausibility heuristic used on any slice, in first-use order."""
        seen: dict[str, None] = {}
        for p in self.provenance:
            for h in p.heuristics:
                seen.setdefault(h, None)
        return tuple(seen)

    @property
    def rules(self) -> tuple[str, ...]:
        """Distinct conversion rules (and reference-time rules) that fired."""
        seen: dict[str, None] = {}
        for p in self.provenance:
            seen.setdefault(p.rule + (f" [{p.reference_time_rule}]"
                                      if p.reference_time_rule else ""), None)
        return tuple(seen)


def _has_dicom_magic(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _read_folder(folder: Path) -> list[tuple[Path, Any]]:
    if not folder.exists():
        raise InputError(f"PET folder {str(folder)!r} does not exist: give the series folder")
    if not folder.is_dir():
        check_input_file(folder, "PET file")  # a FIFO or a device: said precisely
    files = [folder] if folder.is_file() else sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    out = []
    broken = []
    for p in files:
        try:
            ds = pydicom.dcmread(p)
            is_pet = str(getattr(ds, "Modality", "")).upper() == "PT" and "PixelData" in ds
        except Exception as exc:  # pydicom raises many types on bad bytes
            if _has_dicom_magic(p):  # a DICOM file that cannot be parsed: truncated?
                broken.append(f"'{p.name}' ({type(exc).__name__})")
            continue  # not a DICOM file
        if is_pet:
            out.append((p, ds))
        elif str(getattr(ds, "Modality", "")).upper() == "PT":
            broken.append(f"'{p.name}' (no pixel data)")
    if broken:
        raise DicomError(
            f"{len(broken)} broken DICOM file(s) in {str(folder)!r}: {', '.join(broken[:5])}: "
            "a slice may be missing; repair or re-export the series, or remove them"
        )
    if not out:
        raise DicomError(
            f"no PET image (Modality PT with pixel data) found in {str(folder)!r}: give the "
            "folder of the PET series"
        )
    return out


def _series_start(datasets: Sequence[Any]) -> dt.datetime | None:
    times = []
    for ds in datasets:
        t = getattr(ds, "AcquisitionTime", None)
        d = getattr(ds, "AcquisitionDate", None) or getattr(ds, "SeriesDate", None)
        if t and d:
            try:
                times.append(dt.datetime.combine(
                    parse_da(d, "AcquisitionDate"), parse_tm(t, "AcquisitionTime")))
            except DicomError:
                return None
    return min(times) if times else None


def load_pet_datasets(
    datasets: Sequence[Any],
    normalization: SUVNormalization | str = "bw",
    overrides: SUVOverrides | None = None,
    *,
    reference_time_rule: ReferenceTimeRule | str = "qiba",
    sources: Sequence[str] = (),
    **override_values: Any,
) -> PETVolume:
    """Build a :class:`PETVolume` from the pydicom datasets of one PET series.

    Same parameters as :func:`load_pet`, with the datasets (pixel data included) in any
    order instead of a folder.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom import Dataset
    >>> from pydicom.dataset import FileMetaDataset
    >>> from pydicom.uid import ExplicitVRLittleEndian
    >>> def slice_(z):
    ...     ds = Dataset()
    ...     ds.file_meta = FileMetaDataset()
    ...     ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ...     ds.Modality, ds.Units, ds.DecayCorrection = "PT", "GML", "START"
    ...     ds.SUVType, ds.CorrectedImage = "BW", ["ATTN", "DECY"]
    ...     ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ...     ds.ImagePositionPatient = [0, 0, z]
    ...     ds.PixelSpacing, ds.Rows, ds.Columns = [2, 2], 2, 2
    ...     ds.RescaleSlope, ds.RescaleIntercept = 0.5, 0
    ...     ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ...     ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
    ...     ds.PhotometricInterpretation = "MONOCHROME2"
    ...     ds.PixelData = np.full((2, 2), int(z), np.uint16).tobytes()
    ...     return ds
    >>> pet = load_pet_datasets([slice_(6.0), slice_(2.0), slice_(4.0)])
    >>> pet.suv[:, 0, 0].tolist(), pet.grid.spacing_mm
    ([1.0, 2.0, 3.0], (2.0, 2.0, 2.0))
    """
    if not datasets:
        raise DicomError("no PET datasets given")
    ov = _overrides(overrides, override_values)
    try:
        return _volume_from(datasets, normalization, ov, reference_time_rule, sources)
    except InputError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError,
            OSError, struct.error, EOFError, NotImplementedError) as exc:
        # a corrupt header element (wrong count or text where a number belongs)
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DicomError(
            f"a PET slice has a corrupt or incomplete header ({type(exc).__name__}: "
            f"{first}): export the series again"
        ) from None


def _volume_from(
    datasets: Sequence[Any],
    normalization: SUVNormalization | str,
    ov: SUVOverrides,
    reference_time_rule: ReferenceTimeRule | str,
    sources: Sequence[str],
) -> PETVolume:
    srcs = list(sources) if sources else [""] * len(datasets)
    uids = {str(getattr(ds, "SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) > 1:
        raise SeriesError(
            f"{len(uids)} PET series mixed ({sorted(uids)}): give one series at a time "
            "(series_uid=...)"
        )
    for ds in datasets:
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise DicomError(
                "multi-frame (enhanced) PET images are not supported: export the series "
                "as one file per slice"
            )
    for kw in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = [s or "(dataset)" for s, ds in zip(srcs, datasets, strict=True) if kw not in ds]
        if missing:
            raise DicomError(f"{kw} is missing in {missing[:3]}: the slices cannot be placed")
    iop = np.array([np.asarray(ds.ImageOrientationPatient, float) for ds in datasets])
    if np.abs(iop - iop[0]).max() > _IOP_TOL:
        raise SeriesError("ImageOrientationPatient differs between slices: not one volume")
    row_cos, col_cos = iop[0, :3], iop[0, 3:]
    normal = np.cross(row_cos, col_cos)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise GeometryError(
            f"ImageOrientationPatient {iop[0].tolist()} is not two orthonormal cosines"
        )
    normal /= np.linalg.norm(normal)
    shapes = {(int(ds.Rows), int(ds.Columns)) for ds in datasets}
    spacings = {tuple(round(float(v), 6) for v in ds.PixelSpacing) for ds in datasets}
    if len(shapes) > 1 or len(spacings) > 1:
        raise SeriesError(
            f"slices differ in Rows/Columns {sorted(shapes)} or PixelSpacing "
            f"{sorted(spacings)}: not one volume"
        )
    ipp = np.array([np.asarray(ds.ImagePositionPatient, float) for ds in datasets])
    dist = ipp @ normal
    order = np.argsort(dist, kind="stable")
    dist, ipp = dist[order], ipp[order]
    if len(dist) > 1 and np.min(np.diff(dist)) < _POS_TOL_MM:
        k = int(np.argmin(np.diff(dist)))
        raise SeriesError(
            f"two slices at the same position {dist[k]:.3f} mm along the normal: a dynamic "
            "or multi-bed series with duplicates; give one time frame"
        )
    off_axis = ipp - ipp[0] - np.outer(dist - dist[0], normal)
    if np.abs(off_axis).max() > 0.01:
        raise GeometryError(
            f"slice origins drift up to {np.abs(off_axis).max():.3f} mm off the slice normal "
            "(gantry tilt or sheared stack): not supported, resample the series first"
        )
    sorted_ds = [datasets[i] for i in order]
    sorted_src = tuple(srcs[i] for i in order)
    units = {str(getattr(ds, "Units", "")).upper() for ds in sorted_ds}
    dcs = {str(getattr(ds, "DecayCorrection", "")).upper() for ds in sorted_ds}
    if len(units) > 1 or len(dcs) > 1:
        raise SeriesError(
            f"slices differ in Units {sorted(units)} or DecayCorrection {sorted(dcs)}"
        )
    start = _series_start(sorted_ds)
    rows, cols = shapes.pop()
    suv = np.empty((len(sorted_ds), rows, cols), dtype=np.float32)
    prov = []
    for k, ds in enumerate(sorted_ds):
        factor = suv_factor(
            ds, normalization, ov, reference_time_rule=reference_time_rule, series_start=start
        )
        slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # pydicom raises several types for undecodable data
            where = sorted_src[k] or f"slice {k}"
            raise DicomError(f"cannot decode the PixelData of {where}: {exc}") from None
        suv[k] = pixels.astype(np.float64) * (slope * factor)
        prov.append(factor.provenance)
    spacing_rc = tuple(float(v) for v in sorted_ds[0].PixelSpacing)
    offsets = dist - dist[0]
    slice_mm = float(offsets[-1] / (len(offsets) - 1)) if len(offsets) > 1 else float(
        getattr(sorted_ds[0], "SliceThickness", 1.0) or 1.0
    )
    grid = Grid(
        shape=suv.shape,
        origin_mm=ipp[0],
        spacing_mm=(slice_mm, spacing_rc[0], spacing_rc[1]),
        direction=np.stack([normal, col_cos, row_cos]),
        slice_offsets_mm=offsets if len(offsets) > 1 else None,
    )
    return PETVolume(
        suv=suv,
        grid=grid,
        provenance=tuple(prov),
        normalization=prov[0].normalization,
        series_instance_uid=str(getattr(sorted_ds[0], "SeriesInstanceUID", "")),
        frame_of_reference_uid=str(getattr(sorted_ds[0], "FrameOfReferenceUID", "")),
        sources=sorted_src if any(sorted_src) else (),
    )


def load_pet(
    folder: str | Path,
    normalization: SUVNormalization | str = "bw",
    overrides: SUVOverrides | None = None,
    *,
    series_uid: str | None = None,
    reference_time_rule: ReferenceTimeRule | str = "qiba",
    **override_values: Any,
) -> PETVolume:
    """Read a PET series folder and convert it to SUV.

    Parameters
    ----------
    folder
        Folder holding the PT files (searched recursively; other files are skipped).
    normalization
        SUV normalization (see :func:`~rtplan.imaging.suv.suv_factor`).
    overrides
        :class:`~rtplan.imaging.suv.SUVOverrides`, or its fields as keywords
        (``weight_kg``, ``injected_dose_mbq``, ``injection_time``, ...).
    series_uid
        SeriesInstanceUID to load when the folder holds several PET series.
    reference_time_rule
        ``"qiba"`` or ``"backcompute"`` (DecayCorrection START).

    Returns
    -------
    PETVolume
        SUV ``[slice, row, column]``, its :class:`~rtplan.imaging.grid.Grid`, and the
        provenance of every slice.

    Raises
    ------
    DicomError, SeriesError, GeometryError
        No PET images, mixed series, duplicate positions, tilted stacks, or a slice whose
        SUV cannot be computed (the message names the attribute and the override).

    Examples
    --------
    >>> import tempfile
    >>> load_pet(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    rtplan.errors.DicomError: no PET image (Modality PT with pixel data) found in ...
    """
    found = _read_folder(Path(folder))
    by_uid: dict[str, list[tuple[Path, Any]]] = {}
    for p, ds in found:
        by_uid.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((p, ds))
    if series_uid is not None:
        if series_uid not in by_uid:
            raise SeriesError(
                f"series {series_uid!r} not in {str(folder)!r}; PET series there: "
                f"{sorted(by_uid)}"
            )
        chosen = by_uid[series_uid]
    elif len(by_uid) > 1:
        listing = "; ".join(
            f"{uid} ({len(v)} slices, {getattr(v[0][1], 'SeriesDescription', '')!s})"
            for uid, v in sorted(by_uid.items())
        )
        raise SeriesError(
            f"{len(by_uid)} PET series in {str(folder)!r}: {listing}; choose one with "
            "series_uid"
        )
    else:
        chosen = next(iter(by_uid.values()))
    return load_pet_datasets(
        [ds for _, ds in chosen],
        normalization,
        overrides,
        reference_time_rule=reference_time_rule,
        sources=[str(p) for p, _ in chosen],
        **override_values,
    )
