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


def test_check_not_input_refuses_inputs_and_input_folders(tmp_path):
    from rtplan._shared.io import check_not_input
    from rtplan.errors import OutputError

    src = tmp_path / "RD.dcm"
    src.write_bytes(b"x")
    folder = tmp_path / "ct"
    folder.mkdir()
    with pytest.raises(OutputError, match="also an input"):
        check_not_input(tmp_path / "sub" / ".." / "RD.dcm", None, src)
    with pytest.raises(OutputError, match="input folder"):
        check_not_input(folder / "RS.dcm", folder)
    assert check_not_input(tmp_path / "out.dcm", src, folder, None).name == "out.dcm"
    assert src.read_bytes() == b"x"


def test_unwritable_output_is_an_output_error_not_an_oserror_traceback(tmp_path):
    from rtplan._shared.io import atomic_write_text
    from rtplan.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write") as info:
        atomic_write_text(blocker / "out.txt", "x")  # parent is a file
    assert info.value.exit_code == 2
    assert isinstance(info.value, OSError)

    def failing(path):
        raise PermissionError(13, "Permission denied")

    from rtplan._shared.io import atomic_write

    with pytest.raises(OutputError, match="Permission denied"):
        atomic_write(tmp_path / "x.bin", failing)
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind


def test_cli_turns_file_system_errors_and_broken_pipes_into_messages(tmp_path, capsys):
    from rtplan.cli.main import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["demo", "-o", str(blocker / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc in (1, 2)
    assert "error:" in err and "Traceback" not in err


def test_cli_stops_quietly_on_a_broken_pipe(monkeypatch, capsys):
    import rtplan.cli.main as cli_main
    import rtplan.cli.radiobiology as radio

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(radio, "_run_presets", closed_pipe)
    redirected = []
    monkeypatch.setattr(cli_main.os, "dup2", lambda a, b: redirected.append(b))
    monkeypatch.setattr(cli_main.sys.stdout, "fileno", lambda: 1, raising=False)
    assert cli_main.main(["presets"]) == 141
    assert redirected == [1]
    assert capsys.readouterr().err == ""
