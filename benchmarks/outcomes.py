"""Benchmark: Kaplan-Meier and 3-group log-rank on 10^6 subjects, rtplan vs lifelines;
Cox proportional hazards (3 covariates, Efron ties) on 10^5 subjects, rtplan (statsmodels
likelihood) vs lifelines CoxPHFitter.

Both run in the same process on the same simulated data (exponential event and
censoring times, rounded to 0.01 months so that ties occur, three groups). lifelines is
an optional reference, not an rtplan dependency: ``pip install lifelines`` to compare;
without it only rtplan is timed. When ``Rscript`` with the ``survival`` package is on
PATH, R's ``survfit`` and ``survdiff`` are also timed on the same data (written to
temporary binary files and read by R in a subprocess; only the fits are timed, best of
3 for ``survfit`` and 1 for ``survdiff`` as for lifelines) and printed beside
lifelines, with the differences in S(t) and chi-square. Without R that part is skipped
with a note.

    .venv/bin/python benchmarks/outcomes.py [n_subjects] [n_cox_subjects]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtplan.outcomes import kaplan_meier, logrank


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 3, n)
    t_event = rng.exponential(30.0 / (1.0 + 0.15 * group))
    t_cens = rng.exponential(45.0, n)
    time_m = np.round(np.minimum(t_event, t_cens), 2) + 0.01
    event = (t_event <= t_cens).astype(np.int64)
    labels = np.array(["<10", "10-24", ">24"], dtype=object)[group]
    print(f"n = {n:,} subjects, {np.unique(time_m).size:,} distinct times, "
          f"{event.mean():.1%} events")

    t_km, km = _best(lambda: kaplan_meier(time_m, event))
    t_lr, lr = _best(lambda: logrank(time_m, event, labels))
    print(f"rtplan   Kaplan-Meier     {t_km * 1e3:8.1f} ms   median {km.median:.2f} months")
    print(f"rtplan   log-rank 3 grp   {t_lr * 1e3:8.1f} ms   chi2 {lr.statistic:.6f}")

    _r_reference(time_m, event, group, km, lr.statistic, t_km, t_lr)
    try:
        from lifelines import KaplanMeierFitter
        from lifelines.statistics import multivariate_logrank_test
    except ImportError:
        print("lifelines not installed: skipping the reference (pip install lifelines)")
        return
    t_lkm, kmf = _best(lambda: KaplanMeierFitter().fit(time_m, event))
    t_llr, llr = _best(lambda: multivariate_logrank_test(time_m, group, event), repeat=1)
    print(f"lifelines Kaplan-Meier    {t_lkm * 1e3:8.1f} ms   median "
          f"{kmf.median_survival_time_:.2f} months")
    print(f"lifelines log-rank 3 grp  {t_llr * 1e3:8.1f} ms   chi2 {llr.test_statistic:.6f}")
    s_ours = km.survival_at(kmf.survival_function_.index.values)
    diff = np.max(np.abs(s_ours - kmf.survival_function_.iloc[:, 0].values))
    print(f"max |S_rtplan - S_lifelines| = {diff:.2e}; "
          f"|chi2 difference| = {abs(lr.statistic - llr.test_statistic):.2e}")
    print(f"speed ratio (lifelines / rtplan): Kaplan-Meier {t_lkm / t_km:.1f}x, "
          f"log-rank {t_llr / t_lr:.1f}x")


# Reads the data written by _r_reference; prints the timings (s), the median, the
# chi-square and S(t) at the probe times, one value per line.
_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[4])
time <- readBin(args[1], "double", n)
ev <- readBin(args[2], "integer", n, size = 4)
grp <- readBin(args[3], "integer", n, size = 4)
probes <- as.numeric(strsplit(args[5], ",")[[1]])
suppressMessages(library(survival))
best <- function(f, repeats) {
  b <- Inf
  for (i in seq_len(repeats)) {
    el <- system.time(x <- f())[["elapsed"]]
    b <- min(b, el)
  }
  list(b, x)
}
km <- best(function() survfit(Surv(time, ev) ~ 1), 3)
lr <- best(function() survdiff(Surv(time, ev) ~ grp), 1)
s <- summary(km[[2]], times = probes, extend = TRUE)$surv
cat(sprintf("%.17g", c(km[[1]], lr[[1]], summary(km[[2]])$table[["median"]],
                       lr[[2]]$chisq, s)), sep = "\n")
cat(sprintf("R %s, survival %s\n", getRversion(), packageVersion("survival")))
"""


def _r_reference(time_m, event, group, km, chi2: float, t_km: float, t_lr: float) -> None:
    """Time R's survfit and survdiff on the same data (subprocess); skip without R."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("Rscript not on PATH: skipping the R reference (install r-base-core and "
              "r-cran-survival to compare)")
        return
    probes = np.array([6.0, 12.0, 24.0, 36.0])
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        np.asarray(time_m, dtype="<f8").tofile(d / "time.bin")
        np.asarray(event, dtype="<i4").tofile(d / "event.bin")
        np.asarray(group, dtype="<i4").tofile(d / "group.bin")
        (d / "bench.R").write_text(_R_SCRIPT)
        proc = subprocess.run(
            [rscript, "--vanilla", str(d / "bench.R"), str(d / "time.bin"),
             str(d / "event.bin"), str(d / "group.bin"), str(len(time_m)),
             ",".join(f"{x:g}" for x in probes)],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"R reference failed (survival package missing?): {msg}")
        return
    lines = proc.stdout.strip().splitlines()
    r_km, r_lr, r_median, r_chi2 = (float(x) for x in lines[:4])
    r_surv = np.array([float(x) for x in lines[4:4 + probes.size]])
    print(f"{lines[-1]} (subprocess, fits only):")
    print(f"R        survfit          {r_km * 1e3:8.1f} ms   median {r_median:.2f} months")
    print(f"R        survdiff 3 grp   {r_lr * 1e3:8.1f} ms   chi2 {r_chi2:.6f}")
    diff = np.max(np.abs(km.survival_at(probes) - r_surv))
    print(f"max |S_rtplan - S_R| at {probes.tolist()} months = {diff:.2e}; "
          f"|chi2 difference| = {abs(chi2 - r_chi2):.2e}")
    print(f"speed ratio (R / rtplan): Kaplan-Meier {r_km / t_km:.1f}x, "
          f"log-rank {r_lr / t_lr:.1f}x")


def main_cox(n: int = 100_000) -> None:
    """Cox model with 3 covariates (normal, binary, age-like), Efron ties."""
    from rtplan.outcomes import cox_ph

    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.uniform(40, 80, n)])
    lp = x @ np.array([0.3, -0.5, 0.02])
    t_event = rng.exponential(30.0 * np.exp(-(lp - lp.mean())))
    t_cens = rng.exponential(45.0, n)
    time_m = np.round(np.minimum(t_event, t_cens), 2) + 0.01
    event = (t_event <= t_cens).astype(np.int64)
    print(f"\nCox: n = {n:,} subjects, 3 covariates, {np.unique(time_m[event == 1]).size:,} "
          f"distinct event times, {event.mean():.1%} events, Efron ties")
    t_ours, ours = _best(lambda: cox_ph(time_m, event, x, names=["z", "b", "age"]), repeat=1)
    print(f"rtplan   cox_ph           {t_ours:8.2f} s    coef {np.round(ours.coef, 6).tolist()}"
          f"  C {ours.concordance:.4f}")
    try:
        import pandas as pd
        from lifelines import CoxPHFitter
    except ImportError:
        print("lifelines not installed: skipping the reference (pip install lifelines)")
        return
    df = pd.DataFrame(x, columns=["z", "b", "age"]).assign(t=time_m, e=event)
    t_ll, cph = _best(lambda: CoxPHFitter().fit(df, "t", "e"), repeat=1)
    coef_ll = cph.params_[["z", "b", "age"]].to_numpy()
    se_ll = cph.standard_errors_[["z", "b", "age"]].to_numpy()
    print(f"lifelines CoxPHFitter     {t_ll:8.2f} s    coef {np.round(coef_ll, 6).tolist()}")
    print(f"max |coef difference| = {np.max(np.abs(np.array(ours.coef) - coef_ll)):.2e}; "
          f"max |se difference| = {np.max(np.abs(np.array(ours.se) - se_ll)):.2e}")
    print(f"speed ratio (lifelines / rtplan): Cox {t_ll / t_ours:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    main_cox(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
