"""Benchmark: EQD2 conversion and DVHs of RTDOSE grids, rtplan vs dicompyler-core.

1. The shared Eclipse example (98 x 129 x 194 dose grid, 9 ROIs with DVHs): read, EQD2
   (one alpha/beta, and per-ROI alpha/beta), DVHs of all ROIs with rtplan
   (supersampling 1 and 3) and with dicompyler-core's ``dvhcalc.get_dvh`` (default
   settings: no interpolation) on the same files, with the volume and mean-dose
   differences and Eclipse's own values.
2. A synthetic 512 x 512 x 200 grid (1 x 1 x 2 mm) with five contoured ROIs, written
   as an RTDOSE and a minimal RTSTRUCT: EQD2 of the 52 M voxels, and DVHs of every ROI
   with both tools.

dicompyler-core is not an rtplan dependency (``pip install dicompyler-core``); version
0.5.6 still imports ``pydicom.read_file``, which pydicom 3 removed, so the benchmark
aliases it to ``pydicom.dcmread`` before importing. Without it only rtplan is timed.

    .venv/bin/python benchmarks/dose.py [--skip-synthetic]
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.dicomio
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ImplicitVRLittleEndian, RTStructureSetStorage, generate_uid

from rtplan.dose import (
    AlphaBetaSpec,
    DoseGrid,
    eqd2_dose,
    eqd2_map,
    read_rtdose,
    roi_masks,
    structure_dvhs,
    write_rtdose,
)
from rtplan.imaging import Grid
from rtplan.structures.rtstruct import read_rtstruct

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dicompyler-core-rt"


def _dvhcalc():
    pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    pydicom.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    try:
        from dicompylercore import dvhcalc
    except ImportError as exc:
        print(f"dicompyler-core not available ({exc}): pip install dicompyler-core")
        return None
    return dvhcalc


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _dcc_all(dvhcalc, rs, rd, numbers):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for number, name in numbers.items():
            out[name] = dvhcalc.get_dvh(str(rs), str(rd), number)
    return out


def _compare(ours, theirs, eclipse=None):
    rows = []
    for name, h in ours.items():
        t = theirs.get(name) if theirs else None
        line = f"  {name:16s} V {h.total_volume_cc:10.3f} cm3  mean {h.mean_gy:8.4f} Gy"
        if t is not None:
            line += (f" | dicompyler V {t.volume:10.3f} ({h.total_volume_cc - t.volume:+.3f})"
                     f" mean {t.mean:8.4f} ({h.mean_gy - t.mean:+.4f})")
        if eclipse and name in eclipse:
            ev, em = eclipse[name]
            line += f" | Eclipse V {ev:10.3f} mean {em:8.4f}"
        rows.append(line)
    print("\n".join(rows))


def shared_example(dvhcalc) -> None:
    rd, rp, rs = SHARED / "rtdose.dcm", SHARED / "rtplan.dcm", SHARED / "rtss.dcm"
    print(f"== shared Eclipse example ({rd})")
    t_read, dose = _timed(lambda: read_rtdose(rd, rtplan=rp))
    print(f"read RTDOSE {dose.grid.shape}: {t_read * 1e3:.1f} ms")
    t_eq, eq = _timed(lambda: eqd2_dose(dose, 3.0))
    print(f"EQD2 a/b 3 Gy, {dose.dose_gy.size:,} voxels: {t_eq * 1e3:.1f} ms")
    ss = read_rtstruct(rs)
    spec = AlphaBetaSpec(default_alpha_beta_gy=3.0,
                         roi_alpha_beta_gy={"Tumor Bed": 10.0, "Breast": 4.0})
    t_mask, masks = _timed(lambda: roi_masks(ss, dose.grid, ["Tumor Bed", "Breast"]))
    t_eqm, _ = _timed(lambda: eqd2_dose(dose, spec, masks))
    print(f"masks of 2 ROIs on the dose grid: {t_mask * 1e3:.1f} ms; EQD2 with per-ROI "
          f"alpha/beta: {t_eqm * 1e3:.1f} ms")
    ds = pydicom.dcmread(rd)
    names = {r.number: r.name for r in ss.rois}
    eclipse = {}
    for item in ds.DVHSequence:
        n = names[int(item.DVHReferencedROISequence[0].ReferencedROINumber)]
        eclipse[n] = (float(item.DVHData[1]), float(item.DVHMeanDose) * 0.14)
    numbers = {r.number: r.name for r in ss.rois if r.polygons_mm}
    t1, ours1 = _timed(lambda: structure_dvhs(dose, ss, supersampling=1))
    t3, ours3 = _timed(lambda: structure_dvhs(dose, ss, supersampling=3))
    print(f"rtplan DVHs of {len(ours1)} ROIs: supersampling 1 {t1:.2f} s, "
          f"supersampling 3 {t3:.2f} s")
    theirs = None
    if dvhcalc is not None:
        td, theirs = _timed(lambda: _dcc_all(dvhcalc, rs, rd, numbers))
        print(f"dicompyler-core DVHs of {len(theirs)} ROIs: {td:.2f} s "
              f"(rtplan s=1 is {td / t1:.1f}x faster, s=3 {td / t3:.1f}x)")
    print("physical dose, rtplan supersampling 1 vs dicompyler-core vs Eclipse (Gy, cm3):")
    _compare(ours1, theirs, eclipse)
    print("physical dose, rtplan supersampling 3 vs dicompyler-core vs Eclipse:")
    _compare(ours3, theirs, eclipse)
    if dvhcalc is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "eqd2.dcm"
            write_rtdose(out, eq, description="EQD2 LQ a/b 3 Gy", template=dose.dataset)
            t1e, ours_e = _timed(lambda: structure_dvhs(eq, ss, supersampling=1))
            tde, theirs_e = _timed(lambda: _dcc_all(dvhcalc, rs, out, numbers))
            print(f"EQD2 (a/b 3) DVHs: rtplan s=1 {t1e:.2f} s, dicompyler-core on the "
                  f"written EQD2 RTDOSE {tde:.2f} s")
            _compare(ours_e, theirs_e)


def _minimal_rtstruct(path: Path, rois: dict[str, list[np.ndarray]], frame: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds = pydicom.FileDataset(str(path), Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.FrameOfReferenceUID = frame
    ss_rois, contours, obs = [], [], []
    for number, (name, polys) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber = number
        item.ROIName = name
        item.ReferencedFrameOfReferenceUID = frame
        ss_rois.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [255, 0, 0]
        seq = []
        for p in polys:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(p)
            c.ContourData = [f"{v:.3f}" for v in p.ravel()]
            seq.append(c)
        rc.ContourSequence = DicomSequence(seq)
        contours.append(rc)
        o = Dataset()
        o.ObservationNumber = number
        o.ReferencedROINumber = number
        o.RTROIInterpretedType = "ORGAN"
        obs.append(o)
    ds.StructureSetROISequence = DicomSequence(ss_rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    ds.save_as(path)


def synthetic(dvhcalc) -> None:
    shape = (200, 512, 512)
    grid = Grid(shape, origin_mm=(-255.5, -255.5, -199.0), spacing_mm=(2.0, 1.0, 1.0))
    print(f"\n== synthetic grid {shape} ({np.prod(shape):,} voxels, 1 x 1 x 2 mm)")
    z = grid.origin_mm[2] + np.arange(shape[0]) * 2.0
    y = grid.origin_mm[1] + np.arange(shape[1]) * 1.0
    x = grid.origin_mm[0] + np.arange(shape[2]) * 1.0
    r2 = x[None, None, :] ** 2 + y[None, :, None] ** 2 + z[:, None, None] ** 2
    dose_gy = (37.5 * np.exp(-r2 / (2 * 40.0**2)) + 0.01 * (x[None, None, :] + 256))
    dose = DoseGrid(dose_gy, grid, "1.2.826.0.1.3680043.8.498.1", fractions=5)
    t_eq, _ = _timed(lambda: eqd2_map(dose.dose_gy, 5, 3.0))
    print(f"EQD2 a/b 3 Gy of {dose_gy.size:,} voxels: {t_eq:.2f} s "
          f"({dose_gy.size / t_eq / 1e6:.0f} M voxels/s)")
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)

    def cyl(cx, cy, rx, ry, z0, z1):
        return [np.c_[cx + rx * np.cos(t), cy + ry * np.sin(t), np.full(t.size, zz)]
                for zz in z if z0 <= zz <= z1]

    def sphere(cx, cy, cz, r):
        return [np.c_[cx + np.sqrt(r * r - (zz - cz) ** 2) * np.cos(t),
                      cy + np.sqrt(r * r - (zz - cz) ** 2) * np.sin(t), np.full(t.size, zz)]
                for zz in z if abs(zz - cz) < r - 0.5]

    rois = {
        "BODY": cyl(0, 0, 200, 150, -190, 190),
        "PTV": sphere(0, 0, 0, 30),
        "Rectum": cyl(0, 45, 15, 15, -60, 60),
        "Bladder": sphere(0, -50, 20, 35),
        "Femur_L": cyl(110, 0, 25, 25, -100, 40),
    }
    with tempfile.TemporaryDirectory() as tmp:
        rs = Path(tmp) / "RS.dcm"
        rd = Path(tmp) / "RD.dcm"
        _minimal_rtstruct(rs, rois, dose.frame_of_reference_uid)
        ref = Dataset()
        ref.ReferencedSOPInstanceUID = generate_uid()
        tmpl = Dataset()
        tmpl.ReferencedRTPlanSequence = DicomSequence([ref])
        t_w, _ = _timed(lambda: write_rtdose(rd, dose, description="synthetic",
                                            dose_type="PHYSICAL", template=tmpl))
        t_r, back = _timed(lambda: read_rtdose(rd, fractions=5))
        print(f"write RTDOSE {t_w:.2f} s, read {t_r:.2f} s")
        ss = read_rtstruct(rs)
        t1, ours = _timed(lambda: structure_dvhs(back, ss, supersampling=1))
        print(f"rtplan DVHs of {len(ours)} ROIs (supersampling 1): {t1:.2f} s")
        t3, ours3 = _timed(lambda: structure_dvhs(back, ss, ["PTV", "Rectum"],
                                                  supersampling=3))
        print(f"rtplan DVHs of PTV and Rectum (supersampling 3): {t3:.2f} s")
        theirs = None
        if dvhcalc is not None:
            numbers = {r.number: r.name for r in ss.rois}
            td, theirs = _timed(lambda: _dcc_all(dvhcalc, rs, rd, numbers))
            print(f"dicompyler-core DVHs of {len(theirs)} ROIs: {td:.2f} s "
                  f"(rtplan s=1 is {td / t1:.1f}x faster)")
        _compare(ours, theirs)
        sph = 4 / 3 * np.pi * 30**3 / 1000
        print(f"  (PTV sphere volume {sph:.3f} cm3; rtplan s=3 "
              f"{ours3['PTV'].total_volume_cc:.3f})")


def main() -> None:
    dvhcalc = _dvhcalc()
    shared_example(dvhcalc)
    if "--skip-synthetic" not in sys.argv:
        synthetic(dvhcalc)


if __name__ == "__main__":
    main()
