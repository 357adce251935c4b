"""Make the SYNTHETIC 86-patient example cohort (no real patient data).

The marginal distribution follows the Heidelberg PSMA-guided radiotherapy cohort
(../../../shared/papers/psma-guided-radiotherapy-heidelberg.txt): 51 patients with > 24
fractions, 21 with 10-24 and 14 with < 10; 74 after surgery, 11 after definitive RT,
1 other; about 60 % concomitant ADT; ENI only in the > 24 group. Every value is drawn
from simple distributions with a fixed seed; outcomes are invented. Patient ids start
with "SYN-" so the files cannot be mistaken for real data.

Run from the repository root:

    .venv/bin/python examples/synthetic_cohort/make_cohort.py

It rewrites patients.csv, psa.csv, toxicity.csv and lesions.csv next to this script.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

SEED = 20240521
HERE = Path(__file__).resolve().parent
DPM = 30.4375  # days per month


def main() -> None:
    rng = np.random.default_rng(SEED)
    schedules = (
        [(34, 51.0)] * 44 + [(28, 50.4)] * 7  # > 24 fractions (ENI + SIB, or normofractionated)
        + [(15, 45.0)] * 11 + [(20, 50.0)] * 10  # 10-24
        + [(3, 27.0)] * 9 + [(5, 37.5)] * 5  # < 10 (SBRT)
    )
    n = len(schedules)
    assert n == 86
    eni = [i < 44 for i in range(n)]
    initial = ["surgery"] * 74 + ["radiotherapy"] * 11 + ["other"]
    rng.shuffle(initial)
    patients, psa_rows, tox_rows, lesion_rows = [], [], [], []
    cutoff = dt.date(2020, 6, 30)  # administrative end of follow-up
    for i, (fx, dose) in enumerate(schedules):
        pid = f"SYN-{i + 1:03d}"
        start = dt.date(2012, 1, 1) + dt.timedelta(days=int(rng.integers(0, 7 * 365)))
        adt = bool(rng.random() < 0.62)
        # invented hazards (per month): better with more fractions and with ADT
        scale = 1.0 if fx > 24 else (1.4 if fx >= 10 else 1.8)
        scale *= 0.7 if adt else 1.0
        death_m = rng.exponential(110 / scale)
        fail_m = rng.exponential(40 / scale)
        adt_m = rng.exponential(16 / scale)
        fu_m = min(rng.uniform(4, 72), (cutoff - start).days / DPM)
        lost = rng.random() < 0.09
        if lost:
            fu_m = min(fu_m, rng.uniform(4, 24))
        fu_m = max(fu_m, 4.0)
        died = death_m <= fu_m
        end_m = death_m if died else fu_m
        last = start + dt.timedelta(days=round(end_m * DPM))
        death = last if died else None
        adt_start = None
        if adt_m < end_m:
            adt_start = start + dt.timedelta(days=max(1, round(adt_m * DPM)))
        gleason = int(rng.choice([6, 7, 8, 9, 10], p=[0.03, 0.5, 0.1, 0.34, 0.03]))
        ipsa = round(float(np.exp(rng.normal(2.4, 0.9))), 1)
        t_stage = str(rng.choice(["pT2c", "pT3a", "pT3b", "cT2b", "cT3a"]))
        psa_pre = round(float(np.exp(rng.normal(0.2, 1.1))), 2)
        patients.append({
            "patient_id": pid, "fractions": fx, "total_dose_gy": dose,
            "rt_start_date": start.isoformat(), "last_follow_up_date": last.isoformat(),
            "death_date": death.isoformat() if death else "",
            "adt_start_date": adt_start.isoformat() if adt_start else "",
            "adt_concomitant": "yes" if adt else "no", "eni": "yes" if eni[i] else "no",
            "initial_treatment": initial[i],
            "relapse": "first" if rng.random() < 0.64 else "second",
            "ipsa_ng_ml": ipsa, "gleason": gleason, "t_stage": t_stage,
        })
        # PSA: pre-RT value, then every 3 months; decline, then a rise after "failure"
        psa_rows.append({"patient_id": pid, "days": -14, "psa_ng_ml": psa_pre})
        response = rng.choice(["decrease", "unchanged", "rise"], p=[0.83, 0.07, 0.10])
        factor = {"decrease": rng.uniform(0.05, 0.8), "unchanged": 1.0,
                  "rise": rng.uniform(1.2, 2.5)}[response]
        nadir = psa_pre * factor
        months = np.arange(3, end_m + 0.01, 3.0)
        if rng.random() >= 0.83:  # no 3-month value for about 1 in 6 patients
            months = months[1:]
        for m in months:
            if m < fail_m:
                v = nadir * np.exp(rng.normal(0, 0.05))
            else:
                v = nadir * (1.6 ** ((m - fail_m) / 3 + 1)) + 0.05 * (m - fail_m)
            psa_rows.append({"patient_id": pid, "days": round(m * DPM),
                             "psa_ng_ml": round(float(v), 3)})
        # toxicity (CTCAE v5), some not assessed
        for tp, probs in (("before RT", [0.6, 0.3, 0.1, 0.0]),
                          ("during RT", [0.4, 0.35, 0.2, 0.05]),
                          ("3 months", [0.55, 0.3, 0.12, 0.03]),
                          ("last follow-up", [0.4, 0.35, 0.2, 0.05])):
            for dom in ("GI", "GU", "edema", "fatigue"):
                p = probs if dom == "GU" else [min(1.0, probs[0] + 0.25), probs[1] - 0.15,
                                               probs[2] - 0.1, 0.0]
                p = np.clip(p, 0, None)
                p = p / p.sum()
                assessed = rng.random() > (0.12 if tp != "last follow-up" else 0.3)
                grade = int(rng.choice(4, p=p)) if assessed else ""
                tox_rows.append({"patient_id": pid, "timepoint": tp, "domain": dom,
                                 "grade": grade})
    # lesions with follow-up PET: 38 lesions in 28 patients
    with_pet = rng.choice(n, 28, replace=False)
    counts = [2] * 10 + [1] * 18
    for k, i in enumerate(with_pet):
        for _ in range(counts[k]):
            pre = round(float(np.exp(rng.normal(2.0, 0.8))) + 1.5, 1)
            post = 0.0 if rng.random() < 0.55 else round(pre * rng.uniform(0.05, 0.6), 1)
            lesion_rows.append({"patient_id": f"SYN-{i + 1:03d}",
                                "site": str(rng.choice(["bone", "pelvic node", "distant node"],
                                                       p=[0.37, 0.48, 0.15])),
                                "suvmax_pre": pre, "suvmax_post": post})
    for name, rows in (("patients.csv", patients), ("psa.csv", psa_rows),
                       ("toxicity.csv", tox_rows), ("lesions.csv", lesion_rows)):
        with (HERE / name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {HERE / name} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
