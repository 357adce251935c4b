"""README's first command, ``rtplan demo -o demo-out --force``, run through the installed
``rtplan`` console script (as a user and CI run it), twice: the one-liner is re-runnable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _rtplan() -> str:
    exe = Path(sys.executable).with_name("rtplan")
    if exe.exists():
        return str(exe)
    found = shutil.which("rtplan")
    if found is None:
        if os.environ.get("RTPLAN_CI") == "1":
            pytest.fail("the rtplan console script is not installed (pip install -e .)")
        pytest.skip("the rtplan console script is not installed (pip install -e .)")
    return found


def test_readme_one_liner_uses_force():
    first = (ROOT / "README.md").read_text(encoding="utf-8").split("```", 2)[1]
    assert re.search(r"rtplan demo -o (\S+) --force", first), first


def test_demo_through_console_script_and_rerun(tmp_path):
    out = tmp_path / "demo-out"
    cmd = [_rtplan(), "demo", "-o", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    rs = pydicom.dcmread(out / "RS_rtplan.dcm")
    assert rs.Modality == "RTSTRUCT"
    names = {r.ROIName for r in rs.StructureSetROISequence}
    report = json.loads((out / "report.json").read_text())
    # the RTSTRUCT holds exactly the structures the report lists, PTVs among them
    assert names == {s["name"] for s in report["structures"]}
    assert sum(n.startswith("PTV") for n in names) >= 4, names
    # the four schedules of the paper side by side
    assert len(json.loads((out / "schedules.json").read_text())["plans"]) == 4
    # a second run without --force refuses (exit 2, one line naming --force) ...
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    # ... and with --force (README's one-liner) it runs again
    forced = subprocess.run([*cmd, "--force", "-q"], capture_output=True, text=True,
                            timeout=600)
    assert forced.returncode == 0, forced.stderr
    assert pydicom.dcmread(out / "RS_rtplan.dcm").SOPInstanceUID
