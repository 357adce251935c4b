"""Write an SUV volume as a DICOM PET (PT) Image series that reads back as that SUV.

:func:`write_pet_series` stores activity concentration (Units BQML, DecayCorrection
START, CorrectedImage ATTN and DECY) with a per-slice RescaleSlope, computed from the
SUVbw given so that :func:`~rtplan.imaging.pet.load_pet` (the vendor-neutral SUV
algorithm of :mod:`rtplan.imaging.suv`) returns it again, up to the 16-bit
quantisation stated in :func:`write_pet_series`.

The series is one static frame (SeriesType STATIC\\IMAGE) of one bed position:
every slice has the same AcquisitionDate/Time, FrameReferenceTime and
ActualFrameDuration, so the QIBA reference time (SeriesDate/SeriesTime) and the
back-computed one (AcquisitionDateTime + Tave - FrameReferenceTime) coincide.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydicom.dataset import Dataset
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid

from rtplan._shared.dicom import (
    format_ds,
    new_dataset,
    set_equipment,
    set_patient,
    set_series,
    set_study,
)
from rtplan._shared.io import atomic_write
from rtplan.errors import GeometryError, InputError, OutputExistsError, from_validation_error
from rtplan.imaging.ct import (
    PatientInfo,
    StudyInfo,
    _check_writable_grid,
    _set_image_geometry,
    _slice_datasets,
    _validated,
    _WritePatient,
)
from rtplan.imaging.grid import Grid
from rtplan.imaging.pet import PETVolume, load_pet_datasets
from rtplan.imaging.suv import NUCLIDE_HALF_LIFE_S

__all__ = ["PET_NUCLIDES", "PETAcquisition", "write_pet_series"]

#: Nuclides the writer knows: (half-life key of NUCLIDE_HALF_LIFE_S, CID 4020 code,
#: default radiopharmaceutical name, its CID 4021 code). Codes as in pydicom's
#: ``codes.cid4020`` / ``codes.cid4021``.
PET_NUCLIDES: dict[str, dict[str, Any]] = {
    "F18": {
        "half_life_key": "F-18",
        "code": ("77004003", "SCT", "^18^Fluorine"),
        "radiopharmaceutical": "PSMA-1007 F^18^",
        "radiopharmaceutical_code": ("126758", "DCM", "PSMA-1007 F^18^"),
        "positron_fraction": 0.9686,
    },
    "Ga68": {
        "half_life_key": "Ga-68",
        "code": ("35337001", "SCT", "^68^Gallium"),
        "radiopharmaceutical": "PSMA-11 Ga^68^",
        "radiopharmaceutical_code": ("C118961", "NCIt", "PSMA-11 Ga^68^"),
        "positron_fraction": 0.8891,
    },
}

#: Largest stored value (signed 16 bit): the hottest voxel of a slice is stored as this.
INT16_MAX = 32767
_WRITTEN_NAME = re.compile(r"^PT_\d{4,}\.dcm$")
#: (orientation, modifier, gantry relationship) codes of the NM/PET Patient Orientation
#: module (CID 19, 20, 21) per PatientPosition.
_ORIENTATION = {
    "HFS": ("supine", "headfirst"), "FFS": ("supine", "feet-first"),
    "HFP": ("prone", "headfirst"), "FFP": ("prone", "feet-first"),
}
_CODES = {
    "recumbent": ("102538003", "SCT", "recumbent"),
    "supine": ("40199007", "SCT", "supine"),
    "prone": ("1240000", "SCT", "prone"),
    "headfirst": ("102540008", "SCT", "headfirst"),
    "feet-first": ("102541007", "SCT", "feet-first"),
}


class PETAcquisition(BaseModel):
    """Patient, dose and timing of a PET series to write (SUVbw inputs).

    Parameters
    ----------
    weight_kg
        PatientWeight (0010,1030), kg.
    injected_dose_bq
        RadionuclideTotalDose (0018,1074): activity at injection, Bq.
    injection_datetime
        RadiopharmaceuticalStartDateTime (0018,1078).
    series_datetime
        SeriesDate/SeriesTime (0008,0021/0031): the decay-correction reference (START).
    acquisition_datetime
        AcquisitionDate/Time (0008,0022/0032) of the frame; default ``series_datetime``;
        not before it.
    nuclide
        ``"F18"`` or ``"Ga68"`` (``"F-18"``, ``"Ga-68"`` accepted).
    half_life_s
        RadionuclideHalfLife (0018,1075), s; default from
        :data:`~rtplan.imaging.suv.NUCLIDE_HALF_LIFE_S` (F-18 6586.2 s, Ga-68 4062.6 s).
    frame_duration_s
        ActualFrameDuration (0018,1242), s.
    radiopharmaceutical
        Radiopharmaceutical (0018,0031); default PSMA-1007 F^18^ or PSMA-11 Ga^68^.

    Examples
    --------
    >>> import datetime as dt
    >>> a = PETAcquisition(weight_kg=70, injected_dose_bq=370e6, nuclide="F-18",
    ...                    injection_datetime=dt.datetime(2025, 1, 1, 10, 0),
    ...                    series_datetime=dt.datetime(2025, 1, 1, 11, 0))
    >>> a.nuclide, a.half_life_s, round(a.decayed_dose_bq / 1e6, 2)
    ('F18', 6586.2, 253.31)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_kg: float = Field(ge=1.0, le=500.0)
    injected_dose_bq: float = Field(ge=1e6, le=1e11)
    injection_datetime: dt.datetime
    series_datetime: dt.datetime
    acquisition_datetime: dt.datetime | None = None
    nuclide: str = "F18"
    half_life_s: float | None = Field(default=None, gt=0)
    frame_duration_s: float = Field(default=180.0, gt=0, le=86400)
    radiopharmaceutical: str | None = Field(default=None, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        raw = str(data.get("nuclide", "F18"))
        key = raw.replace("-", "").replace("^", "").strip().lower()
        names = {k.lower(): k for k in PET_NUCLIDES}
        if key not in names:
            raise ValueError(f"nuclide {raw!r} is not supported: use one of {sorted(PET_NUCLIDES)}")
        data["nuclide"] = names[key]
        if data.get("half_life_s") is None:
            data["half_life_s"] = NUCLIDE_HALF_LIFE_S[PET_NUCLIDES[names[key]]["half_life_key"]]
        if data.get("acquisition_datetime") is None:
            data["acquisition_datetime"] = data.get("series_datetime")
        return data

    @model_validator(mode="after")
    def _times(self) -> PETAcquisition:
        times = (self.injection_datetime, self.series_datetime, self.acquisition_datetime)
        if any(t is not None and t.tzinfo is not None for t in times):
            raise ValueError("give naive local date-times (DICOM DA/TM have no time zone)")
        if not self.injection_datetime < self.series_datetime:
            raise ValueError(
                f"injection {self.injection_datetime.isoformat()} must be before the series "
                f"time {self.series_datetime.isoformat()}"
            )
        if self.acquisition_datetime is None or (
            self.acquisition_datetime < self.series_datetime
        ):
            raise ValueError(
                f"acquisition {self.acquisition_datetime} must not be before the series time "
                f"{self.series_datetime.isoformat()} (the decay reference)"
            )
        return self

    @property
    def elapsed_s(self) -> float:
        """Seconds from injection to the series (decay-correction reference) time."""
        return (self.series_datetime - self.injection_datetime).total_seconds()

    @property
    def decayed_dose_bq(self) -> float:
        """Injected activity decayed to the series time: ``D 2^(-t / T_half)`` (Bq)."""
        assert self.half_life_s is not None
        return self.injected_dose_bq * 2.0 ** (-self.elapsed_s / self.half_life_s)

    @property
    def bqml_per_suv(self) -> float:
        """Activity concentration (Bq/ml) of SUVbw 1: decayed dose / body weight in g."""
        return self.decayed_dose_bq / (self.weight_kg * 1000.0)



def _save(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)

def _slope_text(max_abs_bqml: float) -> str:
    """RescaleSlope as DS text such that ``max_abs_bqml / slope <= INT16_MAX``."""
    if not max_abs_bqml > 0:
        return "1"
    target = max_abs_bqml / INT16_MAX * (1.0 + 1e-9)
    for digits in (10, 9, 8):
        text = f"{target:.{digits}g}".replace("e+", "e")
        if len(text) <= 16:
            # round the text up if needed so that the hottest voxel fits in int16
            if float(text) * INT16_MAX < max_abs_bqml:
                text = f"{float(text) * (1 + 10.0 ** (1 - digits)):.{digits}g}"
            return text
    raise InputError(f"cannot write a RescaleSlope for {max_abs_bqml!r} Bq/ml")  # pragma: no cover


def _da(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d")


def _tm(t: dt.datetime) -> str:
    return t.strftime("%H%M%S") + (f".{t.microsecond:06d}" if t.microsecond else "")


def _code(value: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def _check_folder(folder: Path, overwrite: bool) -> bool:
    """True when ``folder`` exists (and may be replaced); raise when it must not be."""
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"output '{folder}' exists and is not a folder")
    if not folder.exists():
        return False
    entries = sorted(p.name for p in folder.iterdir())
    if entries and not overwrite:
        raise OutputExistsError(
            f"output folder '{folder}' is not empty: choose an empty or new folder, or pass "
            "--force (overwrite=True) to replace the PT_*.dcm series in it"
        )
    others = [n for n in entries if not _WRITTEN_NAME.match(n)]
    if others:
        raise OutputExistsError(
            f"output folder '{folder}' holds files rtplan did not write ({others[:3]}): "
            "they would be lost or mixed with the new series; choose another folder"
        )
    return True


def _pet_base_dataset(
    acq: PETAcquisition,
    pat: PatientInfo,
    stu: StudyInfo,
    grid: Grid,
    uids: dict[str, str],
    patient_position: str,
    series_description: str,
    body_part: str,
) -> Dataset:
    nuc = PET_NUCLIDES[acq.nuclide]
    series_t = acq.series_datetime
    acq_t = acq.acquisition_datetime
    assert acq_t is not None and acq.half_life_s is not None
    lam = math.log(2.0) / acq.half_life_s
    frame_s = acq.frame_duration_s
    x = lam * frame_s
    # decay during the frame (average count time Tave) and from the series time to the frame
    t_ave_s = math.log(x / -math.expm1(-x)) / lam
    offset_s = (acq_t - series_t).total_seconds()
    now = dt.datetime.now()

    ds = new_dataset(PositronEmissionTomographyImageStorage, now)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    set_patient(ds, pat)
    ds.PatientWeight = format_ds(acq.weight_kg)  # Patient Study module
    set_study(ds, stu, uids["study"], date=_da(series_t), time=_tm(series_t))
    set_series(ds, "PT", uids["series"], number="2", description=series_description,
               date=_da(series_t), time=_tm(series_t), body_part=body_part)
    set_equipment(ds, "rtplan synthetic PET")
    # General Image, General Acquisition: the frame
    ds.AcquisitionDate = _da(acq_t)
    ds.AcquisitionTime = _tm(acq_t)
    ds.ContentDate = _da(acq_t)
    ds.ContentTime = _tm(acq_t)
    ds.AcquisitionNumber = "1"
    # Frame of Reference, Image Plane, Image Pixel (signed 16 bit)
    _set_image_geometry(ds, grid, uids["frame_of_reference"])
    # PET Series module
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.NumberOfSlices = grid.shape[0]
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
    ds.DecayCorrection = "START"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT-based (synthetic)"
    ds.ReconstructionMethod = "synthetic: Gaussian-blurred truth"
    ds.CollimatorType = "NONE"
    # PET Isotope module
    rp = Dataset()
    rp.RadionuclideCodeSequence = [_code(nuc["code"])]
    rp.RadiopharmaceuticalRoute = "Intravenous"
    rp.Radiopharmaceutical = acq.radiopharmaceutical or nuc["radiopharmaceutical"]
    if acq.radiopharmaceutical is None:
        rp.RadiopharmaceuticalCodeSequence = [_code(nuc["radiopharmaceutical_code"])]
    rp.RadiopharmaceuticalStartTime = _tm(acq.injection_datetime)
    rp.RadiopharmaceuticalStartDateTime = _da(acq.injection_datetime) + _tm(
        acq.injection_datetime
    )
    rp.RadionuclideTotalDose = format_ds(acq.injected_dose_bq, decimals=3)
    rp.RadionuclideHalfLife = format_ds(acq.half_life_s, decimals=4)
    rp.RadionuclidePositronFraction = format_ds(nuc["positron_fraction"])
    ds.RadiopharmaceuticalInformationSequence = [rp]
    # NM/PET Patient Orientation module
    # (PatientPosition (0018,5100) shall not be present with these sequences)
    orient = _ORIENTATION[patient_position]
    po = _code(_CODES["recumbent"])
    po.PatientOrientationModifierCodeSequence = [_code(_CODES[orient[0]])]
    ds.PatientOrientationCodeSequence = [po]
    ds.PatientGantryRelationshipCodeSequence = [_code(_CODES[orient[1]])]
    # PET Image module
    ds.RescaleIntercept = "0"
    ds.FrameReferenceTime = format_ds((offset_s + t_ave_s) * 1000.0, decimals=3)
    ds.ActualFrameDuration = round(frame_s * 1000.0)
    ds.DecayFactor = format_ds(math.exp(lam * offset_s) * x / -math.expm1(-x))
    ds.LossyImageCompression = "00"
    return ds


def write_pet_series(
    folder: str | os.PathLike[str],
    suv: ArrayLike,
    grid: Grid,
    *,
    weight_kg: float,
    injected_dose_bq: float,
    injection_datetime: dt.datetime,
    series_datetime: dt.datetime,
    acquisition_datetime: dt.datetime | None = None,
    nuclide: str = "F18",
    half_life_s: float | None = None,
    frame_duration_s: float = 180.0,
    radiopharmaceutical: str | None = None,
    patient: PatientInfo | dict | None = None,
    study: StudyInfo | dict | None = None,
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_position: str = "HFS",
    series_description: str = "rtplan synthetic PET",
    body_part: str = "PELVIS",
    overwrite: bool = False,
) -> PETVolume:
    """Write an SUVbw volume as a PET Image series (activity concentration, Bq/ml).

    Parameters
    ----------
    folder
        Output folder, written atomically: the slices are staged in a temporary sibling
        folder that is renamed onto ``folder`` once complete. ``folder`` must not exist or
        be empty, unless ``overwrite`` (then it may only hold an earlier ``PT_*.dcm``
        series, which is replaced as a whole). Files are ``PT_0000.dcm``, ... in grid
        slice order.
    suv
        ``[slice, row, column]`` SUVbw (g/ml) on ``grid``; finite.
    grid
        Axial, right-handed geometry (LPS mm), as for
        :func:`~rtplan.imaging.ct.write_ct_series`.
    weight_kg, injected_dose_bq, injection_datetime, series_datetime
        PatientWeight (0010,1030); RadionuclideTotalDose (0018,1074) in Bq;
        RadiopharmaceuticalStartDateTime (0018,1078); SeriesDate/Time, the decay
        reference of DecayCorrection START.
    acquisition_datetime, nuclide, half_life_s, frame_duration_s, radiopharmaceutical
        See :class:`PETAcquisition`.
    patient, study, study_instance_uid, frame_of_reference_uid
        Patient/study values and UIDs to reuse (e.g. those of the planning CT, so that
        PET and CT share one frame of reference); new UIDs by default.
    patient_position
        ``HFS``, ``FFS``, ``HFP`` or ``FFP``, written as PatientOrientationCodeSequence
        (recumbent; supine or prone) and PatientGantryRelationshipCodeSequence (headfirst
        or feet-first), which replace PatientPosition (0018,5100) in PET images.
    series_description, body_part
        SeriesDescription, BodyPartExamined.
    overwrite
        Replace an earlier series written by this function in ``folder``.

    Returns
    -------
    PETVolume
        The written series as :func:`~rtplan.imaging.pet.load_pet` reads it.

    Raises
    ------
    GeometryError
        Shape mismatch, or a non-axial or left-handed grid.
    InputError
        Non-finite SUV, an unsupported patient position, or acquisition values out of
        range (weight 1-500 kg, dose 1e6-1e11 Bq, injection before the series time).
    OutputExistsError
        ``folder`` holds files and ``overwrite`` is false, or it holds foreign files.

    Notes
    -----
    Activity concentration ``C = SUV x D 2^(-(t_series - t_inj) / T_half) / (1000 W)``
    (Bq/ml; D in Bq, W in kg), the inverse of the SUVbw factor of the DecayCorrection
    START rule. Each slice is stored as signed 16-bit integers ``rint(C / slope)`` with
    its own RescaleSlope ``slope ~= max|C| / 32767`` (RescaleIntercept 0), so the SUV read
    back differs from the input by at most half a quantisation step:
    ``|SUV_read - SUV| <= max|SUV of the slice| / 65534`` (about 1.5e-5 of the slice
    maximum), plus float32 rounding of the loaded volume (relative 6e-8).

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> import numpy as np
    >>> from rtplan.imaging.grid import Grid
    >>> g = Grid((2, 3, 4), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))
    >>> suv = np.linspace(0.0, 12.0, 24).reshape(g.shape)
    >>> pet = write_pet_series(
    ...     tempfile.mkdtemp(), suv, g, weight_kg=80, injected_dose_bq=150e6,
    ...     injection_datetime=dt.datetime(2025, 3, 4, 9, 0),
    ...     series_datetime=dt.datetime(2025, 3, 4, 10, 0), nuclide="Ga68")
    >>> bool(np.abs(pet.suv - suv).max() <= 12.0 / 65534), pet.rules[0][:32]
    (True, 'BQML, DecayCorrection START: dos')
    """
    folder = Path(folder)
    values = np.asarray(suv, dtype=float)
    if values.shape != grid.shape:
        raise GeometryError(f"SUV shape {values.shape} differs from grid shape {grid.shape}")
    if not np.all(np.isfinite(values)):
        raise InputError("the SUV volume holds NaN or infinite values: give finite SUV")
    try:
        acq = PETAcquisition(
            weight_kg=weight_kg, injected_dose_bq=injected_dose_bq,
            injection_datetime=injection_datetime, series_datetime=series_datetime,
            acquisition_datetime=acquisition_datetime, nuclide=nuclide,
            half_life_s=half_life_s, frame_duration_s=frame_duration_s,
            radiopharmaceutical=radiopharmaceutical,
        )
    except ValidationError as exc:
        raise from_validation_error(exc, "PET acquisition") from None
    pat = _validated(_WritePatient, patient, "patient")
    stu = _validated(StudyInfo, study, "study")
    _check_writable_grid(grid)
    if patient_position not in _ORIENTATION:
        raise InputError(
            f"patient_position {patient_position!r} is not supported: use one of "
            f"{sorted(_ORIENTATION)} (written as the NM/PET Patient Orientation codes)"
        )
    exists = _check_folder(folder, overwrite)

    uids = {
        "study": study_instance_uid or generate_uid(),
        "series": generate_uid(),
        "frame_of_reference": frame_of_reference_uid or generate_uid(),
    }
    base = _pet_base_dataset(acq, pat, stu, grid, uids, patient_position,
                             series_description, body_part)
    n = grid.shape[0]
    bqml = values * acq.bqml_per_suv
    datasets = _slice_datasets(base, grid)
    for k, ds in enumerate(datasets):
        ds.ImageIndex = k + 1
        slope_text = _slope_text(float(np.abs(bqml[k]).max()))
        slope = float(slope_text)
        stored = np.clip(np.rint(bqml[k] / slope), -INT16_MAX, INT16_MAX).astype(np.int16)
        ds.RescaleSlope = slope_text
        ds.SmallestImagePixelValue = int(stored.min())
        ds.LargestImagePixelValue = int(stored.max())
        ds.PixelData = stored.tobytes()

    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        for k, ds in enumerate(datasets):
            atomic_write(stage / f"PT_{k:04d}.dcm", partial(_save, ds))
        if exists:
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(folder, old)
            try:
                os.replace(stage, folder)
            except BaseException:
                os.replace(old, folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, folder)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    paths = [str(folder / f"PT_{k:04d}.dcm") for k in range(n)]
    return load_pet_datasets(datasets, "bw", sources=paths)

