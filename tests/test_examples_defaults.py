"""examples/structures_pipeline.py writes to ./structures-out by default (a folder the
user can open afterwards), refuses to overwrite it and overwrites with --force."""

from __future__ import annotations

import subprocess
import sys

import pydicom
import pytest

from conftest import REPO

SCRIPT = REPO / "examples" / "structures_pipeline.py"


@pytest.mark.slow
def test_structures_pipeline_default_folder(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    first = run()
    assert first.returncode == 0, first.stderr
    rs = tmp_path / "structures-out" / "RS_targets.dcm"
    assert "written under structures-out" in first.stdout
    assert len(pydicom.dcmread(rs).StructureSetROISequence) == 17
    again = run()
    assert again.returncode == 2 and "--force" in again.stderr
    assert run("--force").returncode == 0
