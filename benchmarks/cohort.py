"""Benchmark: ``rtplan cohort dvh`` throughput, serial vs process pool vs Dask LocalCluster.

A synthetic cohort of N patients (default 200; rtplan.cohort.synthetic: 16 x 40 x 40
dose grid, 3 box ROIs, one plan each) is written and indexed once. Then, each on a
fresh database: serial (1 process), a process pool of 1 and 2 workers, and a Dask
LocalCluster of 2 worker processes compute every patient (default metrics).

Printed per run: wall time (best of --repeat), patients per second (whole run, and
steady state: from the first stored result to the last, without the workers' start-up
of 1-3 s each, which a long cohort run pays once), and the peak
resident memory of each worker process (sampled every 20 ms with psutil, max over the
run; for serial, the main process). Also: the size of what is sent to a worker per
patient (the pickled task: file paths and parameters, no pixel data), and the time of
one real planning-system patient (the shared Eclipse plan, 98 x 129 x 194 dose grid,
9 ROIs) for scale.

    .venv/bin/python benchmarks/cohort.py [--patients 200] [--repeat 1] [--no-dask]
        [--supersampling 3]   (e.g. --patients 40 --supersampling 16: heavier patients)
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rtplan.cohort import (
    DVHParameters,
    PatientResult,
    PatientTask,
    connect,
    index_tree,
    input_hash,
    run_dvh,
    store_index,
)
from rtplan.cohort.synthetic import write_synthetic_cohort

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dicompyler-core-rt"


class PeakMemory:
    """Sample the RSS of this process and its descendants; keep each pid's peak (MiB)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._psutil = psutil
        self.interval_s = interval_s
        self.peaks: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss / 2**20
                    self.names.setdefault(p.pid, " ".join(p.cmdline()[-2:])[-40:])
                except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fresh_db(root: Path, folder: Path, name: str) -> Path:
    db = folder / f"{name}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with connect(db, create=True) as con:
        store_index(con, index_tree(root))
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode; best is kept")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--supersampling", type=int, default=3,
                    help="DVH supersampling (larger = more work per patient; default 3)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rtplan-cohort-bench-"))
    try:
        root = work / "tree"
        t0 = time.perf_counter()
        write_synthetic_cohort(root, args.patients, broken=False, seed=1)
        t_write = time.perf_counter() - t0
        n_files = sum(1 for _ in root.rglob("*") if _.is_file())
        t0 = time.perf_counter()
        index = index_tree(root)
        t_index = time.perf_counter() - t0
        print(f"cohort: {args.patients} patients, {n_files} files "
              f"(written in {t_write:.1f} s); index (headers only) {t_index:.2f} s = "
              f"{n_files / t_index:.0f} files/s")
        params = DVHParameters(supersampling=args.supersampling)
        print(f"DVH supersampling {args.supersampling}")
        p = index.patients[0]
        task = PatientTask(patient_id=p.patient_id, plans=p.computable_plans,
                           parameters=params, input_hash=input_hash(p.plans, params))
        print(f"sent to a worker per patient: {len(pickle.dumps(task))} bytes "
              "(pickled task: paths + parameters); returned: plain metric records")
        print(f"machine: {os.cpu_count()} CPUs (shared with other work: timings are noisy)")
        modes: list[tuple[str, dict]] = [
            ("serial", {"executor": "serial"}),
            ("pool 1 worker", {"executor": "process", "workers": 1}),
            ("pool 2 workers", {"executor": "process", "workers": 2}),
        ]
        if not args.no_dask:
            modes.append(("Dask LocalCluster 2", {"executor": "dask", "workers": 2,
                                                  "dask_scheduler": "local"}))
        print(f"\n{'mode':<22}{'wall s':>8}{'patients/s':>12}{'steady /s':>11}  "
              "peak RSS per process (MiB)")
        for name, kw in modes:
            best = None
            for _ in range(args.repeat):
                db = fresh_db(root, work, name.replace(" ", "_"))
                stamps: list[float] = []

                def stamp(_result: PatientResult, st: list[float] = stamps) -> None:
                    st.append(time.perf_counter())

                with PeakMemory() as mem:
                    t0 = time.perf_counter()
                    s = run_dvh(db, params, on_result=stamp, **kw)
                    wall = time.perf_counter() - t0
                # steady state: from the first stored result to the last (no start-up)
                steady = (len(stamps) - 1) / (stamps[-1] - stamps[0])
                assert s.computed == args.patients and not s.failed, s
                if best is None or wall < best[0]:
                    best = (wall, mem, steady)
            assert best is not None
            wall, mem, steady = best
            me = os.getpid()
            workers = sorted(v for pid, v in mem.peaks.items() if pid != me)
            main_mib = mem.peaks.get(me, 0.0)
            detail = (f"main {main_mib:.0f}" if not workers else
                      f"main {main_mib:.0f}; children " + ", ".join(f"{v:.0f}"
                                                                    for v in workers))
            print(f"{name:<22}{wall:>8.2f}{args.patients / wall:>12.1f}{steady:>11.1f}  "
                  f"{detail}")
        if (SHARED / "rtdose.dcm").is_file():
            eroot = work / "eclipse" / "p"
            eroot.mkdir(parents=True)
            for f in ("ct.0.dcm", "rtdose.dcm", "rtplan.dcm", "rtss.dcm"):
                shutil.copy(SHARED / f, eroot / f)
            db = fresh_db(work / "eclipse", work, "eclipse")
            t0 = time.perf_counter()
            s = run_dvh(db, DVHParameters(), executor="serial")
            wall = time.perf_counter() - t0
            print(f"\nreal Eclipse patient (98 x 129 x 194 dose grid, 9 ROIs, "
                  f"supersampling 3): {wall:.2f} s serial ({s.computed} patient); a pool of "
                  "W workers runs W such patients at once")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
