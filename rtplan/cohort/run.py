"""Run the per-patient tasks: serially, on a local process pool, or on a Dask cluster.

The parent process builds the tasks (file paths and parameters, see
:class:`~rtplan.cohort.tasks.PatientTask`), skips patients whose stored result has the
same input hash and succeeded, hands the others to the executor, and stores each
result in its own transaction as soon as it arrives. So:

* Ctrl-C or a killed parent loses nothing already stored; the next run computes only
  what is missing (or whose inputs or parameters changed, or that failed before).
* A worker that dies (killed, out of memory) breaks the process pool: every patient not
  stored yet gets the error kind ``worker``, and the run exits 1; running again retries
  them.
* A patient whose files are wrong gets the error kind ``input``: stored, listed, and
  the run still exits 0 (every patient succeeded or was reported).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Literal

from rtplan.cohort.db import connect, load_index, load_results, store_result
from rtplan.cohort.metrics import parse_metric
from rtplan.cohort.models import DVHParameters, PatientFailure, PatientResult, RunSummary
from rtplan.cohort.tasks import PatientTask, compute_patient, input_hash
from rtplan.errors import InputError, InvalidParameterError

__all__ = ["Executor", "run_dvh"]

Executor = Literal["serial", "process", "dask"]


def _serial(tasks: list[PatientTask]) -> Iterator[PatientResult]:
    for t in tasks:
        yield compute_patient(t)


def _process(tasks: list[PatientTask], workers: int) -> Iterator[PatientResult]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    pending = {pool.submit(compute_patient, t): t for t in tasks}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for f in done:
                task = pending.pop(f)
                try:
                    yield f.result()
                except BrokenProcessPool:
                    broken = True
                    pending[f] = task
            if broken:
                for task in pending.values():
                    yield PatientResult(
                        patient_id=task.patient_id, input_hash=task.input_hash,
                        status="error", error_kind="worker",
                        error="a worker process died (killed or out of memory) before this "
                        "patient's result was stored: run 'rtplan cohort dvh' again to retry",
                    )
                pending.clear()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(tasks: list[PatientTask], scheduler: str, workers: int) -> Iterator[PatientResult]:
    from rtplan._shared.optional import import_optional

    distributed = import_optional("distributed", feature="--dask execution")
    if scheduler == "local":
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        cluster = None
        client = distributed.Client(scheduler)
    try:
        futures = client.map(compute_patient, tasks, pure=False,
                             key=[f"rtplan-cohort-{t.patient_id}-{t.input_hash[:12]}"
                                  for t in tasks])
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for f in distributed.as_completed(futures):
            try:
                yield f.result()
            except Exception as exc:
                t = by_key[f.key]
                yield PatientResult(
                    patient_id=t.patient_id, input_hash=t.input_hash, status="error",
                    error_kind="worker", error=f"Dask task failed ({type(exc).__name__}: "
                    f"{exc}): run again to retry")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _progress(results: Iterable[PatientResult], total: int,
              show: bool) -> Iterable[PatientResult]:
    if not show:
        return results
    try:
        from tqdm import tqdm
    except ImportError:
        return results
    return tqdm(results, total=total, unit="patient", file=sys.stderr, disable=None)


def run_dvh(
    db: str | os.PathLike[str],
    parameters: DVHParameters | None = None,
    *,
    executor: Executor = "process",
    workers: int | None = None,
    dask_scheduler: str = "local",
    recompute: bool = False,
    progress: bool = False,
    on_result: Callable[[PatientResult], None] | None = None,
) -> RunSummary:
    """Compute and store the DVH metrics of every computable patient of the index.

    Parameters
    ----------
    db
        Cohort database written by ``rtplan cohort index`` (:func:`index_tree` +
        :func:`~rtplan.cohort.db.store_index`).
    parameters
        Metrics, alpha/beta overrides, supersampling (default :class:`DVHParameters`).
    executor
        ``serial`` (in this process), ``process`` (local process pool, default) or
        ``dask`` (a Dask distributed cluster, see ``dask_scheduler``).
    workers
        Pool size (default: the CPU count, at most 8); for ``dask_scheduler="local"``
        the number of LocalCluster worker processes.
    dask_scheduler
        ``"local"`` (a LocalCluster started and stopped here) or the address of an
        existing scheduler (``tcp://host:8786``).
    recompute
        Recompute every patient even when its stored result is up to date.
    progress
        Show a progress bar on stderr (tqdm, when installed and stderr is a terminal).
    on_result
        Called with each result after it is stored.

    Returns
    -------
    RunSummary
        Counts, failures (stored and listed) and ``exit_code``.

    Examples
    --------
    >>> import tempfile, os
    >>> from rtplan.cohort import index_tree, connect, store_index
    >>> from rtplan.cohort.synthetic import write_synthetic_cohort
    >>> root = tempfile.mkdtemp(); _ = write_synthetic_cohort(root, 2, broken=False)
    >>> db = os.path.join(root, "cohort.sqlite")
    >>> with connect(db, create=True) as con:
    ...     store_index(con, index_tree(root))
    >>> s = run_dvh(db, DVHParameters(metrics=("Dmean",)), executor="serial")
    >>> s.computed, s.skipped_unchanged, s.exit_code
    (2, 0, 0)
    >>> run_dvh(db, DVHParameters(metrics=("Dmean",)), executor="serial").skipped_unchanged
    2
    """
    params = parameters or DVHParameters()
    for m in params.metrics:
        parse_metric(m)  # fail early on a bad name
    if executor not in ("serial", "process", "dask"):
        raise InvalidParameterError(f"executor must be serial, process or dask, got "
                                    f"{executor!r}")
    n_workers = int(workers) if workers else min(os.cpu_count() or 1, 8)
    if n_workers < 1:
        raise InvalidParameterError(f"workers must be >= 1, got {workers}")
    t0 = time.perf_counter()
    with connect(db) as con:
        index = load_index(con)
        if not index.patients:
            raise InputError(f"the cohort database '{db}' holds no patient: index a DICOM "
                             "tree first (rtplan cohort index ROOT --db ...)")
        stored = load_results(con)
        tasks: list[PatientTask] = []
        not_computable: list[str] = []
        skipped = 0
        failed: list[PatientFailure] = []
        for p in index.patients:
            plans = p.computable_plans
            if not plans:
                not_computable.append(p.patient_id)
                continue
            try:
                h = input_hash(plans, params)
            except OSError as exc:
                r = PatientResult(patient_id=p.patient_id, input_hash="", status="error",
                                  error_kind="input", error=f"cannot read an input file: {exc}"
                                  " (moved since indexing? index again)")
                store_result(con, r)
                failed.append(PatientFailure(patient_id=p.patient_id, error_kind="input",
                                             error=r.error))
                continue
            old = stored.get(p.patient_id)
            if (not recompute and old is not None and old["input_hash"] == h
                    and old["status"] == "ok"):
                skipped += 1
                continue
            tasks.append(PatientTask(patient_id=p.patient_id, plans=plans, parameters=params,
                                     input_hash=h))
        if executor == "serial" or not tasks:
            results: Iterable[PatientResult] = _serial(tasks)
            n_workers = 1 if executor == "serial" else n_workers
        elif executor == "process":
            results = _process(tasks, min(n_workers, len(tasks)))
        else:
            results = _dask(tasks, dask_scheduler, n_workers)
        computed = 0
        interrupted = False
        try:
            for r in _progress(results, len(tasks), progress):
                store_result(con, r)
                computed += 1
                if r.status == "error":
                    failed.append(PatientFailure(patient_id=r.patient_id,
                                                 error_kind=r.error_kind, error=r.error))
                if on_result is not None:
                    on_result(r)
        except KeyboardInterrupt:
            interrupted = True
            close = getattr(results, "close", None)
            if close is not None:
                close()
    return RunSummary(
        executor=executor, workers=n_workers, n_patients=len(index.patients),
        computed=computed, skipped_unchanged=skipped, not_computable=not_computable,
        failed=failed, interrupted=interrupted, seconds=time.perf_counter() - t0,
    )
