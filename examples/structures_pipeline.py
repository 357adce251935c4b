"""Target structures with the library: demo CT -> GTV/CTV/PTV, ENI + SIB -> RTSTRUCT.

The same pipeline as ``rtplan structures``, step by step: write the demo CT, the ENI
atlas and the lesions file (``rtplan.demo.write_demo_inputs``), load the CT series and
the lesions file, build the targets (per lesion GTV, CTV = GTV + 3 mm, PTV = CTV + 3 mm;
the elective nodal CTV and PTV; with SIB the boost PTV and the elective PTV), contour
them on the CT slices and write the RTSTRUCT. Every target's volume is printed; for the
sphere lesions the analytic volume of the sphere grown by the margins, 4/3 pi (r + m)^3
with m = 0, 3 and 3 + 3 mm, is printed beside it.

Run: python examples/structures_pipeline.py [OUTPUT_FOLDER] [--force]
(default folder: ./structures-out; an existing file there is refused unless --force)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rtplan.demo import write_demo_inputs
from rtplan.imaging import load_ct_series
from rtplan.structures import read_rtstruct, write_rtstruct
from rtplan.structures.spec import SphereSource, load_lesions_file
from rtplan.structures.targets import build_targets, targets_to_rois


def sphere_cc(radius_mm: float) -> float:
    """Volume (cm^3) of a sphere of radius ``radius_mm``."""
    return 4.0 / 3.0 * math.pi * radius_mm**3 / 1000.0


def run(folder: Path, *, force: bool = False) -> None:
    paths = write_demo_inputs(folder / "demo", with_pet=False, overwrite=force)
    ct = load_ct_series(paths["ct"])
    print(f"CT: {ct.n_slices} slices, grid {ct.grid.shape}, spacing {ct.grid.spacing_mm} mm")
    spec = load_lesions_file(paths["lesions"])  # relative paths (ENI atlas) resolved
    print(f"lesions: {len(spec.lesions)}; margins CTV {spec.margins.ctv_margin_mm:g} mm, "
          f"PTV {spec.margins.ptv_margin_mm:g} mm; ENI margin {spec.eni.margin_mm:g} mm, "
          f"SIB {spec.eni.sib}")

    targets = build_targets(spec, ct)  # ENI and SIB from the file's "eni" section
    for w in targets.warnings:
        print(f"warning: {w}")

    ctv_mm, ptv_mm = float(spec.margins.ctv_margin_mm), float(spec.margins.ptv_margin_mm)
    grow = {"GTV": 0.0, "CTV": ctv_mm, "PTV": ctv_mm + ptv_mm}
    spheres = {lesion.id: lesion.source for lesion in spec.lesions
               if isinstance(lesion.source, SphereSource)}
    radius = {i: src.diameter_mm / 2 for i, src in spheres.items()}
    # the SIB boost PTV is the union of the lesion PTVs: their sum when no two overlap
    ptv_r = {i: r + grow["PTV"] for i, r in radius.items()}
    disjoint = len(spheres) == len(spec.lesions) and all(
        math.dist(spheres[a].center_mm, spheres[b].center_mm) > ptv_r[a] + ptv_r[b]
        for a in spheres for b in spheres if a < b)
    print(f"\n{'target':<11}{'type':<10}{'lesion':<8}{'volume cc':>10}"
          f"{'analytic cc':>13}   analytic sphere")
    for t in targets.targets:
        line = f"{t.name:<11}{t.roi_type!s:<10}{t.lesion_id or '-':<8}{t.volume_cc():10.3f}"
        kind = t.name[:3]
        if t.lesion_id in radius and kind in grow:
            r = radius[t.lesion_id] + grow[kind]
            line += f"{sphere_cc(r):13.3f}   r = {radius[t.lesion_id]:g} + {grow[kind]:g} mm"
        elif t.source.startswith("union(") and disjoint:
            total = sum(sphere_cc(r) for r in ptv_r.values())
            line += f"{total:13.3f}   sum of the {len(ptv_r)} disjoint lesion PTV spheres"
        print(line)

    rois = targets_to_rois(targets)
    rs_path = write_rtstruct(folder / "RS_targets.dcm", ct, rois, overwrite=force)
    back = read_rtstruct(rs_path)
    print(f"\nRTSTRUCT {rs_path.name}: {len(back.rois)} ROIs "
          f"({', '.join(back.names)}), {sum(len(r.contours) for r in rois)} contours")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="demo CT -> targets -> RTSTRUCT")
    parser.add_argument("folder", nargs="?", default="structures-out",
                        help="output folder (default: ./structures-out)")
    parser.add_argument("--force", action="store_true", help="overwrite its files")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if folder.exists() and any(folder.iterdir()) and not args.force:
        print(f"error: '{folder}' is not empty: give another folder or --force",
              file=sys.stderr)
        return 2
    run(folder, force=args.force)
    print(f"written under {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
