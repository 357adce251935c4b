"""Lesions-file and option errors are short and specific: where, what, the offending
value; no union-branch noise (a margin is a number *or* six values) and never the whole
file content."""

import json

import pytest

from rtplan.cli.main import main
from rtplan.errors import InputError
from rtplan.structures.spec import load_lesions_file


def _sphere(i, d=8.0, site="bone"):
    return {"id": i, "site": site, "source": {"kind": "sphere", "center_mm": [0.0, 0.0, 0.0],
                                             "diameter_mm": d}}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"margins": {"ctv_margin_mm": 25}},
         "margins.ctv_margin_mm: Input should be less than or equal to 20 (got 25)"),
        ({"margins": {"ptv_margin_mm": [1, 2, 3, 2, 25, 2]}},
         "margins.ptv_margin_mm.superior_mm: Input should be less than or equal to 20 "
         "(got 25)"),
        ({"eni": {"ctv": {"kind": "rtstruct", "path": "atlas.dcm"}}},
         "eni.ctv.roi: Field required"),
    ],
)
def test_margin_and_eni_errors_name_one_branch(tmp_path, extra, expected):
    p = tmp_path / "lesions.json"
    p.write_text(json.dumps({"lesions": [_sphere("L1")], **extra}))
    with pytest.raises(InputError) as info:
        load_lesions_file(p)
    assert str(info.value) == f"invalid lesions file '{p}': {expected}"


def test_a_bad_lesion_is_named_without_dumping_the_file(tmp_path):
    lesions = [_sphere(f"L{k}") for k in range(1, 41)]
    lesions[36] = _sphere("L37", d=-4.0)
    lesions[12] = _sphere("L13", site="lung")
    p = tmp_path / "lesions.json"
    p.write_text(json.dumps({"lesions": lesions}))
    with pytest.raises(InputError) as info:
        load_lesions_file(p)
    msg = str(info.value)
    assert "lesions[12] (L13).site: Input should be 'prostate_bed'" in msg and "(got 'lung')" in msg
    assert "lesions[36] (L37).source.sphere.diameter_mm: Input should be greater than 0 " \
           "(got -4.0)" in msg
    assert "L36" not in msg and len(msg) < 400  # not the other lesions
    good = [_sphere(f"L{k}") for k in range(1, 31)]
    p.write_text(json.dumps({"lesions": [*good, _sphere("L1")]}))
    with pytest.raises(InputError, match=r"lesion ids must be unique; repeated: \['L1'\]$"):
        load_lesions_file(p)


def test_cli_margin_option_error_is_one_short_line(tmp_path, capsys):
    p = tmp_path / "lesions.json"
    p.write_text(json.dumps({"lesions": [_sphere("L1")]}))
    code = main(["structures", "--ct", str(tmp_path), "--lesions", str(p), "--ctv-margin-mm",
                 "25", "-o", str(tmp_path / "RS.dcm"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.endswith("invalid margins/ENI options: ctv_margin_mm: Input should be less "
                        "than or equal to 20 (got 25.0)")
    assert "AnisotropicMargin" not in err and "dictionary" not in err
