"""SUV factor on header edge cases built with pydicom.

References: hand calculations of the closed forms (SUV = C W / (D 2^(-t/T))), and for
DecayCorrection NONE a numerical integration (scipy.integrate.quad) of the decaying
activity over the frame, independent of the closed form in the code.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pydicom import Dataset
from scipy.integrate import quad

from rtplan.errors import DicomError, InputError, InvalidParameterError
from rtplan.imaging import SUVOverrides, suv_factor

F18_S = 6586.2
# SUVbw factor for 70 kg, 368.08 MBq at 10:00, reference 11:00, F-18 (hand calculation:
# 2^(-3600/6586.2) = 0.684637; 70000 g / (368.08e6 Bq * 0.684637) = 2.77778e-4 ml/g)
FACTOR_1H = 70000.0 / (368.08e6 * 2.0 ** (-3600.0 / F18_S))


def make_pt(**changes) -> Dataset:
    """One BQML / START PT slice header: 70 kg, 368.08 MBq F-18 at 10:00, scan 11:00."""
    ds = Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["NORM", "ATTN", "SCAT", "DECY", "RAN"]
    ds.SeriesDate, ds.SeriesTime = "20250101", "110000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20250101", "110000"
    ds.ActualFrameDuration, ds.FrameReferenceTime = 300000, 150000.0
    ds.PatientWeight, ds.PatientSize, ds.PatientSex = 70.0, 1.75, "M"
    ds.RescaleSlope, ds.RescaleIntercept = 1.0, 0.0
    rp = Dataset()
    rp.RadiopharmaceuticalStartTime = "100000"
    rp.RadiopharmaceuticalStartDateTime = "20250101100000"
    rp.RadionuclideTotalDose = 368.08e6
    rp.RadionuclideHalfLife = F18_S
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "C-111A1", "SRT", "^18^Fluorine")
    rp.RadionuclideCodeSequence = [code]
    ds.RadiopharmaceuticalInformationSequence = [rp]
    rp_changes = {k[3:]: v for k, v in changes.items() if k.startswith("rp_")}
    for key, value in changes.items():
        if key.startswith("rp_"):
            continue
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    for key, value in rp_changes.items():
        if value is None:
            if key in rp:
                delattr(rp, key)
        else:
            setattr(rp, key, value)
    return ds


def test_baseline_matches_hand_calculation():
    factor = suv_factor(make_pt())
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert 3600.0 * factor == pytest.approx(1.0, rel=1e-5)  # 3600 Bq/ml -> SUV 1
    assert p.elapsed_s == 3600.0
    assert p.weight_kg == 70.0 and p.normalizer == 70000.0 and p.normalizer_unit == "g"
    assert p.injection_source == "RadiopharmaceuticalStartDateTime (0018,1078)"
    assert p.heuristics == ()


def test_missing_weight_refused_naming_attribute_and_override():
    with pytest.raises(DicomError, match=r"PatientWeight \(0010,1030\) is missing.*--weight-kg"):
        suv_factor(make_pt(PatientWeight=None))
    factor = suv_factor(make_pt(PatientWeight=None), weight_kg=70.0)
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.weight_source == "override weight_kg"


def test_zero_weight_refused():
    with pytest.raises(DicomError, match=r"PatientWeight .* is '0.0'"):
        suv_factor(make_pt(PatientWeight=0.0))


def test_weight_in_grams_is_recognised():
    factor = suv_factor(make_pt(PatientWeight=70000.0))
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.weight_kg == 70.0 and "read as g" in p.weight_source


def test_dose_in_mbq_is_recognised():
    factor = suv_factor(make_pt(rp_RadionuclideTotalDose=368.08))
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.injected_dose_bq == pytest.approx(368.08e6)
    assert any("read as MBq" in h for h in p.heuristics)


def test_missing_dose_refused_and_override():
    with pytest.raises(DicomError, match=r"RadionuclideTotalDose \(0018,1074\).*injected-dose"):
        suv_factor(make_pt(rp_RadionuclideTotalDose=None))
    factor = suv_factor(make_pt(rp_RadionuclideTotalDose=None), injected_dose_mbq=368.08)
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.dose_source == "override injected_dose_mbq"


def test_implausible_dose_refused():
    with pytest.raises(DicomError, match=r"implausible"):
        suv_factor(make_pt(rp_RadionuclideTotalDose=5e12))


def test_midnight_crossing_with_time_only():
    ds = make_pt(
        SeriesDate="20250102", SeriesTime="003000", AcquisitionDate="20250102",
        AcquisitionTime="003000", rp_RadiopharmaceuticalStartDateTime=None,
        rp_RadiopharmaceuticalStartTime="233000",
    )
    factor = suv_factor(ds)
    p = factor.provenance
    assert p.injection_datetime == dt.datetime(2025, 1, 1, 23, 30)
    assert p.elapsed_s == 3600.0
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert any("midnight" in h for h in p.heuristics)


def test_time_only_same_day():
    factor = suv_factor(make_pt(rp_RadiopharmaceuticalStartDateTime=None))
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.injection_source == "RadiopharmaceuticalStartTime (0018,1072) on the scan date"


def test_missing_injection_time_refused_and_override():
    ds = make_pt(rp_RadiopharmaceuticalStartDateTime=None, rp_RadiopharmaceuticalStartTime=None)
    with pytest.raises(DicomError, match=r"RadiopharmaceuticalStartDateTime.*--injection-time"):
        suv_factor(ds)
    assert suv_factor(ds, injection_time="10:00").factor == pytest.approx(FACTOR_1H, rel=1e-9)
    f = suv_factor(ds, injection_time=dt.datetime(2025, 1, 1, 10, 0))
    p = f.provenance
    assert f == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.injection_source == "override injection_time"


def test_injection_after_scan_refused():
    with pytest.raises(DicomError, match=r"injection time .* is after the reference time"):
        suv_factor(make_pt(rp_RadiopharmaceuticalStartDateTime="20250101120000"))


def test_decay_correction_admin_uses_the_injected_dose():
    factor = suv_factor(make_pt(DecayCorrection="ADMIN"))
    p = factor.provenance
    assert factor == pytest.approx(70000.0 / 368.08e6, rel=1e-12)
    assert p.decayed_dose_bq == 368.08e6


@pytest.mark.parametrize(
    ("acq_time", "frame_s"), [("110000", 300.0), ("113000", 600.0), ("120500", 1800.0)]
)
def test_decay_correction_none_against_numerical_integration(acq_time, frame_s):
    # a uniform activity concentration c0 (Bq/ml at injection) seen by a frame starting
    # t0 after injection, lasting T, without decay correction: the stored value is the
    # time average of c0 exp(-lam t) over the frame (computed here with quad).
    lam = math.log(2) / F18_S
    c0 = 5000.0
    t0 = (dt.datetime(2025, 1, 1, int(acq_time[:2]), int(acq_time[2:4])) -
          dt.datetime(2025, 1, 1, 10, 0)).total_seconds()
    stored, _ = quad(lambda t: c0 * math.exp(-lam * t), t0, t0 + frame_s)
    stored /= frame_s
    ds = make_pt(DecayCorrection="NONE", CorrectedImage=["ATTN"], AcquisitionTime=acq_time,
                 ActualFrameDuration=int(frame_s * 1000))
    factor = suv_factor(ds)
    p = factor.provenance
    truth_suv = c0 * 70000.0 / 368.08e6  # activity at injection / dose at injection
    assert stored * factor == pytest.approx(truth_suv, rel=1e-9)
    assert p.elapsed_s == t0


def test_decay_correction_none_needs_frame_duration():
    ds = make_pt(DecayCorrection="NONE", CorrectedImage=["ATTN"], ActualFrameDuration=None)
    with pytest.raises(DicomError, match=r"ActualFrameDuration \(0018,1242\)"):
        suv_factor(ds)


def test_not_attenuation_corrected_refused():
    with pytest.raises(DicomError, match=r"not attenuation corrected.*lacks ATTN"):
        suv_factor(make_pt(CorrectedImage=["NORM", "DECY"]))


@pytest.mark.parametrize(
    ("dc", "corrected", "match"),
    [("START", ["ATTN"], "START contradicts CorrectedImage"),
     ("NONE", ["ATTN", "DECY"], "NONE contradicts CorrectedImage")],
)
def test_decay_flags_contradiction_refused(dc, corrected, match):
    with pytest.raises(DicomError, match=match):
        suv_factor(make_pt(DecayCorrection=dc, CorrectedImage=corrected))


def test_missing_decay_correction_refused():
    with pytest.raises(DicomError, match=r"DecayCorrection \(0054,1102\) is missing"):
        suv_factor(make_pt(DecayCorrection=None))


@pytest.mark.parametrize("units", ["PROPCPS", "1CM", "CPS"])
def test_unusable_units_refused(units):
    with pytest.raises(DicomError, match=rf"Units \(0054,1001\) = '{units}' cannot"):
        suv_factor(make_pt(Units=units))


def test_counts_without_philips_factors_refused():
    with pytest.raises(DicomError, match=r"CNTS without a non-zero Philips"):
        suv_factor(make_pt(Units="CNTS"))


def test_nonzero_intercept_refused():
    with pytest.raises(DicomError, match=r"RescaleIntercept \(0028,1052\) = 5"):
        suv_factor(make_pt(RescaleIntercept=5))


def test_series_time_after_acquisition_uses_ge_private_time():
    # SeriesTime 12:00 after AcquisitionTime 11:00 (a processed series); the GE private
    # scan datetime (0009,100D) under creator GEMS_PETD_01 says 11:00.
    ds = make_pt(SeriesTime="120000")
    ds.add_new((0x0009, 0x0010), "LO", "GEMS_PETD_01")
    ds.add_new((0x0009, 0x100D), "DT", "20250101110000")
    factor = suv_factor(ds)
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert "GE private" in p.reference_time_rule
    # another vendor's private block at the same tag is not trusted: back-computed instead
    ds[(0x0009, 0x0010)].value = "OTHER_VENDOR"
    ds.ActualFrameDuration = None
    del ds.ActualFrameDuration
    with pytest.raises(DicomError, match=r"cannot find the decay-correction reference time"):
        suv_factor(ds)


def test_series_time_after_acquisition_back_computes():
    # frame 11:00 + 600 s, FrameReferenceTime at the count-rate centre: reference 11:00
    lam = math.log(2) / F18_S
    t_ave = math.log(lam * 600 / (1 - math.exp(-lam * 600))) / lam
    ds = make_pt(SeriesTime="120000", ActualFrameDuration=600000,
                 FrameReferenceTime=t_ave * 1000)
    factor = suv_factor(ds)
    p = factor.provenance
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)
    assert p.reference_time_rule.startswith("back-computed")
    # forced back-computation ignores a (valid) SeriesTime
    p = suv_factor(make_pt(), reference_time_rule="backcompute").provenance
    # FrameReferenceTime 150 s, frame 300 s: Tave = T/2 - lam T^2/24 + O(lam^3 T^4)
    # (series of ln(x / (1 - exp(-x))) = x/2 - x^2/24 + x^4/2880) = 149.6053 s
    expected_s = 300 / 2 - lam * 300**2 / 24 - 150.0
    assert (p.reference_datetime - dt.datetime(2025, 1, 1, 11)).total_seconds() == (
        pytest.approx(expected_s, abs=1e-3))


def test_half_life_fallback_from_nuclide_code():
    ds = make_pt(rp_RadionuclideHalfLife=None)
    factor = suv_factor(ds)
    p = factor.provenance
    assert p.half_life_source.startswith("nuclide table (F-18")
    assert factor == pytest.approx(FACTOR_1H, rel=1e-9)  # table holds 6586.2 s too


def test_half_life_fallback_from_radiopharmaceutical_text():
    ds = make_pt(rp_RadionuclideHalfLife=None, rp_RadionuclideCodeSequence=None,
                 rp_Radiopharmaceutical="Ga68-PSMA-11")
    p = suv_factor(ds).provenance
    assert p.half_life_s == pytest.approx(67.71 * 60)  # Ga-68, 67.71 min (ENSDF)
    assert "Ga-68" in p.half_life_source


def test_half_life_missing_everywhere_refused():
    ds = make_pt(rp_RadionuclideHalfLife=None, rp_RadionuclideCodeSequence=None)
    with pytest.raises(DicomError, match=r"RadionuclideHalfLife \(0018,1075\).*half_life_s"):
        suv_factor(ds)


def test_half_life_contradicting_nuclide_refused():
    with pytest.raises(DicomError, match=r"contradicts the nuclide F-18"):
        suv_factor(make_pt(rp_RadionuclideHalfLife=4057.7))


def test_lbm_bsa_ibw_normalizations_against_hand_values():
    # male, 70 kg, 175 cm. LBM James 128: 1.10*70 - 128*(70/175)^2 = 56.52 kg.
    # Du Bois BSA: 0.007184 * 175^0.725 * 70^0.425 = 1.8481 m^2.
    # IBW male: 48 + 1.06 * (175 - 152) = 72.38 kg.
    f_bw = suv_factor(make_pt()).factor
    assert suv_factor(make_pt(), "lbmjames128").factor == pytest.approx(
        f_bw * 56.52 / 70.0, rel=1e-9)
    assert suv_factor(make_pt(), "lbm").factor == pytest.approx(
        f_bw * (77.0 - 120 * 0.16) / 70.0, rel=1e-9)
    assert suv_factor(make_pt(), "ibw").factor == pytest.approx(f_bw * 72.38 / 70.0, rel=1e-9)
    assert suv_factor(make_pt(), "bsa").factor == pytest.approx(
        f_bw * 18481.0 / 70000.0, rel=1e-4)
    with pytest.raises(DicomError, match=r"PatientSize \(0010,1020\) is missing.*height_cm"):
        suv_factor(make_pt(PatientSize=None), "bsa")
    assert suv_factor(make_pt(PatientSize=None), "bsa", height_cm=175).factor == (
        pytest.approx(f_bw * 18481.0 / 70000.0, rel=1e-4))
    with pytest.raises(DicomError, match=r"PatientSex \(0010,0040\)"):
        suv_factor(make_pt(PatientSex=None), "ibw")


def test_gml_between_types_and_contradictions():
    assert suv_factor(make_pt(Units="GML", SUVType="BW")).factor == 1.0
    # GML SUVlbm (James 128, male) -> SUVbw multiplies by W / LBM = 70 / 56.52
    f = suv_factor(make_pt(Units="GML", SUVType="LBMJAMES128"))
    p = f.provenance
    assert f == pytest.approx(70.0 / 56.52, rel=1e-9)
    assert p.suv_type_stored == "LBMJAMES128"
    p = suv_factor(make_pt(Units="GML")).provenance
    assert any("taken as BW" in h for h in p.heuristics)
    with pytest.raises(DicomError, match=r"GML contradicts SUVType"):
        suv_factor(make_pt(Units="GML", SUVType="BSA"))
    with pytest.raises(DicomError, match=r"CM2ML .* contradicts SUVType"):
        suv_factor(make_pt(Units="CM2ML", SUVType="BW"))


def test_philips_activity_factor_follows_the_bqml_path():
    ds = make_pt(Units="CNTS", Manufacturer="Philips Medical Systems")
    ds.add_new((0x7053, 0x1009), "DS", "0.5")
    factor = suv_factor(ds)
    p = factor.provenance
    assert factor == pytest.approx(0.5 * FACTOR_1H, rel=1e-9)
    assert "7053,1009" in p.rule


def test_overrides_are_validated():
    with pytest.raises(InputError, match=r"weight_kg"):
        suv_factor(make_pt(), weight_kg=-3)
    with pytest.raises(InputError, match=r"injection_time"):
        suv_factor(make_pt(), injection_time="yesterday")
    with pytest.raises(InvalidParameterError, match=r"unknown SUV normalization 'lean'"):
        suv_factor(make_pt(), "lean")
    with pytest.raises(InputError, match=r"weight: Extra inputs are not permitted"):
        suv_factor(make_pt(), weight=70)
    ov = SUVOverrides(weight_kg=80.0)
    assert suv_factor(make_pt(), overrides=ov).factor == pytest.approx(
        FACTOR_1H * 80 / 70, rel=1e-9)
