"""The cohort database on a real PostgreSQL server started by the test (skipped when
PostgreSQL, SQLAlchemy or psycopg are not installed).

Reference: the same cohort stored in SQLite; every metric must be the same double.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from cohort_data import make_db, synthetic_cohort

from rtplan.cli.main import main
from rtplan.cohort import DVHParameters, connect, load_index, load_metrics, run_dvh

PARAMS = DVHParameters(metrics=("Dmean", "D2cc", "V20Gy%"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    initdb = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None)
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (no initdb; Debian package 'postgresql')")
    pg_ctl = str(Path(os.path.realpath(initdb)).parent / "pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="rtplan-pg-"))
    user = None
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        user = "postgres"
    data, port = base / "data", _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), user=user, capture_output=True, text=True,
                              timeout=120, cwd=base)

    r = run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-locale",
            "-E", "UTF8")
    if r.returncode:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
    r = run(pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
            f"-k {base} -p {port} -c listen_addresses=''", "start")
    if r.returncode:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[-200:]} {log[-300:]}")
    try:
        yield f"postgresql://postgres@/postgres?host={base}&port={port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_postgresql_database_equals_sqlite(postgres_url, tmp_path_factory, tmp_path):
    root, _ = synthetic_cohort(tmp_path_factory)
    lite = make_db(root, tmp_path / "c.sqlite")
    run_dvh(lite, PARAMS, executor="serial")
    assert main(["cohort", "index", str(root), "--db", postgres_url]) == 0
    first = run_dvh(postgres_url, PARAMS, executor="process", workers=2)
    assert first.computed == 23 and [f.patient_id for f in first.failed] == [
        "SYN-RELATIVE-DOSE"]
    again = run_dvh(postgres_url, PARAMS, executor="serial")
    assert (again.computed, again.skipped_unchanged) == (1, 22)
    with connect(postgres_url) as pg, connect(lite) as sq:
        assert load_index(pg) == load_index(sq)
        a = {(m.patient_id, m.plan_uid, m.roi, m.metric, m.quantity): m
             for m in load_metrics(pg)}
        b = {(m.patient_id, m.plan_uid, m.roi, m.metric, m.quantity): m
             for m in load_metrics(sq)}
    assert a == b  # same doubles, same records
    out = tmp_path / "m.csv"
    assert main(["cohort", "export", "--db", postgres_url, "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == len(a) + 1
