"""The calculator's command-line contract: keys, exit codes, messages."""

import json

import pytest

from rtplan.cli.main import main

EQD2_KEYS = {
    "schedule", "total_dose_gy", "fractions", "dose_per_fraction_gy", "alpha_beta_gy",
    "model", "bed_gy", "eqd2_gy", "fraction_category", "warnings",
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eqd2_json_contract(capsys):
    code, out, _ = run(capsys, "eqd2", "27/3", "5x7.5", "--alpha-beta", "1.5",
                       "--alpha-beta", "10", "--json")
    assert code == 0
    data = json.loads(out)
    assert [(d["schedule"], d["alpha_beta_gy"]) for d in data] == [
        ("27/3", 1.5), ("27/3", 10.0), ("5x7.5", 1.5), ("5x7.5", 10.0)]
    for d in data:
        assert set(d) == EQD2_KEYS
        assert d["model"] == "lq" and d["fraction_category"] == "<10"
        assert isinstance(d["warnings"], list)
    # hand: 27/3 at a/b 1.5 -> BED 27*(1+9/1.5) = 189, EQD2 189/(1+2/1.5) = 81
    assert data[0]["bed_gy"] == pytest.approx(189.0) and data[0]["eqd2_gy"] == pytest.approx(81.0)


def test_eqd2_table(capsys):
    code, out, _ = run(capsys, "eqd2", "57.2/34", "--alpha-beta", "1.5")
    assert code == 0 and "EQD2 (Gy)" in out and ">24" in out and "1.682" in out


def test_eqd2_models(capsys):
    code, out, _ = run(capsys, "eqd2", "1x20", "--alpha-beta", "3", "--model", "lql",
                       "--transition-dose-gy", "6", "--json")
    d = json.loads(out)[0]
    assert code == 0 and d["model"] == "lql" and d["bed_gy"] == pytest.approx(88.0)
    assert d["warnings"] == []
    code, out, _ = run(capsys, "eqd2", "1x20", "--model", "usc", "--usc-alpha", "0.33",
                       "--usc-d0-gy", "1.25", "--usc-dq-gy", "1.8", "--json")
    d = json.loads(out)[0]
    # USC above D_T: BED = (d - Dq) / (alpha D0) = 18.2 / 0.4125
    assert code == 0 and d["bed_gy"] == pytest.approx(18.2 / 0.4125)
    code, out, _ = run(capsys, "eqd2", "1x20", "--alpha-beta", "3", "--json")
    assert len(json.loads(out)[0]["warnings"]) == 1


@pytest.mark.parametrize(
    "argv, match",
    [
        (["eqd2", "27/0", "--alpha-beta", "1.5"], "fractions must be >= 1"),
        (["eqd2", "27/3", "--alpha-beta", "0"], "alpha/beta must be a positive"),
        (["eqd2", "27/3", "--alpha-beta", "-1.5"], "alpha/beta must be a positive"),
        (["eqd2", "twenty/3", "--alpha-beta", "1.5"], "cannot parse schedule"),
        (["eqd2", "-27/3", "--alpha-beta", "1.5"], "negative"),
        (["eqd2", "27/3"], "give --alpha-beta"),
        (["eqd2", "27/3", "--alpha-beta", "3", "--model", "lql"], "transition dose"),
        (["equivalent", "--fractions", "3", "--alpha-beta", "1.5"], "reference SCHEDULE"),
        (["equivalent", "37.5/5", "--alpha-beta", "1.5"], "exactly one of --fractions"),
        (["equivalent", "37.5/5", "--fractions", "0", "--alpha-beta", "1.5"], ">= 1"),
        (["compare", "nonsense-plan"], "neither a preset"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, match):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert match in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eqd2", "27/3", "--alpha-beta", "x"])
    assert exc.value.code == 2
    assert "expected a number" in capsys.readouterr().err


def test_equivalent_schedule_json(capsys):
    code, out, _ = run(capsys, "equivalent", "37.5/5", "--fractions", "3",
                       "--alpha-beta", "1.5", "--json")
    d = json.loads(out)
    assert code == 0
    assert {"fractions", "dose_per_fraction_gy", "total_dose_gy", "eqd2_gy", "bed_gy",
            "reference"} <= set(d)
    assert set(d["reference"]) == EQD2_KEYS
    # hand: 3 d (1 + d/1.5) = 225 -> d = (-1.5 + sqrt(2.25 + 450)) / 2
    assert d["dose_per_fraction_gy"] == pytest.approx((-1.5 + (2.25 + 450) ** 0.5) / 2)
    assert d["eqd2_gy"] == pytest.approx(d["reference"]["eqd2_gy"])


def test_equivalent_target_eqd2(capsys):
    code, out, _ = run(capsys, "equivalent", "--target-eqd2", "60", "--fractions", "30",
                       "--alpha-beta", "3", "--json")
    d = json.loads(out)
    assert code == 0 and d["dose_per_fraction_gy"] == pytest.approx(2.0)
    assert "reference" not in d


def test_equivalent_solve_fractions(capsys):
    code, out, _ = run(capsys, "equivalent", "--target-eqd2", "78", "--dose-per-fraction",
                       "3", "--alpha-beta", "1.5", "--json")
    d = json.loads(out)
    # hand: target BED 78 (1 + 2/1.5) = 182 Gy; one 3 Gy fraction: 3 (1 + 3/1.5) = 9 Gy
    assert code == 0 and d["fractions_exact"] == pytest.approx(182 / 9)
    # `fractions` is a deliverable schedule: the smallest whole number reaching 182 Gy
    assert d["fractions"] == 21 and isinstance(d["fractions"], int)
    assert d["total_dose_gy"] == pytest.approx(63.0)
    assert d["bed_gy"] == pytest.approx(21 * 9.0)
    assert d["eqd2_gy"] == pytest.approx(63 * (3 + 1.5) / (2 + 1.5))  # 81 Gy
    assert d["target_eqd2_gy"] == pytest.approx(78.0)
    assert d["target_bed_gy"] == pytest.approx(182.0)
    assert [o["fractions"] for o in d["options"]] == [20, 21]
    assert d["warnings"] == []
    code, out, _ = run(capsys, "equivalent", "--target-eqd2", "78", "--dose-per-fraction",
                       "3", "--alpha-beta", "1.5")
    assert code == 0 and "20.222" in out and "21 x 3 Gy = 63 Gy" in out


def test_equivalent_solve_fractions_whole_exact_solution(capsys):
    # hand: 60 Gy EQD2 at a/b 3 is BED 100 Gy; 2 Gy fractions give 10/3 Gy each: 30 fx
    code, out, _ = run(capsys, "equivalent", "--target-eqd2", "60", "--dose-per-fraction",
                       "2", "--alpha-beta", "3", "--json")
    d = json.loads(out)
    assert code == 0 and d["fractions"] == 30 and d["eqd2_gy"] == pytest.approx(60.0)
    assert d["fractions_exact"] == pytest.approx(30.0, abs=1e-9)


USC_ARGS = ("--model", "usc", "--usc-alpha", "0.33", "--usc-d0-gy", "1.25", "--usc-dq-gy", "1.8")


def usc_dose_per_fraction_for_eqd2(eqd2_gy, n):
    """Park 2008 USC solved by hand: a/b = 4 a D0 Dq / (1 - a D0)^2, D_T = 2 Dq / (1 - a D0).

    EQD2 -> BED through 2 Gy fractions (below D_T: LQ); above D_T the one-fraction BED
    is (d - Dq) / (a D0), so d = BED/n * a D0 + Dq.
    """
    a, d0, dq = 0.33, 1.25, 1.8
    ab = 4 * a * d0 * dq / (1 - a * d0) ** 2
    dt = 2 * dq / (1 - a * d0)
    per_fx = eqd2_gy * (1 + 2 / ab) / n
    assert per_fx > dt * (1 + dt / ab)  # on the linear part
    return per_fx * a * d0 + dq, ab


def test_equivalent_usc_target_without_reference(capsys):
    d_ref, ab = usc_dose_per_fraction_for_eqd2(60.0, 5)
    assert d_ref == pytest.approx(7.9005, abs=5e-5)  # hand value quoted in the audit
    code, out, err = run(capsys, "equivalent", "--target-eqd2", "60", "--fractions", "5",
                         *USC_ARGS, "--json")
    d = json.loads(out)
    assert code == 0, err
    assert d["alpha_beta_gy"] == pytest.approx(ab) and d["alpha_beta_gy"] == pytest.approx(
        8.60, abs=0.01)
    assert d["dose_per_fraction_gy"] == pytest.approx(d_ref, rel=1e-12)
    assert d["total_dose_gy"] == pytest.approx(5 * d_ref, rel=1e-12)
    assert d["eqd2_gy"] == pytest.approx(60.0) and d["model"] == "usc"
    assert d["warnings"] == []  # not an LQ extrapolation
    code, out, err = run(capsys, "equivalent", "--target-eqd2", "60", "--fractions", "5",
                         *USC_ARGS)
    assert code == 0 and "Traceback" not in err
    assert "alpha/beta 8.6048 Gy" in out and "5 x 7.9005 Gy" in out


@pytest.mark.parametrize(
    ("argv", "dose_per_fraction_gy", "limit"),
    [
        # 37.5/5 at a/b 1.5: BED 225 = d (1 + d/1.5) -> d = 0.75 (sqrt(601) - 1) = 17.64
        (["37.5/5", "--fractions", "1", "--alpha-beta", "1.5"],
         0.75 * (601 ** 0.5 - 1), "above 10 Gy"),
        # at a/b 3: BED 131.25 = d (1 + d/3) -> d = 1.5 (sqrt(176) - 1) = 18.40
        (["37.5/5", "--fractions", "1", "--alpha-beta", "3"],
         1.5 * (176 ** 0.5 - 1), "above 18 Gy"),
        (["--target-eqd2", "100", "--dose-per-fraction", "12", "--alpha-beta", "1.5"],
         12.0, "above 10 Gy"),
        (["--target-eqd2", "100", "--dose-per-fraction", "20", "--alpha-beta", "1.5"],
         20.0, "above 18 Gy"),
    ],
)
def test_equivalent_warns_for_the_solved_schedule(capsys, argv, dose_per_fraction_gy, limit):
    code, out, _ = run(capsys, "equivalent", *argv, "--json")
    d = json.loads(out)
    assert code == 0
    assert d["dose_per_fraction_gy"] == pytest.approx(dose_per_fraction_gy, rel=1e-12)
    assert len(d["warnings"]) == 1 and limit in d["warnings"][0]
    if "reference" in d:
        assert d["reference"]["warnings"] == []  # 7.5 Gy per fraction: no warning
    code, out, _ = run(capsys, "equivalent", *argv)
    assert code == 0 and "warning (solved schedule)" in out and limit in out


def test_compare_default_four_presets(capsys):
    code, out, _ = run(capsys, "compare", "--json")
    d = json.loads(out)
    assert code == 0
    assert [p["plan"] for p in d["plans"]] == ["sbrt-27-3", "sbrt-37.5-5",
                                               "eni-51-34-sib-61.2", "eni-51-34-sib-57.2"]
    assert d["alpha_beta_gy"] == [1.5, 3.0, 10.0]
    levels = {p["plan"]: [lv["level"] for lv in p["levels"]] for p in d["plans"]}
    assert levels["sbrt-27-3"] == ["lesion"]
    assert levels["eni-51-34-sib-61.2"] == ["lesion", "elective_nodes"]
    rank = {r["alpha_beta_gy"]: r["plans"] for r in d["lesion_ranking"]}
    assert rank[1.5][0] == "sbrt-37.5-5" and rank[10.0][0] == "eni-51-34-sib-61.2"
    code, out, _ = run(capsys, "compare")
    assert code == 0 and "elective_nodes" in out and "ranking" in out


def test_compare_plan_file_and_schedule(capsys, tmp_path):
    plan = {"name": "mine", "fractions": 25,
            "levels": [{"name": "lesion", "total_dose_gy": 60},
                       {"name": "elective_nodes", "total_dose_gy": 45}]}
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan))
    before = p.read_bytes()
    code, out, _ = run(capsys, "compare", str(p), "30/5", "--alpha-beta", "3", "--json")
    d = json.loads(out)
    assert code == 0 and [x["plan"] for x in d["plans"]] == ["mine", "30/5"]
    assert d["plans"][0]["levels"][0]["results"][0]["eqd2_gy"] == pytest.approx(60 * 5.4 / 5)
    assert p.read_bytes() == before
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "fractions": 0, "levels": []}))
    code, _, err = run(capsys, "compare", str(bad))
    assert code == 2 and "fractions" in err


def test_presets(capsys):
    code, out, _ = run(capsys, "presets", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["plans"]) == 4
    assert all(t["citation"] for t in d["tissues"])
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "eni-51-34-sib-61.2" in out


@pytest.mark.parametrize("cmd", ["eqd2", "equivalent", "compare", "presets"])
def test_help_has_units_and_example(capsys, cmd):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "example:" in out and "rtplan " + cmd in out
    if cmd != "presets":
        assert "Gy" in out
