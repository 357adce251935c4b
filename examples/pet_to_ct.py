"""PSMA-PET in another frame of reference: PET seeds -> GTVs on the planning CT.

The demo PET (``rtplan.demo``) shares the planning CT's frame of reference. Here it is
written again as a PET series in a *new* FrameOfReferenceUID, with its grid moved by a
known rigid transform M (a 90 degree rotation about the S axis, then a translation), so
that the anatomy is unchanged but every PET coordinate is different: a point at
``p_pet`` on the new PET lies at ``p_ct = M @ [p_pet, 1]`` on the CT (PET -> CT, the
direction rtplan uses everywhere). M goes to a 4 x 4 matrix file; the demo lesions
become ``pet_seed`` lesions at their centres in PET coordinates; ``build_targets``
delineates them on the PET and moves the masks onto the CT. The GTV centroids on the
CT are printed beside the true sphere centres (``DEMO_LESIONS``, CT frame), and beside
where the inverse matrix would have put them.

Run: python examples/pet_to_ct.py   (works in a temporary folder, removed at the end)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from rtplan.demo import DEMO_LESIONS, DEMO_PET_ACQUISITION, demo_pet_lesions, write_demo_inputs
from rtplan.errors import GeometryError
from rtplan.imaging import Grid, load_ct_series, load_matrix, load_pet, write_pet_series
from rtplan.structures import rasterize
from rtplan.structures.spec import LesionsFile
from rtplan.structures.targets import build_targets

# PET -> CT: p_ct = R @ p_pet + T, R a 90 degree rotation about S: (x, y, z) -> (-y, x, z)
R_Z90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
T_MM = np.array([40.0, -25.0, 15.0])
M = np.eye(4)
M[:3, :3], M[:3, 3] = R_Z90, T_MM


def to_pet(p_ct: np.ndarray) -> np.ndarray:
    """CT-frame points to PET-frame points: inv(M), p_pet = R^T (p_ct - T)."""
    return (np.asarray(p_ct) - T_MM) @ R_Z90


def moved_pet_grid(suv: np.ndarray, grid: Grid) -> tuple[np.ndarray, Grid]:
    """The same voxels described in the PET frame, as an axial [slice, row, column] grid.

    In the PET frame the CT-frame axes become R^T y = +x and R^T x = -y: the old row
    index runs along +x and the old column index along -y. Transposing rows and columns
    and reversing the new rows gives a standard axial grid (rows +y, columns +x).
    """
    moved = suv.transpose(0, 2, 1)[:, ::-1, :]
    n_cols = grid.shape[2]
    origin = to_pet(grid.index_to_world([0, 0, n_cols - 1]))
    spacing = (grid.spacing_mm[0], grid.spacing_mm[2], grid.spacing_mm[1])
    return np.ascontiguousarray(moved), Grid(moved.shape, origin_mm=origin, spacing_mm=spacing)


def fmt(p: np.ndarray) -> str:
    """A point as ``(x, y, z)`` with one decimal (mm)."""
    return "(" + ", ".join(f"{v:6.1f}" for v in p) + ")"


def run(out: Path) -> None:
    paths = write_demo_inputs(out / "demo")
    ct = load_ct_series(paths["ct"])
    demo_pet = load_pet(paths["pet"])  # same frame as the CT

    suv, grid = moved_pet_grid(np.asarray(demo_pet.suv, dtype=float), demo_pet.grid)
    # check: every voxel (k, i, j) of the moved grid, mapped by M, is voxel
    # (k, j, n - 1 - i) of the demo grid
    k, i, j = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    n = demo_pet.grid.shape[2]
    p_pet = grid.index_to_world(np.stack([k, i, j], -1).astype(float))
    p_ct = demo_pet.grid.index_to_world(np.stack([k, j, n - 1 - i], -1).astype(float))
    err = float(np.abs(p_pet @ R_Z90.T + T_MM - p_ct).max())
    print(f"moved PET grid {grid.shape}: max |M p_pet - p_ct| over all voxel centres "
          f"= {err:.1e} mm")

    pet_for = generate_uid()
    write_pet_series(
        out / "pet_moved", suv, grid, **DEMO_PET_ACQUISITION, patient=ct.patient,
        study=ct.study, study_instance_uid=ct.study_instance_uid,
        frame_of_reference_uid=pet_for, series_description="demo PET, moved frame",
    )
    pet = load_pet(out / "pet_moved")
    print(f"CT  FrameOfReferenceUID {ct.frame_of_reference_uid}")
    print(f"PET FrameOfReferenceUID {pet.frame_of_reference_uid}")

    matrix_path = out / "pet_to_ct.json"
    matrix_path.write_text(json.dumps(
        {"matrix": M.tolist(), "from_frame": "PET", "to_frame": "CT",
         "description": "90 deg about S, then translation (mm); p_ct = M @ [p_pet, 1]"},
        indent=2))
    tf = load_matrix(matrix_path)
    print(f"registration: {tf!r}")

    lesions = demo_pet_lesions()
    for lesion in lesions:
        lesion["source"]["point_mm"] = [round(float(v), 3) for v in
                                        to_pet(lesion["source"]["point_mm"])]
    spec = LesionsFile.model_validate({"lesions": lesions})

    try:
        build_targets(spec, ct, pet=pet)
    except GeometryError as exc:
        print(f"without the registration: refused (GeometryError: {str(exc).split(':')[0]})")

    targets = build_targets(spec, ct, pet=pet, pet_transform=tf)
    centres = {lesion["id"]: np.array(lesion["source"]["center_mm"]) for lesion in DEMO_LESIONS}
    seeds = {lesion["id"]: np.array(lesion["source"]["point_mm"]) for lesion in lesions}
    print("\nGTV centroid on the CT (LPS mm) beside the true sphere centre (DEMO_LESIONS):")
    print(f"{'lesion':<7}{'GTV':<7}{'seed on PET':>26}{'GTV centroid on CT':>26}"
          f"{'true centre':>26}{'error':>8}{'inv(M) would give':>28}")
    for t in targets.targets:
        if not t.name.startswith("GTV"):
            continue
        mask = rasterize(t.sdf)
        kk = np.argwhere(mask).astype(float)
        centroid = ct.grid.index_to_world(kk).mean(axis=0)
        true = centres[t.lesion_id]
        wrong = to_pet(seeds[t.lesion_id])  # inv(M) applied to the PET seed
        print(f"{t.lesion_id:<7}{t.name:<7}{fmt(seeds[t.lesion_id]):>26}{fmt(centroid):>26}"
              f"{fmt(true):>26}{np.linalg.norm(centroid - true):7.2f}{fmt(wrong):>28}")
    print("\nerror: distance (mm) between the GTV centroid and the true centre; the PET has "
          "4 mm voxels")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rtplan-pet-to-ct-") as tmp:
        run(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
