"""Voxel-wise EQD2 throughput: rtplan.radiobiology.eqd2 vs a bare numpy expression.

Run: python benchmarks/radiobiology_eqd2.py [--voxels 100000000] [--repeat 3]

Prints voxels per second for both, their ratio, and the largest difference, for
float64 and float32 dose grids (10^8 doses by default, as in issue 2).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rtplan.radiobiology import eqd2


def bare(dose: np.ndarray, n: int, ab: float) -> np.ndarray:
    """The formula written directly: EQD2 = D (D/n + ab) / (2 + ab)."""
    return dose * (dose / n + ab) / (2.0 + ab)


def best_time(fn, repeat: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--voxels", type=int, default=100_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_fx, ab = 5, 1.5
    print(f"EQD2 of {args.voxels:.3g} doses (5 fractions, alpha/beta 1.5 Gy), best of "
          f"{args.repeat}")
    for dtype in (np.float64, np.float32):
        dose = rng.uniform(0.0, 45.0, size=args.voxels).astype(dtype)
        t_r, out_r = best_time(lambda d=dose: eqd2(d, n_fx, ab), args.repeat)
        t_b, out_b = best_time(lambda d=dose: bare(d, n_fx, ab), args.repeat)
        diff = float(np.max(np.abs(out_r.astype(float) - out_b.astype(float))))
        print(
            f"  {np.dtype(dtype).name:8s} rtplan {args.voxels / t_r / 1e6:8.1f} Mvoxel/s "
            f"({t_r:.3f} s)   bare numpy {args.voxels / t_b / 1e6:8.1f} Mvoxel/s "
            f"({t_b:.3f} s)   ratio rtplan/bare time {t_r / t_b:.2f}   max |diff| {diff:.2e} Gy"
        )
        del dose, out_r, out_b


if __name__ == "__main__":
    main()
