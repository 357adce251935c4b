"""Index a tree of DICOM files of many patients: headers only, linked by UID.

Any folder layout: every file under the root is tried (sorted paths, so the result does
not depend on the file system's order). Files without the DICOM preamble are counted
as ignored; a DICOM file that cannot be read, or lacks what linking needs, is recorded
with the reason and never stops the run.

Linking, per PatientID:

* RTDOSE -> RTPLAN by the dose's ReferencedRTPlanSequence. Among several doses of one
  plan, those of DoseSummationType PLAN or FRACTION are candidates (BEAM doses are not
  the dose of a course); two candidates make the plan ``ambiguous``.
* RTPLAN -> RTSTRUCT by the plan's ReferencedStructureSetSequence, else the dose's,
  else the only RTSTRUCT of the plan's frame of reference (noted in the issues).
* RTSTRUCT -> CT by the series its ReferencedFrameOfReferenceSequence names; CT slices
  the RTSTRUCT references (ContourImageSequence) but that are not found are reported.
  The CT is not needed for DVH metrics: a plan without its CT is ``usable``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from rtplan.cohort.models import (
    BadFile,
    CohortIndex,
    PatientEntry,
    PatientStatus,
    PlanEntry,
    PlanStatus,
)
from rtplan.errors import InputError

__all__ = ["index_tree"]

_MODALITY_BY_CLASS = {
    "1.2.840.10008.5.1.4.1.1.481.5": "RTPLAN",
    "1.2.840.10008.5.1.4.1.1.481.2": "RTDOSE",
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",
}

#: Header elements read (the rest of each file, e.g. contours and pixels, is skipped).
_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "StudyInstanceUID",
    "SeriesInstanceUID", "FrameOfReferenceUID", "ReferencedRTPlanSequence",
    "ReferencedStructureSetSequence", "ReferencedFrameOfReferenceSequence",
    "FractionGroupSequence", "DoseReferenceSequence", "DoseSummationType", "RTPlanLabel",
]


@dataclass
class _File:
    path: str
    modality: str
    sop_uid: str
    patient_id: str
    series_uid: str = ""
    frame_uid: str = ""
    ref_plans: list[str] = field(default_factory=list)
    ref_structs: list[str] = field(default_factory=list)
    ref_series: list[str] = field(default_factory=list)
    ref_images: set[str] = field(default_factory=set)
    summation: str = ""
    fractions: int | None = None
    fraction_issue: str = ""
    prescription_gy: float | None = None
    label: str = ""


def _uids(ds: pydicom.Dataset, keyword: str) -> list[str]:
    return [str(r.get("ReferencedSOPInstanceUID", "") or "") for r in ds.get(keyword, [])
            if r.get("ReferencedSOPInstanceUID")]


def _read(path: Path) -> _File | None:
    """Header record of a DICOM file; None when the file is not DICOM at all."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    if head[128:132] != b"DICM":
        return None
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
    sop_class = str(ds.get("SOPClassUID", "") or "")
    modality = str(ds.get("Modality", "") or "") or _MODALITY_BY_CLASS.get(sop_class, "")
    sop = str(ds.get("SOPInstanceUID", "") or "")
    pid = str(ds.get("PatientID", "") or "").strip()
    if not sop:
        raise InputError("no SOPInstanceUID")
    if not pid:
        raise InputError("no PatientID: cannot tell whose file it is")
    f = _File(str(path), modality.upper(), sop, pid,
              series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
              frame_uid=str(ds.get("FrameOfReferenceUID", "") or ""))
    if f.modality == "RTDOSE":
        f.ref_plans = _uids(ds, "ReferencedRTPlanSequence")
        f.ref_structs = _uids(ds, "ReferencedStructureSetSequence")
        f.summation = str(ds.get("DoseSummationType", "") or "").upper()
    elif f.modality == "RTPLAN":
        f.ref_structs = _uids(ds, "ReferencedStructureSetSequence")
        f.label = str(ds.get("RTPlanLabel", "") or "")
        groups = list(ds.get("FractionGroupSequence", []))
        if len(groups) == 1 and groups[0].get("NumberOfFractionsPlanned"):
            f.fractions = int(groups[0].NumberOfFractionsPlanned)
            if f.fractions < 1:
                f.fractions, f.fraction_issue = None, "NumberOfFractionsPlanned < 1"
        elif not groups:
            f.fraction_issue = "no FractionGroupSequence: number of fractions unknown"
        elif len(groups) > 1:
            f.fraction_issue = (f"{len(groups)} fraction groups: the number of fractions "
                                "is ambiguous")
        else:
            f.fraction_issue = "NumberOfFractionsPlanned missing"
        rx = [float(r.TargetPrescriptionDose) for r in ds.get("DoseReferenceSequence", [])
              if str(r.get("DoseReferenceType", "")).upper() == "TARGET"
              and r.get("TargetPrescriptionDose") is not None]
        f.prescription_gy = max(rx) if rx else None
    elif f.modality == "RTSTRUCT":
        for fr in ds.get("ReferencedFrameOfReferenceSequence", []):
            if fr.get("FrameOfReferenceUID") and not f.frame_uid:
                f.frame_uid = str(fr.FrameOfReferenceUID)
            for st in fr.get("RTReferencedStudySequence", []):
                for se in st.get("RTReferencedSeriesSequence", []):
                    if se.get("SeriesInstanceUID"):
                        f.ref_series.append(str(se.SeriesInstanceUID))
                    for im in se.get("ContourImageSequence", []):
                        if im.get("ReferencedSOPInstanceUID"):
                            f.ref_images.add(str(im.ReferencedSOPInstanceUID))
    return f


def _walk(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out += [Path(dirpath) / n for n in sorted(filenames)]
    return out


def _link_patient(pid: str, files: list[_File]) -> PatientEntry:
    issues: list[str] = []
    by_uid: dict[str, _File] = {}
    for f in files:
        if f.sop_uid in by_uid:
            issues.append(f"duplicate SOPInstanceUID {f.sop_uid}: '{f.path}' ignored, "
                          f"'{by_uid[f.sop_uid].path}' used")
            continue
        by_uid[f.sop_uid] = f
    kept = list(by_uid.values())
    plans = [f for f in kept if f.modality == "RTPLAN"]
    doses = [f for f in kept if f.modality == "RTDOSE"]
    structs = [f for f in kept if f.modality == "RTSTRUCT"]
    ct_by_series: dict[str, set[str]] = defaultdict(set)
    for f in kept:
        if f.modality == "CT":
            ct_by_series[f.series_uid].add(f.sop_uid)
    plan_uids = {p.sop_uid for p in plans}
    for d in doses:
        if not d.ref_plans:
            issues.append(f"RTDOSE '{d.path}' references no RTPLAN: its fraction count is "
                          "unknown, not used")
        elif not plan_uids.intersection(d.ref_plans):
            issues.append(f"RTDOSE '{d.path}' references RTPLAN {d.ref_plans[0]}, which was "
                          "not found: dose without plan, not used")
    if not plans:
        issues.append("no RTPLAN found")
    if len(plans) > 1:
        issues.append(f"{len(plans)} RTPLANs: each is computed separately; choose the one "
                      "to analyse when joining outcomes")
    entries = [_link_plan(pid, p, doses, structs, ct_by_series) for p in plans]
    status: PatientStatus
    if not any(e.computable for e in entries):
        status = "incomplete"
    elif len(plans) > 1 or any(e.status == "ambiguous" for e in entries):
        status = "ambiguous"
    elif all(e.status == "complete" for e in entries) and not issues:
        status = "complete"
    else:
        status = "usable"
    return PatientEntry(patient_id=pid, status=status, plans=entries, issues=issues)


def _link_plan(pid: str, plan: _File, doses: list[_File], structs: list[_File],
               ct_by_series: dict[str, set[str]]) -> PlanEntry:
    issues: list[str] = []
    blocking: list[str] = []
    ambiguous = False
    mine = [d for d in doses if plan.sop_uid in d.ref_plans]
    usable = [d for d in mine if d.summation in ("PLAN", "FRACTION")]
    dose: _File | None = None
    if len(usable) == 1:
        dose = usable[0]
    elif len(usable) > 1:
        ambiguous = True
        blocking.append(f"{len(usable)} RTDOSE files of this plan: "
                        + ", ".join(f"'{d.path}'" for d in usable))
    elif mine:
        kinds = sorted({d.summation or "?" for d in mine})
        blocking.append(f"only RTDOSE of DoseSummationType {kinds}: export the plan dose")
    else:
        blocking.append("no RTDOSE references this plan")
    if plan.fractions is None:
        blocking.append(plan.fraction_issue or "number of fractions unknown")
    struct: _File | None = None
    by_uid = {s.sop_uid: s for s in structs}
    refs = plan.ref_structs or (dose.ref_structs if dose else [])
    found = [by_uid[u] for u in refs if u in by_uid]
    if found:
        struct = found[0]
    elif refs:
        blocking.append(f"RTSTRUCT {refs[0]} referenced but not found")
    else:
        same = [s for s in structs if s.frame_uid and s.frame_uid == plan.frame_uid]
        if len(same) == 1:
            struct = same[0]
            issues.append("RTSTRUCT linked by frame of reference (the plan references none)")
        elif len(same) > 1:
            ambiguous = True
            blocking.append(f"the plan references no RTSTRUCT and {len(same)} share its "
                            "frame of reference")
        else:
            blocking.append("no RTSTRUCT found for this plan")
    ct_series, n_ct, n_ref = None, 0, 0
    if struct is not None:
        n_ref = len(struct.ref_images)
        for s in struct.ref_series:
            ct_series = s
            present = ct_by_series.get(s, set())
            n_ct = len(present)
            missing = len(struct.ref_images - present) if struct.ref_images else 0
            if not present:
                issues.append(f"CT series {s} referenced by the RTSTRUCT not found")
            elif missing:
                issues.append(f"{missing} of {n_ref} CT images referenced by the RTSTRUCT "
                              "not found")
            break
        else:
            issues.append("the RTSTRUCT references no CT series")
    status: PlanStatus
    if blocking:
        status = "ambiguous" if ambiguous else "incomplete"
    else:
        status = "usable" if issues else "complete"
    return PlanEntry(
        patient_id=pid, plan_uid=plan.sop_uid, plan_label=plan.label, plan_path=plan.path,
        dose_path=dose.path if dose else None, structure_path=struct.path if struct else None,
        ct_series_uid=ct_series, ct_files=n_ct, ct_referenced=n_ref, fractions=plan.fractions,
        prescription_gy=plan.prescription_gy, status=status, issues=blocking + issues,
    )


def index_tree(root: str | os.PathLike[str]) -> CohortIndex:
    """Walk ``root``, read DICOM headers and link each patient's CT, RTSTRUCT, RTPLAN, RTDOSE.

    Parameters
    ----------
    root
        Folder with DICOM files of any number of patients, in any layout.

    Returns
    -------
    CohortIndex
        Per patient: status, plans with their linked files, issues; unreadable files
        with the reason (``bad_files``).

    Raises
    ------
    InputError
        ``root`` is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> from rtplan.cohort.synthetic import write_synthetic_cohort
    >>> root = tempfile.mkdtemp()
    >>> _ = write_synthetic_cohort(root, 2, broken=False)
    >>> idx = index_tree(root)
    >>> [(p.patient_id, p.status, p.plans[0].fractions) for p in idx.patients]
    [('SYN-000', 'complete', 3), ('SYN-001', 'complete', 5)]
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"'{root}' is not a folder: give the root of the DICOM tree")
    paths = _walk(base)
    bad: list[BadFile] = []
    records: dict[str, list[_File]] = defaultdict(list)
    ignored = 0
    n_dicom = 0
    for p in paths:
        try:
            rec = _read(p)
        except (InvalidDicomError, InputError, OSError, ValueError, TypeError, KeyError,
                AttributeError, EOFError) as exc:
            bad.append(BadFile(path=str(p), reason=f"{type(exc).__name__}: {exc}"[:500]))
            continue
        except Exception as exc:
            bad.append(BadFile(path=str(p), reason=f"unexpected {type(exc).__name__}: {exc}"
                               [:500]))
            continue
        if rec is None:
            ignored += 1
            continue
        n_dicom += 1
        records[rec.patient_id].append(rec)
    patients = [_link_patient(pid, records[pid]) for pid in sorted(records)]
    return CohortIndex(root=str(base), n_files=len(paths), n_dicom=n_dicom,
                       n_ignored=ignored, patients=patients, bad_files=bad)
