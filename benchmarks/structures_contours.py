"""Benchmark: RTSTRUCT polygons -> distance field directly (``sdf_from_rtstruct``) beside
the CT-mask path (``sdf_from_mask`` of the voxel-centre rasterisation), issue 10.

Cases:

* the demo's elective nodal CTV (``eni_atlas.dcm:CTV_Elective``, ~300 cc, irregular,
  contours on the 3 mm CT planes), expanded by 5 mm (the ENI PTV margin);
* a 10 mm diameter lesion (circles of 720 points on the 3 mm planes), expanded by 3 mm.

Per path: build, expand, contour on the CT planes (``contours_from_sdf``) and volumes;
best of N runs (the machine is shared: timings are noisy). Reference for the volumes of
the lesion: the analytic expansion of the slab stack (finite cylinders, see
tests/structures/test_structures_contour_source.py) is not computed here; the built
volume is compared with ``sum(area * t)`` (shapely-free: the polygon's shoelace area).
Run: ``python benchmarks/structures_contours.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtplan.demo import write_demo_inputs
from rtplan.imaging import load_ct_series
from rtplan.imaging.grid import Grid
from rtplan.structures import contours_from_sdf, expand, read_rtstruct, rtstruct_masks, volume_cc
from rtplan.structures._sdf import SignedDistanceField, sdf_from_mask
from rtplan.structures.constructors import sdf_from_contours, sdf_from_rtstruct
from rtplan.structures.raster import slab_mask


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _stages(name: str, build: Callable[[], SignedDistanceField], margin_mm: float,
            repeat: int) -> float:
    t_b, sdf = _best(build, repeat)
    assert isinstance(sdf, SignedDistanceField)
    t_e, grown = _best(lambda: expand(sdf, margin_mm), repeat)
    assert isinstance(grown, SignedDistanceField)
    t_c, _ = _best(lambda: contours_from_sdf(grown), repeat)
    total = t_b + t_e + t_c
    print(f"  {name:<22s} build {t_b:6.3f} s  expand {t_e:6.3f} s  contour {t_c:6.3f} s  "
          f"total {total:6.3f} s   volume {volume_cc(sdf):8.3f} cc -> "
          f"{volume_cc(grown):8.3f} cc (+{margin_mm:g} mm)")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per stage (best is kept)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp()) / "demo"
    paths = write_demo_inputs(folder, with_pet=False)
    ct = load_ct_series(paths["ct"])
    ss = read_rtstruct(paths["eni"])
    grid = ct.grid
    print(f"CT grid {grid.shape}, spacing {tuple(float(s) for s in grid.spacing_mm)} mm "
          f"(slice, row, column); best of {args.repeat}")

    print("ENI CTV (demo atlas CTV_Elective), +5 mm:")
    poly = _stages("polygons (rtstruct)",
                   lambda: sdf_from_rtstruct(ss, "CTV_Elective", ct), 5.0, args.repeat)
    mask = _stages("CT mask (sdf_from_mask)",
                   lambda: sdf_from_mask(rtstruct_masks(ss, grid, ["CTV_Elective"])
                                         ["CTV_Elective"], grid), 5.0, args.repeat)
    print(f"  ratio polygons / CT mask: {poly / mask:.2f}")

    print("Lesion, 10 mm diameter circles (720 points) on the 3 mm planes, +3 mm:")
    z0 = float(grid.origin_mm[2]) + 30 * float(grid.spacing_mm[0])
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    circles = []
    for k in range(-1, 2):
        z = z0 + k * float(grid.spacing_mm[0])
        r = np.sqrt(max(25.0 - (k * float(grid.spacing_mm[0])) ** 2, 4.0))
        circles.append(np.c_[0.37 + r * np.cos(t), -0.21 + r * np.sin(t), np.full(t.size, z)])
    area = sum(0.5 * abs(float(np.sum(c[:, 0] * np.roll(c[:, 1], -1)
                                      - np.roll(c[:, 0], -1) * c[:, 1]))) for c in circles)
    print(f"  slab volume sum(area * t) = {area * float(grid.spacing_mm[0]) / 1000:.4f} cc")
    poly = _stages("polygons (contours)", lambda: sdf_from_contours(circles, grid), 3.0,
                   args.repeat)
    g: Grid = grid
    mask = _stages("CT mask (sdf_from_mask)",
                   lambda: sdf_from_mask(slab_mask(circles, g), g), 3.0, args.repeat)
    print(f"  ratio polygons / CT mask: {poly / mask:.2f}")


if __name__ == "__main__":
    main()
