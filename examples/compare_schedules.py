"""SBRT versus ENI + SIB: EQD2 side by side, and where the ranking flips.

Run: python examples/compare_schedules.py
"""

from rtplan.radiobiology import (
    PRESETS,
    compare_plans,
    eqd2_sensitivity,
    equivalent_schedule,
    parse_schedule,
    ranking_by_alpha_beta,
)

ALPHA_BETA_GY = [1.5, 3.0, 10.0]  # prostate cancer, late rectum, tumour / early


def main() -> None:
    plans = [p.plan for p in PRESETS.values()]
    comparisons = compare_plans(plans, ALPHA_BETA_GY)
    print("EQD2 (Gy) of each dose level; SIB levels from their own dose per fraction")
    print(f"{'plan':<20} {'level':<15} {'Gy/fx':>6} " + " ".join(
        f"{'a/b=' + format(ab, 'g'):>8}" for ab in ALPHA_BETA_GY))
    for c in comparisons:
        for lv in c.levels:
            vals = " ".join(f"{r.eqd2_gy:8.2f}" for r in lv.results)
            print(f"{c.plan:<20} {lv.level:<15} {lv.dose_per_fraction_gy:6.3f} {vals}")

    print("\nlesion ranking by EQD2:")
    for ab, order in ranking_by_alpha_beta(comparisons, ALPHA_BETA_GY).items():
        print(f"  a/b {ab:g} Gy: {' > '.join(order)}")

    # where SBRT 37.5/5 and the 61.2 Gy SIB give the same lesion EQD2
    grid = [0.5 + 0.01 * i for i in range(1500)]
    table = eqd2_sensitivity(["37.5/5", "61.2/34"], grid)
    cross = next(ab for ab, a, b in zip(grid, table[0], table[1], strict=True) if a < b)
    print(f"\nSBRT 37.5/5 exceeds the 61.2/34 SIB for alpha/beta below ~{cross:.2f} Gy")

    eq = equivalent_schedule(parse_schedule("61.2/34"), 5, 1.5)
    print(f"the 61.2/34 SIB equals {eq.fractions} x {eq.dose_per_fraction_gy:.2f} Gy "
          f"at alpha/beta 1.5 Gy")


if __name__ == "__main__":
    main()
