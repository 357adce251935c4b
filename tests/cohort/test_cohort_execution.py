"""Executors agree, and interrupted or killed runs resume without recomputing.

References: the serial run (the process pool and a Dask LocalCluster must give the same
values to 1e-9 Gy / cm3 / %); the database rows written before a kill (their
``computed_at`` must not change when the run is resumed).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from cohort_data import make_db, synthetic_cohort

from rtplan.cohort import DVHParameters, connect, load_metrics, run_dvh

PARAMS = DVHParameters(metrics=("Dmean", "Dmax", "D2cc", "D50%", "V20Gy%"))
N_COMPUTABLE = 23  # 20 normal + two plans + no CT + relative dose (which fails)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return synthetic_cohort(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory):
    db = make_db(cohort[0], tmp_path_factory.mktemp("ref") / "c.sqlite")
    run_dvh(db, PARAMS, executor="serial")
    return values(db)


def values(db):
    with connect(db) as con:
        return {(r.patient_id, r.plan_uid, r.roi, r.metric, r.quantity): r.value
                for r in load_metrics(con)}


def computed_at(db):
    with connect(db) as con:
        return dict(con.execute("SELECT patient_id, computed_at FROM results"))


def assert_same(a, b, tol=1e-9):
    assert a.keys() == b.keys()
    worst = max(abs(a[k] - b[k]) for k in a)
    assert worst <= tol, worst


@pytest.mark.slow
def test_process_pool_and_dask_equal_serial(cohort, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    pool_db = make_db(cohort[0], tmp_path / "pool.sqlite")
    s = run_dvh(pool_db, PARAMS, executor="process", workers=2)
    assert (s.computed, s.workers, s.exit_code) == (N_COMPUTABLE, 2, 0)
    assert_same(values(pool_db), reference)
    dask_db = make_db(cohort[0], tmp_path / "dask.sqlite")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        s = run_dvh(dask_db, PARAMS, executor="dask", dask_scheduler=cluster.scheduler_address)
    assert (s.computed, s.executor, s.exit_code) == (N_COMPUTABLE, "dask", 0)
    assert [f.patient_id for f in s.failed] == ["SYN-RELATIVE-DOSE"]
    assert_same(values(dask_db), reference)
    assert len(reference) == (N_COMPUTABLE - 1 + 1) * 3 * 11  # +1: the second plan


def test_ctrl_c_keeps_what_is_stored(cohort, reference, tmp_path):
    db = make_db(cohort[0], tmp_path / "c.sqlite")
    seen = []

    def interrupt(result):
        seen.append(result.patient_id)
        if len(seen) == 3:
            raise KeyboardInterrupt

    s = run_dvh(db, PARAMS, executor="serial", on_result=interrupt)
    assert s.interrupted and s.exit_code == 1 and s.computed == 3
    before = computed_at(db)
    assert sorted(before) == seen
    again = run_dvh(db, PARAMS, executor="serial")
    assert (again.computed, again.skipped_unchanged) == (N_COMPUTABLE - 3, 3)
    after = computed_at(db)
    assert all(after[p] == before[p] for p in seen)  # not recomputed
    assert_same(values(db), reference)


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(cohort, reference, tmp_path):
    db = make_db(cohort[0], tmp_path / "c.sqlite")
    script = textwrap.dedent(f"""
        import os, signal
        from rtplan.cohort import DVHParameters, run_dvh
        n = []
        def kill(result):
            n.append(result)
            if len(n) == 5:
                os.kill(os.getpid(), signal.SIGKILL)
        run_dvh({str(db)!r}, DVHParameters.model_validate_json({PARAMS.model_dump_json()!r}),
                executor="serial", on_result=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    before = computed_at(db)
    assert len(before) == 5
    again = run_dvh(db, PARAMS, executor="serial")
    assert (again.computed, again.skipped_unchanged) == (N_COMPUTABLE - 5, 5)
    after = computed_at(db)
    assert all(after[p] == t for p, t in before.items())
    assert_same(values(db), reference)


@pytest.mark.slow
def test_killed_worker_is_reported_and_retried(cohort, reference, tmp_path):
    db = make_db(cohort[0], tmp_path / "c.sqlite")
    killed = []

    def kill_a_worker(result):
        if not killed:
            child = multiprocessing.active_children()[0]
            os.kill(child.pid, signal.SIGKILL)
            killed.append(child.pid)

    s = run_dvh(db, PARAMS, executor="process", workers=2, on_result=kill_a_worker)
    lost = [f.patient_id for f in s.failed if f.error_kind == "worker"]
    assert lost and s.exit_code == 1
    assert "worker process died" in next(f.error for f in s.failed if f.error_kind == "worker")
    assert s.computed == N_COMPUTABLE  # every patient stored: a result or the error
    again = run_dvh(db, PARAMS, executor="serial")
    retried = set(lost) | {"SYN-RELATIVE-DOSE"}
    assert again.computed == len(retried)
    assert again.exit_code == 0
    assert_same(values(db), reference)


@pytest.mark.slow
def test_cli_dask_local(tmp_path, capsys):
    pytest.importorskip("distributed")
    from rtplan.cli.main import main
    from rtplan.cohort.synthetic import write_synthetic_cohort

    write_synthetic_cohort(tmp_path / "tree", 2, broken=False)
    db = str(tmp_path / "c.sqlite")
    assert main(["cohort", "index", str(tmp_path / "tree"), "--db", db]) == 0
    assert main(["cohort", "dvh", "--db", db, "--dask", "local", "--workers", "1",
                 "--metrics", "Dmean", "--json"]) == 0
    out = capsys.readouterr().out
    summary = out[out.index('{\n  "executor"'):]
    assert '"executor": "dask"' in summary and '"computed": 2' in summary
    serial = tmp_path / "s.sqlite"
    make_db(tmp_path / "tree", serial)
    run_dvh(serial, DVHParameters(metrics=("Dmean",)), executor="serial")
    assert_same(values(db), values(serial))
