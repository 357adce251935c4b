"""Atomic output: refuse to overwrite, no partial file on failure, normal permissions."""

import os
import stat

import pytest

from rtplan._shared.io import atomic_write, atomic_write_text
from rtplan.errors import OutputExistsError


def test_refuses_overwrite_unless_asked(tmp_path):
    p = tmp_path / "out.txt"
    atomic_write_text(p, "one")
    with pytest.raises(OutputExistsError, match="--force"):
        atomic_write_text(p, "two")
    assert p.read_text() == "one"
    atomic_write_text(p, "two", overwrite=True)
    assert p.read_text() == "two"


def test_failure_leaves_nothing(tmp_path):
    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.dcm", boom)
    assert list(tmp_path.iterdir()) == []


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "perm.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
