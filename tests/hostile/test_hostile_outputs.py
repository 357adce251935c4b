"""Issue 11, outputs and the command line: inputs are never written, outputs are all or
nothing, and every failure is one line with exit status 2 (never a traceback)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

from rtplan._shared.io import atomic_write_text, check_outputs
from rtplan._shared.optional import import_optional, require_optional
from rtplan.cli.main import main
from rtplan.errors import MissingDependencyError, OutputError, OutputExistsError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "synthetic_cohort"
COHORT = "patient_id,fractions,total_dose_gy,os_months,os_event\nP1,5,37.5,12,1\nP2,3,27,20,0\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def cohort(tmp_path) -> Path:
    p = tmp_path / "cohort.csv"
    p.write_text(COHORT)
    return p


# ------------------------------------------------------------------------ outcomes
def test_outcomes_markdown_onto_the_cohort_is_refused_even_with_force(capsys, cohort):
    code, _, err = run(capsys, "outcomes", str(cohort), "--markdown", str(cohort), "--force")
    assert code == 2 and one_line(err) and "is also an input" in err
    assert cohort.read_text() == COHORT  # the input is untouched


@pytest.mark.parametrize("option", ["--psa", "--toxicity", "--lesions"])
def test_outcomes_markdown_onto_another_input_is_refused(capsys, cohort, tmp_path, option):
    other = tmp_path / "other.csv"
    other.write_text("patient_id\n")
    code, _, err = run(capsys, "outcomes", str(cohort), option, str(other),
                       "--markdown", str(other), "--force")
    assert code == 2 and "is also an input" in err
    assert other.read_text() == "patient_id\n"


def test_outcomes_plots_onto_a_file_leaves_no_markdown(capsys, cohort, tmp_path):
    a_file = tmp_path / "figures"
    a_file.write_text("x")
    md = tmp_path / "r.md"
    code, _, err = run(capsys, "outcomes", str(cohort), "--markdown", str(md),
                       "--plots", str(a_file))
    assert code == 2 and one_line(err) and "is a file, not a folder" in err
    assert not md.exists()


def test_outcomes_existing_markdown_refused_before_computing(capsys, cohort, tmp_path,
                                                              monkeypatch):
    md = tmp_path / "r.md"
    md.write_text("old")
    import rtplan.outcomes

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr(rtplan.outcomes, "load_cohort", boom)
    code, _, err = run(capsys, "outcomes", str(cohort), "--markdown", str(md))
    assert code == 2 and "already exists" in err and md.read_text() == "old"


def test_outcomes_missing_extra_reported_before_computing(capsys, cohort, tmp_path,
                                                          monkeypatch):
    for mod in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    md = tmp_path / "r.md"
    code, _, err = run(capsys, "outcomes", str(cohort), "--markdown", str(md),
                       "--plots", str(tmp_path / "figs"))
    assert code == 2 and one_line(err)
    assert "optional package 'matplotlib'" in err and "pip install 'rtplan[plot]'" in err
    assert not md.exists() and not (tmp_path / "figs").exists()


@pytest.mark.parametrize("band", ["nan", "inf", "-5", "1e308"])
def test_outcomes_psa_band_refused(capsys, cohort, band):
    code, _, err = run(capsys, "outcomes", str(cohort), f"--psa-band={band}")
    assert code == 2 and one_line(err) and "band_percent" in err


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (COHORT.encode("latin-1").replace(b"P1", b"M\xfcller"), "not UTF-8 text"),
        (b"patient_id,fractions,fractions\nP1,5,3\n", "appear more than once"),
        (b"patient_id,fractions,total_dose_gy,os_months,os_event\nP1,5,37.5,1e308,1\n",
         "os_months"),
    ],
    ids=["latin-1", "duplicate-header", "months-1e308"],
)
def test_outcomes_bad_cohort_one_line(capsys, tmp_path, content, match):
    p = tmp_path / "c.csv"
    p.write_bytes(content)
    code, _, err = run(capsys, "outcomes", str(p))
    assert code == 2 and one_line(err) and match in err


@pytest.mark.parametrize("kind", ["folder", "dev-null", "fifo", "missing"])
def test_outcomes_cohort_path_messages(capsys, tmp_path, kind):
    import os

    path = {"folder": tmp_path, "dev-null": Path("/dev/null"), "fifo": tmp_path / "c.csv",
            "missing": tmp_path / "nope.csv"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    expected = {"folder": "is a folder", "dev-null": "is a device", "fifo": "named pipe",
                "missing": "does not exist"}[kind]
    code, _, err = run(capsys, "outcomes", str(path))
    assert code == 2 and one_line(err) and expected in err


# ------------------------------------------------------------ radiobiology commands
@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["eqd2", "27/3", "--alpha-beta", "1e-320"], "alpha/beta"),
        (["eqd2", "9" * 5000 + "/3", "--alpha-beta", "3"], "too long"),
        (["equivalent", "--target-eqd2", "1e308", "--dose-per-fraction", "1e-300",
          "--alpha-beta", "1.5"], "target dose"),
        (["equivalent", "--target-eqd2", "74", "--dose-per-fraction", "1e-300",
          "--alpha-beta", "1.5"], "more than 10000"),
    ],
    ids=["alpha-beta-1e-320", "schedule-5000-digits", "target-1e308", "dpf-1e-300"],
)
def test_radiobiology_cli_one_line(capsys, argv, match):
    code, _, err = run(capsys, *argv)
    assert code == 2 and one_line(err) and match in err


# ------------------------------------------------------------------- io helpers
def test_check_outputs_refuses_two_outputs_on_one_file(tmp_path):
    with pytest.raises(OutputError, match="are the same file"):
        check_outputs(tmp_path / "a.md", tmp_path / "." / "a.md")


def test_check_outputs_folder_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, so the folder"):
        check_outputs(tmp_path / "f" / "out.md")


def test_check_outputs_existing_needs_overwrite(tmp_path):
    (tmp_path / "a.md").write_text("x")
    with pytest.raises(OutputExistsError):
        check_outputs(tmp_path / "a.md")
    assert check_outputs(tmp_path / "a.md", None, overwrite=True) == [tmp_path / "a.md"]


def test_check_outputs_output_inside_input_folder(tmp_path):
    with pytest.raises(OutputError, match="also an input folder"):
        check_outputs(tmp_path / "ct" / "RS.dcm", inputs=[tmp_path])


def test_disk_full_is_one_clear_line(tmp_path):
    def full(_tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    from rtplan._shared.io import atomic_write

    with pytest.raises(OutputError, match="disk full") as exc:
        atomic_write(tmp_path / "x.md", full)
    assert "permission" not in str(exc.value) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


@pytest.mark.parametrize(
    ("exc", "code", "match"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "RS.dcm"), 2, "disk full"),
        (OverflowError("int too large to convert to float"), 2, "too large to compute"),
        (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
        (MemoryError(), 2, "too large for the available memory"),
        (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), 2,
         "more than 4300 digits"),
    ],
    ids=["enospc", "overflow", "recursion", "memory", "int-digits"],
)
def test_cli_maps_stray_errors_to_one_line(capsys, cohort, monkeypatch, exc, code, match):
    import rtplan.cli.outcomes

    def raiser(args):
        raise exc

    monkeypatch.setattr(rtplan.cli.outcomes, "run", raiser)
    got, _, err = run(capsys, "outcomes", str(cohort))
    assert got == code and one_line(err) and match in err


def test_missing_optional_names_the_pip_package_and_exits_2(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    monkeypatch.setitem(sys.modules, "statsmodels.duration.hazard_regression", None)
    with pytest.raises(MissingDependencyError) as exc:
        import_optional("statsmodels.duration.hazard_regression", feature="Cox")
    assert "'statsmodels'" in str(exc.value) and "hazard_regression" not in str(exc.value)
    assert exc.value.exit_code == 2
    with pytest.raises(MissingDependencyError, match=r"rtplan\[stats\]"):
        require_optional("statsmodels", feature="--cox")


def test_atomic_write_text_still_refuses_overwrite(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "1")
    with pytest.raises(OutputExistsError):
        atomic_write_text(tmp_path / "a.txt", "2")
    assert (tmp_path / "a.txt").read_text() == "1"
