"""Body-size normalizers for SUV: lean body mass, ideal body weight, body surface area.

Formulas as listed in the SUV computation manual (Vácha et al. 2026, section
"Units = GML", after Sugawara et al. 1999), W in kg and H in cm. For PatientSex
``O`` (other) the mean of the male and female values is used, as the manual suggests.
"""

from __future__ import annotations

from typing import Literal

from rtplan.errors import InvalidParameterError

__all__ = ["body_surface_area_m2", "ideal_body_weight_kg", "lean_body_mass_kg"]

Sex = Literal["M", "F", "O"]
LBMFormula = Literal["james128", "morgan120", "janmahasatian"]


def _check(weight_kg: float | None, height_cm: float) -> None:
    if weight_kg is not None and not weight_kg > 0:
        raise InvalidParameterError(f"weight must be > 0 kg, got {weight_kg}")
    if not height_cm > 0:
        raise InvalidParameterError(f"height must be > 0 cm, got {height_cm}")


def _by_sex(sex: str, male: float, female: float) -> float:
    s = str(sex).upper()
    if s == "M":
        return male
    if s == "F":
        return female
    if s == "O":
        return 0.5 * (male + female)
    raise InvalidParameterError(
        f"sex must be 'M', 'F' or 'O' (PatientSex (0010,0040)), got {sex!r}"
    )


def lean_body_mass_kg(
    weight_kg: float, height_cm: float, sex: str, formula: LBMFormula = "james128"
) -> float:
    """Lean body mass (kg).

    Parameters
    ----------
    weight_kg
        Body weight W in kg (PatientWeight (0010,1030)).
    height_cm
        Height H in cm (PatientSize (0010,1020) is in m: multiply by 100).
    sex
        ``"M"``, ``"F"`` or ``"O"`` (mean of the two).
    formula
        ``"james128"`` (DICOM SUVType ``LBMJAMES128``), ``"morgan120"`` (SUVType ``LBM``)
        or ``"janmahasatian"`` (SUVType ``LBMJANMA``).

    Returns
    -------
    float
        Lean body mass in kg.

    Notes
    -----
    James/Morgan: male ``1.10 W - c (W/H)^2`` with c = 128 (James) or 120 (Morgan);
    female ``1.07 W - 148 (W/H)^2``. Janmahasatian: ``9270 W / (6680 + 216 BMI)``
    (male), ``9270 W / (8780 + 244 BMI)`` (female), BMI = W / (H/100)^2.

    Examples
    --------
    >>> round(lean_body_mass_kg(70.0, 175.0, "M"), 2)  # 77 - 128 * 0.16
    56.52
    >>> round(lean_body_mass_kg(70.0, 175.0, "F", "janmahasatian"), 2)  # BMI 22.857
    45.2
    """
    _check(weight_kg, height_cm)
    w, h = float(weight_kg), float(height_cm)
    if formula in ("james128", "morgan120"):
        c = 128.0 if formula == "james128" else 120.0
        male = 1.10 * w - c * (w / h) ** 2
        female = 1.07 * w - 148.0 * (w / h) ** 2
    elif formula == "janmahasatian":
        bmi = w / (h / 100.0) ** 2
        male = 9270.0 * w / (6680.0 + 216.0 * bmi)
        female = 9270.0 * w / (8780.0 + 244.0 * bmi)
    else:
        raise InvalidParameterError(
            f"unknown LBM formula {formula!r}: use 'james128', 'morgan120' or 'janmahasatian'"
        )
    lbm = _by_sex(sex, male, female)
    if not lbm > 0:
        raise InvalidParameterError(
            f"lean body mass is not positive ({lbm:.1f} kg) for W={w} kg, H={h} cm: "
            "check PatientWeight and PatientSize"
        )
    return lbm


def ideal_body_weight_kg(height_cm: float, sex: str) -> float:
    """Ideal body weight (kg): male ``48.0 + 1.06 (H - 152)``, female ``45.5 + 0.91 (H - 152)``.

    Examples
    --------
    >>> round(ideal_body_weight_kg(175.0, "O"), 3)  # mean of 72.38 and 66.43
    69.405
    """
    _check(None, height_cm)
    h = float(height_cm)
    ibw = _by_sex(sex, 48.0 + 1.06 * (h - 152.0), 45.5 + 0.91 * (h - 152.0))
    if not ibw > 0:
        raise InvalidParameterError(f"ideal body weight is not positive for H={h} cm")
    return ibw


def body_surface_area_m2(weight_kg: float, height_cm: float) -> float:
    """Body surface area (m^2) by Du Bois: ``0.007184 H^0.725 W^0.425``.

    Examples
    --------
    >>> round(body_surface_area_m2(70.0, 175.0), 3)
    1.848
    """
    _check(weight_kg, height_cm)
    return 0.007184 * float(height_cm) ** 0.725 * float(weight_kg) ** 0.425
