"""A synthetic cohort with a known dose: CT, RTSTRUCT, RTPLAN and RTDOSE per patient.

Each patient gets a small CT of the demo pelvis (:func:`rtplan.demo.make_demo_patient`),
box-shaped ROIs (a PTV of varied size and position, Rectum, Bladder) whose edges lie on
dose-voxel boundaries, an RTPLAN (:func:`build_rtplan`) of 3, 5 or 34 fractions, and an
RTDOSE whose dose depends on z only, linearly::

    D(z) = prescription_gy + gradient_gy_per_mm * (z - ptv_center_z_mm)

so every DVH metric is known by hand (see :class:`SyntheticPatient`): a box ROI on
contour planes ``z_k`` (3 mm apart) receives ``D(z_k)`` on the whole plane. The dose is
written with 32-bit pixels (quantisation below 1e-8 Gy).

Broken and incomplete patients (``broken=True``): a plan without dose, a dose without
plan, a truncated (unreadable) dose file, a patient with two plans, a dose in relative
units (refused when computing) and a patient without CT.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np
import pydicom
from pydantic import BaseModel, ConfigDict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    RTPlanStorage,
    RTStructureSetStorage,
    generate_uid,
)

from rtplan import __version__
from rtplan._shared.dicom import format_ds
from rtplan._shared.io import atomic_write
from rtplan.errors import InvalidParameterError

__all__ = [
    "SyntheticPatient",
    "SyntheticRoi",
    "build_rtplan",
    "write_rtplan",
    "write_synthetic_cohort",
]

#: CT and dose grid of a synthetic patient: 16 slices of 3 mm, 40 x 40 pixels of 8 mm.
_SHAPE = (16, 40, 40)
_SPACING = (3.0, 8.0, 8.0)
#: Fractionations cycled through: (fractions, prescription Gy).
_SCHEDULES = ((3, 27.0), (5, 37.5), (34, 61.2))


def build_rtplan(
    *,
    patient_id: str,
    patient_name: str = "",
    study_instance_uid: str,
    frame_of_reference_uid: str,
    structure_set_uid: str | None,
    fractions: int,
    prescription_gy: float | None = None,
    label: str = "rtplan",
    sop_instance_uid: str | None = None,
    when: _dt.datetime | None = None,
) -> pydicom.FileDataset:
    """A minimal RT Plan: one fraction group, no beams (for test data and cohorts).

    Parameters
    ----------
    patient_id, patient_name, study_instance_uid, frame_of_reference_uid
        Patient, study and frame of reference of the plan.
    structure_set_uid
        SOPInstanceUID of the RTSTRUCT the plan was made on (ReferencedStructureSet
        Sequence), or None.
    fractions
        NumberOfFractionsPlanned (>= 1).
    prescription_gy
        TargetPrescriptionDose of one TARGET dose reference (Gy), or None.
    label
        RTPlanLabel (16 characters at most).
    sop_instance_uid
        The plan's SOPInstanceUID (new by default).
    when
        Creation date and time (default now).

    Returns
    -------
    pydicom.FileDataset
        RTPlanGeometry PATIENT, FractionGroupSequence with NumberOfBeams 0.

    Examples
    --------
    >>> ds = build_rtplan(patient_id="P1", study_instance_uid="1.2.3",
    ...                   frame_of_reference_uid="1.2.4", structure_set_uid="1.2.5",
    ...                   fractions=5, prescription_gy=37.5)
    >>> ds.Modality, int(ds.FractionGroupSequence[0].NumberOfFractionsPlanned)
    ('RTPLAN', 5)
    >>> float(ds.DoseReferenceSequence[0].TargetPrescriptionDose)
    37.5
    """
    if int(fractions) != fractions or fractions < 1:
        raise InvalidParameterError(f"fractions must be a whole number >= 1, got {fractions!r}")
    now = when or _dt.datetime.now()
    uid = UID(str(sop_instance_uid or generate_uid()))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTPlanStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RTPlanStorage
    ds.SOPInstanceUID = uid
    ds.Modality = "RTPLAN"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = "1"
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "rtplan"
    ds.SoftwareVersions = __version__
    ds.OperatorsName = ""
    ds.RTPlanLabel = label[:16]
    ds.RTPlanDate = now.strftime("%Y%m%d")
    ds.RTPlanTime = now.strftime("%H%M%S")
    ds.RTPlanGeometry = "PATIENT"
    ds.ApprovalStatus = "UNAPPROVED"
    if structure_set_uid:
        ref = Dataset()
        ref.ReferencedSOPClassUID = RTStructureSetStorage
        ref.ReferencedSOPInstanceUID = structure_set_uid
        ds.ReferencedStructureSetSequence = DicomSequence([ref])
    if prescription_gy is not None:
        dr = Dataset()
        dr.DoseReferenceNumber = 1
        dr.DoseReferenceStructureType = "SITE"
        dr.DoseReferenceDescription = "PTV"
        dr.DoseReferenceType = "TARGET"
        dr.TargetPrescriptionDose = format_ds(float(prescription_gy))
        ds.DoseReferenceSequence = DicomSequence([dr])
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = int(fractions)
    fg.NumberOfBeams = 0
    fg.NumberOfBrachyApplicationSetups = 0
    ds.FractionGroupSequence = DicomSequence([fg])
    return ds


def write_rtplan(path: str | os.PathLike[str], *, overwrite: bool = False,
                 **fields: object) -> Path:
    """Write :func:`build_rtplan` ``(**fields)`` atomically; return the path.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.dose import fractions_from_rtplan
    >>> p = write_rtplan(Path(tempfile.mkdtemp()) / "RP.dcm", patient_id="P1",
    ...                  study_instance_uid="1.2.3", frame_of_reference_uid="1.2.4",
    ...                  structure_set_uid=None, fractions=34)
    >>> fractions_from_rtplan(p)
    34
    """
    ds = build_rtplan(**fields)  # type: ignore[arg-type]
    return atomic_write(path, lambda t: ds.save_as(t, enforce_file_format=True),
                        overwrite=overwrite)


class SyntheticRoi(BaseModel):
    """A box ROI of a synthetic patient: contour planes and in-plane rectangle (mm)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    planes_z_mm: list[float]
    x_mm: tuple[float, float]
    y_mm: tuple[float, float]

    @property
    def volume_cc(self) -> float:
        """Volume under the slab convention: planes x 3 mm x rectangle area (cm3)."""
        area = (self.x_mm[1] - self.x_mm[0]) * (self.y_mm[1] - self.y_mm[0])
        return len(self.planes_z_mm) * _SPACING[0] * area / 1000.0


class SyntheticPatient(BaseModel):
    """The truth of one synthetic patient (what the tests check by hand)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    kind: str = "normal"
    plans: list[dict[str, float | int | str]] = []
    rois: list[SyntheticRoi] = []
    folder: str = ""

    def dose_gy(self, z_mm: float | np.ndarray, plan: int = 0) -> np.ndarray:
        """The analytic total dose (Gy) at height ``z_mm`` for plan ``plan``."""
        p = self.plans[plan]
        return np.asarray(float(p["prescription_gy"]) + float(p["gradient_gy_per_mm"])
                          * (np.asarray(z_mm, dtype=float) - float(p["center_z_mm"])))


def _box_contours(roi: SyntheticRoi, ct_z: np.ndarray) -> list:
    from rtplan.structures.contour import PlanarContour

    out = []
    (x0, x1), (y0, y1) = roi.x_mm, roi.y_mm
    for z in roi.planes_z_mm:
        k = int(np.argmin(np.abs(ct_z - z)))
        pts = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
        out.append(PlanarContour(k, pts))
    return out


def _write_patient(
    folder: Path, pid: str, rng: np.random.Generator, schedules: list[tuple[int, float]],
    *, kind: str = "normal", overwrite: bool = False, ct_folder: Path | None = None,
    prefix: str = "",
) -> SyntheticPatient:
    from rtplan.demo import make_demo_patient
    from rtplan.dose.rtdose import DoseGrid, write_rtdose
    from rtplan.imaging.ct import write_ct_series
    from rtplan.structures.contour import ROIContours
    from rtplan.structures.rtstruct import write_rtstruct

    demo = make_demo_patient(shape=_SHAPE, spacing_mm=_SPACING)
    grid = demo.grid
    ct_folder = ct_folder or folder / "CT"
    ct = write_ct_series(ct_folder, demo.volume_hu, grid,
                         patient={"name": f"SYNTH^{pid}", "patient_id": pid},
                         series_description="rtplan synthetic cohort CT", overwrite=overwrite)
    z = np.asarray(grid.index_to_world(np.c_[np.arange(_SHAPE[0]), np.zeros(_SHAPE[0]),
                                              np.zeros(_SHAPE[0])])[:, 2])
    ox, oy = float(grid.origin_mm[0]), float(grid.origin_mm[1])
    px = _SPACING[2]

    def edges(first: int, n: int, origin: float) -> tuple[float, float]:
        # dose-voxel boundaries: origin + (index - 0.5) * pixel
        return origin + (first - 0.5) * px, origin + (first + n - 0.5) * px

    # a PTV of varied size and position ("lesion"), Rectum and Bladder boxes
    k0 = int(rng.integers(2, 6))
    nk = int(rng.integers(3, 7))
    c0, nc = int(rng.integers(12, 22)), int(rng.integers(2, 5))
    r0, nr = int(rng.integers(12, 22)), int(rng.integers(2, 5))
    ptv = SyntheticRoi(name="PTV", planes_z_mm=[float(v) for v in z[k0:k0 + nk]],
                       x_mm=edges(c0, nc, ox), y_mm=edges(r0, nr, oy))
    rect = SyntheticRoi(name="Rectum", planes_z_mm=[float(v) for v in z[1:12]],
                        x_mm=edges(18, 3, ox), y_mm=edges(25, 3, oy))
    blad = SyntheticRoi(name="Bladder", planes_z_mm=[float(v) for v in z[6:14]],
                        x_mm=edges(16, 6, ox), y_mm=edges(10, 5, oy))
    rois = [ptv, rect, blad]
    contours = [
        ROIContours(r.name, "PTV" if r.name == "PTV" else "ORGAN", (255, 0, 0),
                    _box_contours(r, z))
        for r in rois
    ]
    rs = write_rtstruct(folder / f"{prefix}RS.dcm", ct, contours, overwrite=overwrite)
    rs_uid = str(pydicom.dcmread(rs, stop_before_pixels=True).SOPInstanceUID)
    center = float(np.mean(ptv.planes_z_mm))
    plans: list[dict[str, float | int | str]] = []
    for i, (fx, rx) in enumerate(schedules):
        gradient = float(rng.uniform(0.05, 0.25)) * rx / 60.0
        # keep the dose positive over the grid
        lowest = rx + gradient * (float(z.min()) - center)
        if lowest <= 0.5:  # pragma: no cover - the ranges above keep it positive
            gradient = (rx - 0.5) / (center - float(z.min()))
        plan_uid = generate_uid()
        label = f"{fx}fx"
        if kind != "dose_without_plan":
            write_rtplan(folder / f"{prefix}RP_{i}.dcm", patient_id=pid,
                         patient_name=f"SYNTH^{pid}", study_instance_uid=ct.study_instance_uid,
                         frame_of_reference_uid=ct.frame_of_reference_uid,
                         structure_set_uid=rs_uid, fractions=fx, prescription_gy=rx,
                         label=label, sop_instance_uid=plan_uid, overwrite=overwrite)
        plans.append({"plan_uid": plan_uid, "fractions": fx, "prescription_gy": rx,
                      "gradient_gy_per_mm": gradient, "center_z_mm": center, "label": label})
        if kind == "plan_without_dose":
            continue
        dose = rx + gradient * (z - center)
        arr = np.broadcast_to(dose[:, None, None], _SHAPE).astype(np.float64)
        template = Dataset()
        template.PatientID = pid
        template.PatientName = f"SYNTH^{pid}"
        template.StudyInstanceUID = ct.study_instance_uid
        path = write_rtdose(
            folder / f"{prefix}RD_{i}.dcm", DoseGrid(arr, grid, ct.frame_of_reference_uid),
            description=f"synthetic dose {fx} fx", template=template, dose_type="PHYSICAL",
            referenced_plans=[plan_uid], bits_allocated=32, overwrite=overwrite,
        )
        if kind == "relative_dose":
            rel = pydicom.dcmread(path)
            rel.DoseUnits = "RELATIVE"
            rel.save_as(path)
        if kind == "corrupt_dose":
            data = path.read_bytes()
            path.write_bytes(data[:200])
    if kind == "no_ct":
        for f in ct_folder.iterdir():
            f.unlink()
        ct_folder.rmdir()
    return SyntheticPatient(patient_id=pid, kind=kind, plans=plans, rois=rois,
                            folder=str(folder))


#: The broken and incomplete patients added by ``broken=True`` (kind -> patient id).
BROKEN_KINDS = {
    "plan_without_dose": "SYN-PLAN-NO-DOSE",
    "dose_without_plan": "SYN-DOSE-NO-PLAN",
    "corrupt_dose": "SYN-CORRUPT-DOSE",
    "two_plans": "SYN-TWO-PLANS",
    "relative_dose": "SYN-RELATIVE-DOSE",
    "no_ct": "SYN-NO-CT",
}


def write_synthetic_cohort(
    root: str | os.PathLike[str],
    n_patients: int,
    *,
    broken: bool = True,
    seed: int = 0,
    overwrite: bool = False,
) -> list[SyntheticPatient]:
    """Write ``n_patients`` synthetic patients (plus the broken ones) under ``root``.

    Folder layouts vary on purpose: ``SYN-000/`` with all files,
    ``nested/SYN-001/files/``, and the RT objects of every third patient together in
    ``mixed/rt/`` with their CTs in ``mixed/images/``.

    Parameters
    ----------
    root
        Output folder.
    n_patients
        Normal patients, ``SYN-000``, ``SYN-001``, ...; fractions cycle 3, 5, 34
        (27, 37.5 and 61.2 Gy prescriptions).
    broken
        Also write the patients of :data:`BROKEN_KINDS`.
    seed
        Random seed of the ROI positions and dose gradients.
    overwrite
        Replace files written before.

    Returns
    -------
    list of SyntheticPatient
        The truth of every patient.

    Examples
    --------
    >>> import tempfile
    >>> truth = write_synthetic_cohort(tempfile.mkdtemp(), 3, broken=False)
    >>> [(t.patient_id, t.plans[0]["fractions"]) for t in truth]
    [('SYN-000', 3), ('SYN-001', 5), ('SYN-002', 34)]
    """
    if n_patients < 0:
        raise InvalidParameterError(f"n_patients must be >= 0, got {n_patients}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_patients):
        pid = f"SYN-{i:03d}"
        layout = i % 3
        if layout == 2:  # RT objects of several patients in one folder, CTs apart
            out.append(_write_patient(root / "mixed" / "rt", pid, rng, [_SCHEDULES[i % 3]],
                                      overwrite=overwrite, prefix=f"{pid}_",
                                      ct_folder=root / "mixed" / "images" / f"s{i:03d}"))
            continue
        folder = root / pid if layout == 0 else root / "nested" / pid / "files"
        out.append(_write_patient(folder, pid, rng, [_SCHEDULES[i % 3]],
                                  overwrite=overwrite))
    if broken:
        for kind, pid in BROKEN_KINDS.items():
            schedules = [_SCHEDULES[1], _SCHEDULES[2]] if kind == "two_plans" else [
                _SCHEDULES[0]]
            out.append(_write_patient(root / "broken" / pid, pid, rng, schedules, kind=kind,
                                      overwrite=overwrite))
    return out
