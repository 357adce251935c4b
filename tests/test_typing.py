"""The package type-checks: mypy reports no error on ``rtplan/`` (config in pyproject).

Part of the README test command, so CI enforces it as it does ruff.
"""

import os
import subprocess
import sys

import pytest

from conftest import REPO


def test_mypy_clean():
    if subprocess.run([sys.executable, "-m", "mypy", "--version"],
                      capture_output=True).returncode != 0:
        if os.environ.get("RTPLAN_CI"):
            pytest.fail("mypy is not installed in CI (it is in the test extra)")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--config-file",
         str(REPO / "pyproject.toml")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
