"""Issue 11, values: numbers that would give a wrong result are refused (PET seeds,
radiobiology, cohort files, PSA band, DVH bins) and text files decode or fail clearly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rtplan._shared.jsonio import decode_text, load_json, loads_json
from rtplan.dose.dvh import MAX_DVH_BINS, check_bin_width, dvh_from_samples
from rtplan.errors import InputError, InvalidParameterError
from rtplan.imaging import Grid
from rtplan.imaging.pet_lesions import PETLesion, measure_pet_lesions, segment_seed
from rtplan.outcomes import load_cohort, psa_response, psa_response_summary
from rtplan.radiobiology import bed, eqd2, fractions_for_target, parse_schedule
from rtplan.radiobiology.solvers import dose_per_fraction_for_target

# ----------------------------------------------------------------------- PET seeds
PET_GRID = Grid((20, 20, 20), origin_mm=(0, 0, 0), spacing_mm=(4, 4, 4))


def _pet():
    """Background 1 SUV, a 3 x 3 x 3 voxel lesion of 8 SUV (27 voxels, 1.728 cc)."""
    suv = np.ones(PET_GRID.shape)
    suv[9:12, 9:12, 9:12] = 8.0
    return suv


CENTRE = (40.0, 40.0, 40.0)


@pytest.mark.parametrize("radius", [0.5, 1.0, 3.9])
def test_pet_radius_smaller_than_a_voxel_is_refused(radius):
    # was: no voxel centre inside the radius -> label 0 -> the whole search box
    # selected (46.65 cc on the demo PET for a 2 cc lesion)
    with pytest.raises(InvalidParameterError, match="smaller than the PET voxel"):
        segment_seed(_pet(), PET_GRID, CENTRE, method="percent_max", level=0.5,
                     max_radius_mm=radius)


@pytest.mark.parametrize("radius", [4.0, 4.5, 25.0])
def test_pet_small_radius_never_exceeds_the_ball(radius):
    # analytic: every selected voxel centre lies within the radius, or is the seed voxel
    seg = segment_seed(_pet(), PET_GRID, CENTRE, method="percent_max", level=0.5,
                       max_radius_mm=radius)
    pts = PET_GRID.index_to_world(np.argwhere(seg.mask).astype(float))
    assert np.linalg.norm(pts - CENTRE, axis=1).max() <= radius + 1e-9
    assert seg.mask.sum() <= 27


@pytest.mark.parametrize("point", [(math.nan, 0, 0), (0, math.inf, 0), (1, 2)])
def test_pet_bad_seed_point(point):
    with pytest.raises(InvalidParameterError, match="point_mm"):
        segment_seed(_pet(), PET_GRID, point)


@pytest.mark.parametrize("method", ["percent_max", "background_adaptive"])
def test_pet_seed_in_flat_background_is_refused(method):
    with pytest.raises(InvalidParameterError, match="not in a hot lesion"):
        segment_seed(_pet(), PET_GRID, (12.0, 12.0, 12.0), method=method, level=0.4)


def test_pet_low_contrast_lesion_warns():
    suv = np.ones(PET_GRID.shape)
    suv[9:12, 9:12, 9:12] = 1.3  # 1.3 x background: doubtful
    seg = segment_seed(suv, PET_GRID, CENTRE, method="percent_max", level=0.9)
    assert seg.mask.sum() == 27  # threshold 1.17 SUV: exactly the 27 lesion voxels
    assert any("doubtful" in w for w in seg.warnings)


def test_pet_same_seed_ten_times_counts_one_metastasis():
    src = {"kind": "pet_seed", "point_mm": list(CENTRE), "method": "percent_max",
           "level": 0.5}
    lesions = [PETLesion(id=f"L{i}", site="bone", source=src) for i in range(10)]
    rep = measure_pet_lesions(_pet(), PET_GRID, lesions)
    assert rep.oligometastatic.n_metastases == 1
    assert rep.oligometastatic.oligometastatic
    assert not any("same hot spot" in w for w in rep.lesions[0].warnings)
    assert all(any("same hot spot as lesion 'L0'" in w for w in r.warnings)
               for r in rep.lesions[1:])


def test_pet_two_real_lesions_count_two():
    suv = _pet()
    suv[2:5, 2:5, 2:5] = 8.0
    src = {"kind": "pet_seed", "method": "percent_max", "level": 0.5}
    lesions = [PETLesion(id="A", site="bone", source={**src, "point_mm": list(CENTRE)}),
               PETLesion(id="B", site="bone", source={**src, "point_mm": [12, 12, 12]})]
    rep = measure_pet_lesions(suv, PET_GRID, lesions)
    assert rep.oligometastatic.n_metastases == 2


# -------------------------------------------------------------------- radiobiology
@pytest.mark.parametrize("ab", [1e-320, 1e-5, 0.0, -1.0, math.nan, math.inf, 1e308])
def test_alpha_beta_outside_range_refused(ab):
    # was: 1e-320 -> BED inf, EQD2 nan
    with pytest.raises(InvalidParameterError, match="alpha/beta must be a positive"):
        eqd2(37.5, 5, ab)
    with pytest.raises(InvalidParameterError, match="alpha/beta"):
        bed(37.5, 5, ab)


def test_alpha_beta_limits_still_give_finite_lq():
    # hand calculation: BED = D (1 + d/ab); D = 37.5, d = 7.5
    assert bed(37.5, 5, 0.01) == pytest.approx(37.5 * (1 + 7.5 / 0.01))
    assert bed(37.5, 5, 1000.0) == pytest.approx(37.5 * (1 + 7.5 / 1000.0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dose_per_fraction_gy": 1e-300, "target_eqd2_gy": 1e308}, "target dose"),
        ({"dose_per_fraction_gy": 1e-300, "target_eqd2_gy": 74.0}, "more than 10000"),
        ({"dose_per_fraction_gy": 1e308, "target_eqd2_gy": 74.0}, "dose per fraction"),
        ({"dose_per_fraction_gy": math.nan, "target_eqd2_gy": 74.0}, "dose per fraction"),
        ({"dose_per_fraction_gy": 2.0, "target_eqd2_gy": math.inf}, "target dose"),
    ],
)
def test_fractions_for_target_overflow_refused(kwargs, match):
    # was: OverflowError (math.ceil of inf)
    with pytest.raises(InvalidParameterError, match=match):
        fractions_for_target(alpha_beta_gy=1.5, **kwargs)


@pytest.mark.parametrize("digits", [5000, 20, -30, 0])
def test_huge_fraction_counts_refused(digits):
    n = 20000 if digits == 0 else (10 ** abs(digits)) * (1 if digits > 0 else -1)
    # was: "fractions must be a number, got 9999..." (thousands of digits)
    with pytest.raises(InvalidParameterError, match=r"at most 10000|>= 1") as exc:
        eqd2(37.5, n, 1.5)
    assert len(str(exc.value)) < 200
    with pytest.raises(InvalidParameterError, match="fractions"):
        dose_per_fraction_for_target(n, 1.5, target_eqd2_gy=74)


@pytest.mark.parametrize("text", ["9" * 5000 + "/5", "37.5/" + "9" * 5000, "5x" + "9" * 400,
                                  "1" * 400 + "/5", "37.5/20000"],
                         ids=["total-5000-digits", "n-5000-digits", "dose-400-digits",
                              "total-400-digits", "n-20000"])
def test_schedule_with_huge_numbers_refused(text):
    with pytest.raises(InputError) as exc:
        parse_schedule(text)
    assert len(str(exc.value)) < 300


def test_total_dose_above_limit_refused():
    with pytest.raises(InvalidParameterError, match="at most 100000 Gy"):
        eqd2([10.0, 1e300], 5, 3.0)


# ------------------------------------------------------------------------- outcomes
HEADER = "patient_id,fractions,total_dose_gy,os_months,os_event\n"


def _cohort(tmp_path, text: str | bytes, name="cohort.csv"):
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    return p


@pytest.mark.parametrize("months", ["1e308", "inf", "nan", "1201", "-1"])
def test_cohort_months_out_of_range_refused(tmp_path, months):
    p = _cohort(tmp_path, HEADER + f"P1,5,37.5,{months},1\n")
    if months == "nan":  # NaN means missing in CSV: the event then has no time
        with pytest.raises(InputError):
            load_cohort(p)
        return
    with pytest.raises(InputError, match="os_months"):
        load_cohort(p)


def test_cohort_months_in_range_accepted(tmp_path):
    c = load_cohort(_cohort(tmp_path, HEADER + "P1,5,37.5,1200,1\n"))
    assert c.patients[0].os_months == 1200.0


def test_cohort_duplicated_header_column_refused(tmp_path):
    # was: the second column silently won
    p = _cohort(tmp_path, "patient_id,fractions,total_dose_gy,os_months,os_event,os_months\n"
                          "P1,5,37.5,12,1,48\n")
    with pytest.raises(InputError, match=r"\['os_months'\] appear more than once"):
        load_cohort(p)


@pytest.mark.parametrize(
    "encoding", ["utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom", "utf-32"])
def test_cohort_unicode_encodings_with_bom_accepted(tmp_path, encoding):
    text = HEADER + "Müller-1,5,37.5,12,1\n"
    if encoding.endswith("-bom"):
        data = "\ufeff".encode(encoding[:-4]) + text.encode(encoding[:-4])
    else:
        data = text.encode(encoding)
    c = load_cohort(_cohort(tmp_path, data))
    assert c.patients[0].patient_id == "Müller-1"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_cohort_latin1_refused_with_a_clear_message(tmp_path, encoding):
    p = _cohort(tmp_path, (HEADER + "Müller-1,5,37.5,12,1\n").encode(encoding))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xfc at offset \d+\).*iconv"):
        load_cohort(p)


def test_cohort_utf16_without_bom_refused_clearly(tmp_path):
    p = _cohort(tmp_path, (HEADER + "P1,5,37.5,12,1\n").encode("utf-16-le"))
    with pytest.raises(InputError, match=r"NUL characters|not UTF-8"):
        load_cohort(p)


def test_cohort_json_huge_integer_and_depth(tmp_path):
    p = _cohort(tmp_path, '[{"patient_id": "P1", "fractions": ' + "9" * 5000 + "}]",
                name="c.json")
    with pytest.raises(InputError, match="5000 digits"):
        load_cohort(p)
    p = _cohort(tmp_path, "[" * 200_000 + "]" * 200_000, name="deep.json")
    with pytest.raises(InputError, match="nested 200000 levels deep"):
        load_cohort(p)


@pytest.mark.parametrize("band", [math.nan, math.inf, -1.0, 101.0])
def test_psa_band_refused(band):
    with pytest.raises(InvalidParameterError, match="band_percent"):
        psa_response(2.0, 1.0, band_percent=band)
    with pytest.raises(InvalidParameterError, match="band_percent"):
        psa_response_summary([2.0], [1.0], band_percent=band)


# -------------------------------------------------------------------- JSON loader
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 200_000 + "]" * 200_000, "nested 200000 levels deep"),
        ('{"a": ' * 65 + "1" + "}" * 65, "nested 65 levels deep"),
        ('{"x": NaN}', "'NaN' is not a number"),
        ('{"x": -Infinity}', "'-Infinity' is not a number"),
        ('{"x": 1e999}', "overflows to infinity"),
        ('{"x": ' + "1" * 4301 + "}", "4301 digits"),
        ('{"x": ' + "1" * 101 + "}", "101 digits"),
        ('{"x": 1', "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_loads_json_refusals(text, match):
    with pytest.raises(InputError, match=match):
        loads_json(text, "plan")


def test_loads_json_strings_with_brackets_are_not_depth():
    assert loads_json('{"a": "[[[[[[[[" }', "x", max_depth=2) == {"a": "[[[[[[[["}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le",
                                      "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_load_json_encodings(tmp_path, encoding):
    p = tmp_path / "x.json"
    p.write_bytes(json.dumps({"name": "Müller", "n": [1, 2.5]}).encode(encoding))
    assert load_json(p, "file") == {"name": "Müller", "n": [1, 2.5]}


def test_load_json_size_limit(tmp_path):
    p = tmp_path / "big.json"
    p.write_text("[" + "0," * 1000 + "0]")
    with pytest.raises(InputError, match="MiB rtplan reads"):
        load_json(p, "file", max_bytes=1000)


def test_decode_text_binary_refused():
    with pytest.raises(InputError, match="NUL characters"):
        decode_text(b"id\x00\x01", "file")


# -------------------------------------------------------------------------- DVH
def test_dvh_bin_count_refused_up_front():
    # was: --bin-width-gy 1e-9 allocated 24 GB
    with pytest.raises(InvalidParameterError, match="more than 1,000,000"):
        check_bin_width(1e-9, 60.0)
    dvh = dvh_from_samples(np.array([0.0, 30.0, 60.0]), np.ones(3), name="x")
    with pytest.raises(InvalidParameterError, match="give a bin width of at least"):
        dvh.cumulative(1e-9)
    assert check_bin_width(60.0 / MAX_DVH_BINS, 60.0) == 60.0 / MAX_DVH_BINS
    edges, _ = dvh.cumulative(1.0)
    assert edges[-1] == 61.0  # analytic: 0..61 Gy in 1 Gy steps covers the 60 Gy max


@pytest.mark.parametrize("width", [0.0, -1.0, math.nan, math.inf])
def test_dvh_bad_bin_width(width):
    with pytest.raises(InvalidParameterError, match="bin width"):
        check_bin_width(width, 60.0)


@pytest.mark.parametrize("column", ["fractions", "total_dose_gy", "os_months"])
def test_cohort_csv_5000_digit_number_refused_in_one_short_line(tmp_path, column):
    values = {"fractions": "5", "total_dose_gy": "37.5", "os_months": "12"}
    values[column] = "9" * 5000
    p = _cohort(tmp_path, HEADER + f"P1,{values['fractions']},{values['total_dose_gy']},"
                f"{values['os_months']},1\n")
    with pytest.raises(InputError, match=column) as exc:
        load_cohort(p)
    assert len(str(exc.value)) < 400 and "\n" not in str(exc.value)


@pytest.mark.parametrize(("threshold", "min_cc"),
                         [(-1.0, 0.0), (0.0, 0.0), (math.nan, 0.0), (math.inf, 0.0),
                          (3.0, math.nan), (3.0, -1.0)])
def test_pet_candidate_threshold_refused(threshold, min_cc):
    # was: --candidates -1 made the whole volume one candidate; nan found nothing
    from rtplan.imaging.pet_lesions import detect_candidates

    with pytest.raises(InvalidParameterError, match="threshold_suv must be a finite SUV"):
        detect_candidates(_pet(), PET_GRID, threshold_suv=threshold, min_volume_cc=min_cc)
