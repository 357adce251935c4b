"""The example scripts run and print what they promise."""

import subprocess
import sys

from conftest import REPO


def test_compare_schedules_example():
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "compare_schedules.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "a/b 1.5 Gy: sbrt-37.5-5" in out
    assert "a/b 10 Gy: eni-51-34-sib-61.2" in out
    # analytic crossing: 37.5 (7.5 + x) = 61.2 (1.8 + x) -> x = 7.219 Gy
    assert "below ~7.2" in out
