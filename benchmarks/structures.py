"""Benchmark of the structures geometry core (issue 3).

A 512 x 512 x 200 CT grid (0.98 x 0.98 x 3 mm), five spherical lesions (PET-report
sources) and a ~300 cc elective nodal CTV given as an irregular mask. Timed, with peak
traced memory (tracemalloc; numpy allocations included) per stage:

* margins: GTV -> CTV (+3 mm) -> PTV (+3 mm) per lesion, CTV_ENI -> PTV_ENI (+5 mm);
* booleans: boost PTV = union of the lesion PTVs, elective PTV = PTV_ENI - boost,
  all PTVs cropped 3 mm inside the body;
* contouring and volumes of all 19 structures on the CT planes.

rtplan's stage times are the best of 3 untraced runs (issue 10 aims at < 0.7 s in
total); peak memory comes from one run traced with tracemalloc.

Reference in the same run: the naive full-grid expansion with
``scipy.ndimage.distance_transform_edt(~mask, sampling=spacing) <= margin`` (what most
scripts do), for the ENI PTV and the lesion CTV/PTV, with its volumes next to ours and
to the analytic sphere volumes. Run: ``python benchmarks/structures.py``.

PET GTVs (``sdf_from_foreign_mask``): five ball-shaped delineations on a 4 mm PET grid,
rotated 7 degrees about S and shifted by a non-grid offset onto the CT, built on the
working lattice directly, against the former path in the same run (nearest-neighbour
resampling onto CT voxels, then ``sdf_from_mask``); truth: the number of PET voxels x
64 mm^3 (a rigid motion keeps volumes).
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import numpy as np
from scipy import ndimage

from rtplan.imaging.grid import Grid
from rtplan.structures import (
    contours_from_sdf,
    crop_to_mask,
    difference,
    expand,
    sdf_from_foreign_mask,
    sdf_from_mask,
    sdf_from_sphere,
    union,
    volume_cc,
)
from rtplan.structures.targets import resample_mask_nearest

SHAPE = (200, 512, 512)
SPACING = (3.0, 0.98, 0.98)
LESIONS = [  # centre (LPS mm), radius mm
    ((-60.3, 20.1, 15.4), 4.0),
    ((5.7, 3.6, -65.2), 6.0),  # inside the ENI: the elective PTV gets a hole
    ((10.2, 60.4, 90.7), 8.5),
    ((-20.9, -50.3, -120.1), 11.0),
    ((80.4, -30.8, 140.3), 14.0),
]
CTV_MM, PTV_MM, ENI_MM, SKIN_MM = 3.0, 3.0, 5.0, 3.0


def _make_inputs(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Body (elliptic cylinder) and an irregular ~300 cc ENI blob, as CT masks."""
    _, y, x = (grid.voxel_centers_mm(a) + grid.origin_mm[::-1][a] for a in range(3))
    body2d = (x[None, :] / 190.0) ** 2 + (y[:, None] / 130.0) ** 2 <= 1.0
    body = np.broadcast_to(body2d, SHAPE).copy()
    # ENI: smoothed random field thresholded inside a box around the pelvic nodes
    rng = np.random.default_rng(42)
    box = (slice(60, 95), slice(200, 310), slice(170, 340))
    noise = rng.normal(size=tuple(s.stop - s.start for s in box))
    smooth = ndimage.gaussian_filter(noise, sigma=(2.0, 8.0, 8.0))
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in smooth.shape], indexing="ij")
    smooth -= 0.08 * (zz**2 + yy**2 + xx**2)
    target_vox = 300_000.0 / np.prod(SPACING)
    thr = np.sort(smooth.ravel())[-int(target_vox)]
    eni = np.zeros(SHAPE, bool)
    eni[box] = smooth >= thr
    return body, eni


def _stage(name: str, fn, results: dict, repeat: int = 0):
    """Peak traced memory of one run; time of that run, or with ``repeat`` the best of
    that many untraced runs (tracemalloc slows numpy's allocations down)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for i in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0 if i == 0 else min(dt, time.perf_counter() - t0)
    results[name] = (dt, peak / 2**20)
    return out


def main() -> None:
    grid = Grid(SHAPE, origin_mm=(-250.4, -250.4, -300.0), spacing_mm=SPACING)
    body, eni = _make_inputs(grid)
    vox_cc = np.prod(SPACING) / 1000.0
    print(f"grid {SHAPE} spacing {SPACING} mm; ENI mask {eni.sum() * vox_cc:.1f} cc; "
          f"{len(LESIONS)} lesions r = {[r for _, r in LESIONS]} mm")
    res: dict[str, tuple[float, float]] = {}

    def margins():
        gtv = [sdf_from_sphere(grid, c, r) for c, r in LESIONS]
        ctv = [expand(g, CTV_MM) for g in gtv]
        ptv = [expand(c, PTV_MM) for c in ctv]
        ctv_eni = sdf_from_mask(eni, grid)
        ptv_eni = expand(ctv_eni, ENI_MM)
        return gtv, ctv, ptv, ctv_eni, ptv_eni

    gtv, ctv, ptv, ctv_eni, ptv_eni = _stage("margins", margins, res, repeat=3)

    def booleans():
        ptv_c = [crop_to_mask(p, body, inset_mm=SKIN_MM) for p in ptv]
        eni_c = crop_to_mask(ptv_eni, body, inset_mm=SKIN_MM)
        boost = union(*ptv_c)
        elective = difference(eni_c, boost)
        return ptv_c, boost, elective

    ptv_c, boost, elective = _stage("booleans", booleans, res, repeat=3)
    structures = [*gtv, *ctv, *ptv_c, ctv_eni, ptv_eni, boost, elective]

    def contouring():
        return [contours_from_sdf(s) for s in structures]

    contours = _stage("contouring", contouring, res, repeat=3)
    vols = _stage("volumes", lambda: [volume_cc(s) for s in structures], res, repeat=3)

    ours_t = sum(t for t, _ in res.values())
    ours_m = max(m for _, m in res.values())
    n_contours = sum(len(c) for c in contours)
    n_points = sum(p.n_points for c in contours for p in c)

    # --- naive reference: full-grid EDT between voxel centres ------------------------
    naive: dict[str, tuple[float, float]] = {}

    def naive_eni():
        return ndimage.distance_transform_edt(~eni, sampling=SPACING) <= ENI_MM

    naive_ptv_eni = _stage("naive ENI PTV (1 EDT)", naive_eni, naive)
    zc, yc, xc = (grid.voxel_centers_mm(a) + grid.origin_mm[::-1][a] for a in range(3))
    gtv_mask = np.zeros(SHAPE, bool)
    for (cx, cy, cz), r in LESIONS:
        k = np.abs(zc - cz) <= r + 3
        i = np.abs(yc - cy) <= r + 3
        j = np.abs(xc - cx) <= r + 3
        sub = ((zc[k, None, None] - cz) ** 2 + (yc[None, i, None] - cy) ** 2
               + (xc[None, None, j] - cx) ** 2) <= r * r
        gtv_mask[np.ix_(k, i, j)] |= sub

    def naive_lesions():
        c = ndimage.distance_transform_edt(~gtv_mask, sampling=SPACING) <= CTV_MM
        return ndimage.distance_transform_edt(~c, sampling=SPACING) <= PTV_MM

    naive_ptv = _stage("naive lesion CTV+PTV (2 EDT)", naive_lesions, naive)
    naive_t = sum(t for t, _ in naive.values())
    naive_m = max(m for _, m in naive.values())
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print("\nstage                           time (s)   peak traced (MiB)")
    for name, (t, m) in {**res, **naive}.items():
        print(f"  {name:30s} {t:8.3f}   {m:10.1f}")
    print(f"\nrtplan total: {ours_t:.3f} s, peak {ours_m:.0f} MiB "
          f"(aim: < 0.7 s and < 1024 MiB); {n_contours} contours, {n_points} points")
    print(f"naive full-grid EDT total: {naive_t:.3f} s, peak {naive_m:.0f} MiB")
    print(f"ratio naive/rtplan: time x{naive_t / ours_t:.1f}, memory x{naive_m / ours_m:.1f}"
          f"  (process max RSS {maxrss:.0f} MiB)")

    print("\nvolumes (cc)          analytic   rtplan    naive EDT")
    lab, _ = ndimage.label(naive_ptv)
    for n, ((_, r), v) in enumerate(zip(LESIONS, vols[10:15], strict=True)):
        exact = 4 / 3 * np.pi * (r + CTV_MM + PTV_MM) ** 3 / 1000
        print(f"  PTV lesion {n + 1} r={r:4.1f}  {exact:8.3f} {v:8.3f}", end="")
        c = np.array(LESIONS[n][0])
        idx = np.rint(grid.world_to_index(c)).astype(int)
        naive_v = (lab == lab[tuple(idx)]).sum() * vox_cc
        print(f" {naive_v:10.3f}")
    naive_eni_cc = naive_ptv_eni.sum() * vox_cc
    print(f"  PTV_ENI (mask + 5 mm)  {'-':>6s} {vols[16]:8.3f} {naive_eni_cc:10.3f}")
    print(f"  CTV_ENI (mask)         {eni.sum() * vox_cc:8.3f} {vols[15]:8.3f}")
    print(f"  boost PTV {vols[17]:.3f} cc, elective PTV {vols[18]:.3f} cc")


def pet_gtvs(grid: Grid) -> None:
    """PET-delineated GTVs: on the lattice directly versus resampled onto CT voxels."""
    pet = Grid((60, 128, 128), origin_mm=(-253.1, -251.7, -130.3), spacing_mm=(4.0, 4.0, 4.0))
    a = np.radians(7.0)
    tf = np.eye(4)
    tf[:3, :3] = [[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]]
    tf[:3, 3] = [1.3, -2.2, 0.7]
    zc, yc, xc = (pet.voxel_centers_mm(ax) + pet.origin_mm[::-1][ax] for ax in range(3))
    print("\nPET GTVs (4 mm PET, 7 deg + shift)  truth   lattice  CT voxels   time lattice / CT")
    t_new = t_old = 0.0
    for n, ((cx, cy, cz), r) in enumerate(LESIONS):
        m = ((zc[:, None, None] - cz / 2) ** 2 + (yc[None, :, None] - cy) ** 2
             + (xc[None, None, :] - cx) ** 2) <= r * r
        t0 = time.perf_counter()
        new = sdf_from_foreign_mask(m, pet, grid, tf)
        t1 = time.perf_counter()
        old = sdf_from_mask(resample_mask_nearest(m, pet, grid, tf), grid)
        t2 = time.perf_counter()
        t_new, t_old = t_new + t1 - t0, t_old + t2 - t1
        truth = m.sum() * 64.0 / 1000.0
        print(f"  lesion {n + 1} r={r:4.1f} mm ({int(m.sum()):4d} voxels) {truth:8.3f} "
              f"{volume_cc(new):8.3f} {volume_cc(old):9.3f}   {(t1 - t0) * 1e3:7.1f} / "
              f"{(t2 - t1) * 1e3:.1f} ms")
    print(f"  total {t_new:.3f} s on the lattice, {t_old:.3f} s via CT voxels "
          f"(ratio x{t_new / t_old:.2f})")


if __name__ == "__main__":
    main()
    pet_gtvs(Grid(SHAPE, origin_mm=(-250.4, -250.4, -300.0), spacing_mm=SPACING))


# ============================================================================ real CT
# Issue 10: the real head-neck CT (90 x 511 x 511, 1 x 1 x 3 mm) of ../shared/data with
# three sphere lesions inside the head, through the stages of ``rtplan structures``:
# load CT, body outline, lesion targets (cropped to the body), contouring, RTSTRUCT.
# The External is contoured along its voxel edges (``outline_contours``) and measured
# by counting (``mask_volume_cc``), beside the former path (``sdf_from_mask`` of the
# body, then ``contours_from_sdf``). Runs in a fresh process (spawn) so that max RSS is
# this case's alone.

REAL_CT_LESIONS = {"lesions": [
    {"id": "L1", "site": "pelvic_node", "source": {
        "kind": "sphere", "center_mm": [252.6, -261.4, -148.6], "diameter_mm": 15}},
    {"id": "L2", "site": "bone", "source": {
        "kind": "sphere", "center_mm": [220.0, -230.0, -100.0], "diameter_mm": 20}},
    {"id": "L3", "site": "distant_node", "source": {
        "kind": "sphere", "center_mm": [290.0, -280.0, -200.0], "diameter_mm": 10}},
]}


def _real_ct_folder():
    import os
    from pathlib import Path

    shared = Path(os.environ.get("RTPLAN_SHARED", Path(__file__).resolve().parents[1].parent
                                 / "shared"))
    return shared / "data" / "ct-head-neck"


def _real_ct_child(folder: str) -> None:
    import tempfile
    from pathlib import Path

    import rtplan.structures as s
    from rtplan.imaging.ct import load_ct_series
    from rtplan.structures.body import body_mask
    from rtplan.structures.contour import ROIContours
    from rtplan.structures.outline import mask_volume_cc, outline_contours
    from rtplan.structures.rtstruct import write_rtstruct
    from rtplan.structures.spec import LesionsFile
    from rtplan.structures.targets import build_targets, targets_to_rois

    spec = LesionsFile.model_validate(REAL_CT_LESIONS)
    out_dir = Path(tempfile.mkdtemp())

    def pipeline(stage):
        """The pipeline of ``rtplan structures``, stage by stage (the External is a
        VoxelMask: contoured along its voxel edges, measured by counting)."""
        ct = stage("load CT", lambda: load_ct_series(folder))
        grid = ct.grid
        body = stage("body_mask", lambda: body_mask(ct.volume_hu, grid))
        ts = stage("lesion targets (build_targets)", lambda: build_targets(spec, ct, body=body))
        targets = [t for t in ts.targets if t.name != "External"]
        ext = stage("External: outline_contours", lambda: outline_contours(body, grid))
        ext_cc = stage("External: mask_volume_cc", lambda: mask_volume_cc(body, grid))
        rois = stage("contouring lesion targets", lambda: targets_to_rois(targets))
        vols = stage("volumes lesion targets", lambda: [t.volume_cc() for t in targets])
        rois.append(ROIContours("External", "EXTERNAL", (0, 255, 0), ext))
        out = out_dir / f"RS{len(list(out_dir.iterdir()))}.dcm"
        stage("write RTSTRUCT", lambda: write_rtstruct(out, ct, rois))
        return ct, body, targets, ext, ext_cc, vols

    # pass 1, fresh process: times and max RSS after each stage; then best of 3 times
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rss: dict[str, float] = {}

    def timed(first):
        def stage(name, fn):
            t0, c0 = time.perf_counter(), time.process_time()
            value = fn()
            times.setdefault(name, []).append(time.perf_counter() - t0)
            cpu.setdefault(name, []).append(time.process_time() - c0)
            if first:
                rss[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return value
        return stage

    ct, body, targets, ext, ext_cc, vols = pipeline(timed(True))
    new_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(2):
        pipeline(timed(False))
    # pass 2: peak traced memory per stage (tracemalloc slows Python-heavy stages)
    traced: dict[str, tuple[float, float]] = {}
    pipeline(lambda name, fn: _stage(name, fn, traced))
    grid = ct.grid
    # --- the former path for the External, same process (after the new one) --------
    old: dict[str, tuple[float, float]] = {}

    def old_stage(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        old[name] = (time.perf_counter() - t0, time.process_time() - c0)
        return value

    sdf = old_stage("former: sdf_from_mask(body)", lambda: s.sdf_from_mask(body, grid))
    old_ct = old_stage("former: contours_from_sdf", lambda: s.contours_from_sdf(sdf))
    old_cc = old_stage("former: volume_cc", lambda: s.volume_cc(sdf))
    old_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    new_stages = {name: (min(t), traced[name][1]) for name, t in times.items()}

    print(f"\nreal head-neck CT {grid.shape}, spacing {grid.spacing_mm} mm, "
          f"{len(REAL_CT_LESIONS['lesions'])} sphere lesions")
    print("stage                              wall (s): best of 3, first run;  CPU (s);  "
          "peak traced (MiB);  max RSS (MiB)")
    for name, (t, m) in new_stages.items():
        print(f"  {name:34s} {t:8.3f} {times[name][0]:8.3f} {min(cpu[name]):8.3f}   {m:10.1f}"
              f"   {rss[name]:10.0f}")
    total = sum(t for t, _ in new_stages.values())
    first = sum(t[0] for t in times.values())
    total_cpu = sum(min(c) for c in cpu.values())
    peak = max(m for _, m in new_stages.values())
    print(f"  {'total (new path)':34s} {total:8.3f} {first:8.3f} {total_cpu:8.3f}   {peak:10.1f}"
          f"   {new_rss:10.0f}   (aim: < 2 s, < 1024 MiB)")
    for name, (t, c) in old.items():
        print(f"  {name:34s} {t:8.3f} {c:8.3f}")
    ext_new = new_stages["External: outline_contours"][0] + new_stages[
        "External: mask_volume_cc"][0]
    ext_old = sum(t for t, _ in old.values())
    print(f"  External, new / former: {ext_new:.3f} s / {ext_old:.3f} s (x{ext_old / ext_new:.0f})"
          f"; process max RSS after the former path {old_rss:.0f} MiB")
    print(f"  whole pipeline with the former External: {total - ext_new + ext_old:.3f} s "
          f"(new: {total:.3f} s, x{(total - ext_new + ext_old) / total:.1f})")
    print(f"  External {ext_cc:.1f} cc (voxel count), former volume_cc {old_cc:.1f} cc; "
          f"{len(ext)} rings, {sum(c.n_points for c in ext)} points (former {len(old_ct)} "
          f"rings, {sum(c.n_points for c in old_ct)} points)")
    print("  lesion target volumes (cc): " + ", ".join(
        f"{t.name} {v:.2f}" for t, v in zip(targets, vols, strict=True)))


def real_ct_main() -> None:
    """The real-CT case in a fresh process (skipped when the CT is absent)."""
    import multiprocessing

    folder = _real_ct_folder()
    if not folder.is_dir():
        print(f"\nreal CT not found at {folder}: set RTPLAN_SHARED (skipped)")
        return
    p = multiprocessing.get_context("spawn").Process(target=_real_ct_child,
                                                     args=(str(folder),))
    p.start()
    p.join()


if __name__ == "__main__":
    real_ct_main()
