"""Benchmark: PET lesion mask onto the planning CT through a rigid registration.

rtplan's ``resample_mask_nearest(mask, pet_grid, ct_grid, transform)`` (nearest
neighbour, only the CT voxels in the bounding box of the lesion mapped forward) against
``scipy.ndimage.affine_transform(order=0, mode="grid-constant")`` over the whole CT grid,
the usual way of resampling a moving mask onto a fixed grid. Same process, same inputs:
a 2 cm lesion (sphere, r = 10 mm) on a 4 mm PET grid of 192 x 192 x 250, resampled onto
a 512 x 512 x 200 CT (0.98 x 0.98 x 2.5 mm) through a rigid transform of 7 degrees
about an oblique axis plus a translation. Also: the bladder exclusion ROI (an RTSTRUCT
box of 60 contours drawn on CT slices) put on the PET grid through the inverse transform
(``polygons_to_grid``).

Note: PET-delineated GTVs no longer go through ``resample_mask_nearest``; they are built
on the distance-field lattice by ``sdf_from_foreign_mask`` (timed in
``benchmarks/structures.py``). ``resample_mask_nearest`` remains the mask-to-grid
resampler for other masks.

    .venv/bin/python benchmarks/pet_registration.py
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from rtplan.imaging import Grid, RigidTransform
from rtplan.structures.targets import resample_mask_nearest
from rtplan.structures.transfer import polygons_to_grid


def best_of(fn, n=3):
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    pet = Grid((250, 192, 192), origin_mm=(-382.0, -382.0, -500.0), spacing_mm=(4, 4, 4))
    ct = Grid((200, 512, 512), origin_mm=(-250.0, -250.0, -250.0),
              spacing_mm=(2.5, 0.977, 0.977))
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(np.radians(7.0) * np.array([1, 2, 2]) / 3).as_matrix()
    m[:3, 3] = [12.0, -30.0, 85.0]
    tf = RigidTransform(m, "PET", "CT")
    k, i, j = np.meshgrid(*[np.arange(n) for n in pet.shape], indexing="ij", sparse=True)
    centre_pet = tf.inverse().apply([20.0, 35.0, -40.0])
    idx_c = pet.world_to_index(centre_pet)
    r_vox = 10.0 / 4.0
    mask = ((k - idx_c[0]) ** 2 + (i - idx_c[1]) ** 2 + (j - idx_c[2]) ** 2) <= r_vox**2

    t_ours, ours = best_of(lambda: resample_mask_nearest(mask, pet, ct, tf))
    a = np.linalg.inv(pet.affine) @ tf.inverse().matrix @ ct.affine
    t_ref, ref = best_of(lambda: ndimage.affine_transform(
        mask.astype(np.uint8), a[:3, :3], a[:3, 3], output_shape=ct.shape, order=0,
        mode="grid-constant") > 0, n=1)
    diff = int(np.count_nonzero(ours != ref))
    print(f"lesion mask PET {pet.shape} -> CT {ct.shape} ({ours.sum()} CT voxels):")
    print(f"  rtplan resample_mask_nearest (cropped): {t_ours * 1e3:8.1f} ms")
    print(f"  scipy affine_transform (full grid):     {t_ref * 1e3:8.1f} ms")
    print(f"  speed-up x{t_ref / t_ours:.0f}; voxels that differ: {diff}")

    # a bladder box (80 x 70 mm, 60 CT slices) drawn on the CT, put on the PET grid
    zs = ct.index_to_world(np.c_[np.arange(60, 120), np.zeros(60), np.zeros(60)])[:, 2]
    polys = [np.array([[-40, -35, z], [40, -35, z], [40, 35, z], [-40, 35, z]]) for z in zs]
    t_poly, on_pet = best_of(lambda: polygons_to_grid(polys, pet, tf.inverse()))
    vol_cc = on_pet.sum() * pet.voxel_volume_mm3 / 1000
    true_cc = 80 * 70 * 60 * 2.5 / 1000
    print(f"bladder RTSTRUCT box (60 contours, CT frame) -> PET grid: {t_poly * 1e3:.1f} ms, "
          f"{vol_cc:.1f} cc (box {true_cc:.1f} cc)")


if __name__ == "__main__":
    main()
