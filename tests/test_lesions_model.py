"""One lesions model (rtplan.lesions), read the same by every command; distinct preset
names; one UID check; library errors name keyword arguments, not CLI options."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import rtplan.imaging as imaging
import rtplan.radiobiology as radiobiology
from rtplan._shared.dicom import is_uid
from rtplan.cli.main import main
from rtplan.cli.options import flags_for_keywords, parse_source
from rtplan.errors import InputError, InvalidParameterError
from rtplan.imaging.pet_lesions import PETLesion, measure_pet_lesions
from rtplan.lesions import (
    THRESHOLD_PRESETS,
    Lesion,
    LesionsFile,
    LesionSite,
    duplicate_ids,
    load_lesions_file,
)

ROOT = Path(__file__).resolve().parents[1]


def test_one_lesion_site_and_one_lesion_model():
    from rtplan.imaging import pet_lesions
    from rtplan.structures import naming, spec

    assert naming.LesionSite is LesionSite and pet_lesions.LesionSite is LesionSite
    assert PETLesion is Lesion and spec.Lesion is Lesion and spec.LesionsFile is LesionsFile
    # no second definition anywhere in the package
    defs = [p for p in (ROOT / "rtplan").rglob("*.py")
            if re.search(r"^class LesionSite\b", p.read_text(encoding="utf-8"), re.M)]
    assert [p.name for p in defs] == ["lesions.py"]


def test_relative_paths_resolved_and_every_reader_sees_one_model(tmp_path):
    doc = {"lesions": [
        {"id": "L1", "site": "bone", "source": {"kind": "pet_seed", "point_mm": [1, 2, 3]}},
        {"id": "L2", "site": "pelvic_node",
         "source": {"kind": "rtstruct", "path": "sub/RS.dcm", "roi": "GTV"}},
        {"id": "L3", "site": "visceral", "source": {"kind": "mask", "path": "m.nii.gz"}}],
        "eni": {"ctv": {"kind": "rtstruct", "path": "atlas.dcm", "roi": "CTVn"}}}
    f = tmp_path / "lesions.json"
    f.write_text(json.dumps(doc))
    spec = load_lesions_file(f)
    assert spec.lesions[1].source.path == str((tmp_path / "sub" / "RS.dcm").resolve())
    assert spec.lesions[2].source.path == str((tmp_path / "m.nii.gz").resolve())
    assert spec.eni.ctv.path == str((tmp_path / "atlas.dcm").resolve())
    assert [x.is_pet_seed for x in spec.lesions] == [True, False, False]


@pytest.mark.parametrize("bad", [
    {"kind": "sphere", "center_mm": [0, 0, 0]},             # no diameter
    {"kind": "circle", "center_mm": [0, 0, 0]},             # unknown kind
])
def test_rtplan_lesions_validates_every_source_like_structures(tmp_path, capsys, bad):
    # rtplan lesions used to carry non-PET sources as unchecked dicts (list[Any])
    f = tmp_path / "lesions.json"
    f.write_text(json.dumps({"lesions": [
        {"id": "L1", "site": "bone", "source": {"kind": "pet_seed", "point_mm": [0, 0, 0]}},
        {"id": "L2", "site": "bone", "source": bad}]}))
    with pytest.raises(InputError, match=r"lesions\[1\] \(L2\)\.source"):
        load_lesions_file(f)
    assert main(["lesions", "--pet", str(tmp_path), "--lesions", str(f)]) == 2
    err = capsys.readouterr().err
    assert "L2" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_one_unique_id_check():
    assert duplicate_ids(["a", "b", "a", "c", "b"]) == ["a", "b"]
    seed = {"kind": "pet_seed", "point_mm": [0, 0, 0]}
    with pytest.raises(ValueError, match=r"lesion ids must be unique; repeated: \['L1'\]"):
        LesionsFile.model_validate({"lesions": [{"id": "L1", "site": "bone", "source": seed},
                                                {"id": "L1", "site": "bone", "source": seed}]})
    twice = [Lesion(id="L1", site="bone", source=seed)] * 2
    with pytest.raises(InvalidParameterError, match=r"repeated: \['L1'\]"):
        measure_pet_lesions([[[0.0]]], imaging.Grid((1, 1, 1), (0, 0, 0), (1, 1, 1)), twice)


def test_preset_names_are_distinct():
    assert not hasattr(imaging, "PRESETS")
    assert imaging.THRESHOLD_PRESETS is THRESHOLD_PRESETS
    # cited levels (Zamboglou 2019: 20 % and 40-50 % of SUVmax; adaptive 40 %)
    assert THRESHOLD_PRESETS == {"adaptive": ("background_adaptive", 0.40),
                                 "sensitive": ("percent_max", 0.20),
                                 "specific": ("percent_max", 0.45)}
    assert radiobiology.PRESETS is radiobiology.PLAN_PRESETS  # alias kept
    assert "sbrt-27-3" in radiobiology.PLAN_PRESETS


@pytest.mark.parametrize(("text", "loose", "strict"), [
    ("1.2.840.10008.5.1.4.1.1.66", True, True),
    ("1.2.826.0.1.3680043.8.498.2001", True, True),   # a 0 component alone is allowed
    ("2.25.1", True, True),
    ("1", False, False),                              # one component: no org root.suffix
    ("1.", False, False), ("1..2", False, False), (".1.2", False, False),
    ("1.2.03", True, False),                          # leading zero: malformed, still a UID
    ("1." + "1" * 63, True, False),                   # 65 characters
    ("PET", False, False), ("CT", False, False), ("", False, False), ("1.2.a", False, False),
])
def test_is_uid_ps3_5_9_1(text, loose, strict):
    assert is_uid(text) is loose
    assert is_uid(text, strict=True) is strict


def test_one_uid_check_in_the_package():
    hits = [p.relative_to(ROOT).as_posix() for p in (ROOT / "rtplan").rglob("*.py")
            if re.search(r"^_UID\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert hits == []


def test_cli_source_syntax():
    assert parse_source("RS.dcm:Bladder") == {"kind": "rtstruct", "path": "RS.dcm",
                                              "roi": "Bladder"}
    assert parse_source("dir/Atlas.NII.GZ:2") == {"kind": "mask", "path": "dir/Atlas.NII.GZ",
                                                   "label": 2}
    assert parse_source("m.nii") == {"kind": "mask", "path": "m.nii"}
    with pytest.raises(InputError, match=r"--exclude 'm\.nii\.gz:x': the label"):
        parse_source("m.nii.gz:x", option="--exclude")
    with pytest.raises(InputError, match="give RTSTRUCT:ROI"):
        parse_source("RS.dcm")


def test_keywords_become_flags_only_as_whole_tokens():
    assert flags_for_keywords("give the PET series (pet=)") == "give the PET series (--pet DIR)"
    assert flags_for_keywords("use body='none' or body=mask") == (
        "use --body none or --body RS.dcm:ROI")
    assert flags_for_keywords("(registration= or pet_transform=: ...)") == (
        "(--registration REG.dcm or --pet-to-ct-matrix FILE: ...)")
    # other words ending in a keyword are left alone
    assert flags_for_keywords("max_pet= x.pet= snippet=") == "max_pet= x.pet= snippet="


def _raise_strings(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            out += [c.value for c in ast.walk(node.exc)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return out


#: library modules still naming CLI options in errors (owned by other work; to fix)
_NOT_YET = {"rtplan/structures/body.py", "rtplan/imaging/ct.py", "rtplan/imaging/suv.py",
            "rtplan/imaging/pet_writer.py"}


def test_library_errors_name_keywords_not_cli_options():
    files = [*(ROOT / "rtplan" / "structures").rglob("*.py"),
             *(ROOT / "rtplan" / "imaging").rglob("*.py"), ROOT / "rtplan" / "lesions.py"]
    offenders = {}
    for p in files:
        rel = p.relative_to(ROOT).as_posix()
        if rel in _NOT_YET:
            continue
        bad = [s for s in _raise_strings(p) if re.search(r"(?<![\w-])--[a-z]", s)]
        if bad:
            offenders[rel] = bad
    assert offenders == {}
    # the checker sees f-string parts
    probe = ROOT / "rtplan" / "cli" / "structures.py"
    assert any("--pet DIR" in s for s in _raise_strings(probe))
