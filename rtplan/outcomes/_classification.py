"""Disease classifications: ESTRO/EORTC 2020 oligometastatic disease, d'Amico risk."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rtplan.errors import InvalidParameterError

__all__ = ["OmdClassification", "classify_omd", "damico_risk"]


@dataclass(frozen=True)
class OmdClassification:
    """ESTRO/EORTC 2020 class of oligometastatic disease (OMD).

    ``origin``: ``genuine`` or ``induced``; ``history``: ``de-novo`` or ``repeat``
    (genuine only, else None); ``timing``: ``synchronous`` or ``metachronous``
    (de-novo only); ``state``: ``oligorecurrence``, ``oligoprogression`` or
    ``oligopersistence`` (None for synchronous OMD); ``label``: the consensus name,
    e.g. ``"metachronous oligorecurrence"``.
    """

    origin: str
    history: str | None
    timing: str | None
    state: str | None
    label: str


def classify_omd(
    *,
    prior_polymetastatic: bool,
    prior_omd: bool,
    months_since_primary_diagnosis: float | None = None,
    on_systemic_therapy: bool,
    progressing: bool | None = None,
) -> OmdClassification:
    """Classify oligometastatic disease by the ESTRO/EORTC 2020 decision tree.

    Parameters
    ----------
    prior_polymetastatic : bool
        History of polymetastatic disease before the current OMD diagnosis
        (yes -> induced OMD, no -> genuine OMD).
    prior_omd : bool
        History of OMD before the current diagnosis (genuine: yes -> repeat OMD,
        no -> de-novo OMD).
    months_since_primary_diagnosis : float, optional
        Interval from the primary cancer diagnosis to the OMD diagnosis, months;
        needed for de-novo OMD (<= 6 -> synchronous, > 6 -> metachronous).
    on_systemic_therapy : bool
        Active systemic therapy at the OMD diagnosis (no -> oligorecurrence).
    progressing : bool, optional
        On systemic therapy: whether the metastases are progressing on imaging
        (yes -> oligoprogression, no -> oligopersistence); needed for repeat and
        induced OMD on therapy.

    Returns
    -------
    OmdClassification
        One of nine classes: synchronous OMD; metachronous oligorecurrence or
        oligoprogression; repeat oligorecurrence, oligoprogression or
        oligopersistence; induced oligorecurrence, oligoprogression or
        oligopersistence.

    Notes
    -----
    De-novo metachronous OMD diagnosed on active systemic therapy is
    oligoprogression (new metastases under treatment); oligopersistence needs known
    earlier metastases, so it exists only for repeat and induced OMD.

    References
    ----------
    Guckenberger M, Lievens Y, Bouma AB, et al. Characterisation and classification
    of oligometastatic disease: a European Society for Radiotherapy and Oncology and
    European Organisation for Research and Treatment of Cancer consensus
    recommendation. Lancet Oncol 2020;21:e18-e28 (Figure 2).

    Examples
    --------
    >>> classify_omd(prior_polymetastatic=False, prior_omd=False,
    ...              months_since_primary_diagnosis=48, on_systemic_therapy=False).label
    'metachronous oligorecurrence'
    >>> classify_omd(prior_polymetastatic=True, prior_omd=False,
    ...              on_systemic_therapy=True, progressing=True).label
    'induced oligoprogression'
    """
    def state(need_progress: bool) -> str:
        if not on_systemic_therapy:
            return "oligorecurrence"
        if not need_progress:
            return "oligoprogression"
        if progressing is None:
            raise InvalidParameterError(
                "on systemic therapy, 'progressing' (True/False) is needed to tell "
                "oligoprogression from oligopersistence"
            )
        return "oligoprogression" if progressing else "oligopersistence"

    if prior_polymetastatic:
        st = state(True)
        return OmdClassification("induced", None, None, st, f"induced {st}")
    if prior_omd:
        st = state(True)
        return OmdClassification("genuine", "repeat", None, st, f"repeat {st}")
    m = months_since_primary_diagnosis
    if m is None or not math.isfinite(m) or not 0 <= m <= 1200:
        raise InvalidParameterError(
            "de-novo OMD needs months_since_primary_diagnosis from 0 to 1200 (100 years) "
            "to tell synchronous "
            f"(<= 6 months) from metachronous, got {m!r}"
        )
    if m <= 6.0:
        return OmdClassification(
            "genuine", "de-novo", "synchronous", None, "synchronous oligometastatic disease"
        )
    st = state(False)
    return OmdClassification("genuine", "de-novo", "metachronous", st, f"metachronous {st}")


_T_RE = re.compile(r"^(?:[cp])?T([0-4x])([abc])?$", re.IGNORECASE)


def _t_level(t_stage: str | None) -> str | None:
    """'low' (T1-T2a), 'intermediate' (T2b), 'high' (T2c-T4) or None (unknown)."""
    if t_stage is None:
        return None
    m = _T_RE.match(t_stage.strip())
    if not m:
        raise InvalidParameterError(
            f"T stage {t_stage!r} not understood: use e.g. 'T1c', 'cT2b', 'pT3a'"
        )
    num, sub = m.group(1).lower(), (m.group(2) or "").lower()
    if num == "x":
        return None
    if num in ("0", "1"):
        return "low"
    if num == "2":
        return {"a": "low", "b": "intermediate", "c": "high"}.get(sub)  # 'T2' alone: unknown
    return "high"


def damico_risk(
    psa_ng_ml: float | None, gleason: int | None, t_stage: str | None
) -> str | None:
    """d'Amico risk group (``low``, ``intermediate``, ``high``) of localized disease.

    Low: PSA <= 10 ng/ml and Gleason <= 6 and T1-T2a. Intermediate: PSA > 10-20, or
    Gleason 7, or T2b. High: PSA > 20, or Gleason >= 8, or T2c-T4. With missing
    values the group is returned only when it is certain (any high criterion makes
    the patient high risk); otherwise None. ``T2`` without a sub-stage is unknown.

    References
    ----------
    D'Amico AV, Whittington R, Malkowicz SB, et al. Biochemical outcome after radical
    prostatectomy, external beam radiation therapy, or interstitial radiation therapy
    for clinically localized prostate cancer. JAMA 1998;280:969-974.

    Examples
    --------
    >>> damico_risk(8.0, 6, "T1c"), damico_risk(15.0, 6, "T2a"), damico_risk(5.0, 8, None)
    ('low', 'intermediate', 'high')
    >>> damico_risk(5.0, 7, None) is None
    True
    """
    levels: list[str | None] = []
    if psa_ng_ml is not None:
        if not math.isfinite(float(psa_ng_ml)) or psa_ng_ml < 0:
            raise InvalidParameterError(f"PSA must be >= 0 ng/ml, got {psa_ng_ml!r}")
        levels.append("low" if psa_ng_ml <= 10 else "intermediate" if psa_ng_ml <= 20 else "high")
    else:
        levels.append(None)
    if gleason is not None:
        try:
            valid = float(gleason) == int(gleason) and 2 <= int(gleason) <= 10
        except (TypeError, ValueError, OverflowError):
            valid = False
        if not valid:
            raise InvalidParameterError(f"Gleason score must be 2-10, got {gleason!r}")
        levels.append("low" if gleason <= 6 else "intermediate" if gleason == 7 else "high")
    else:
        levels.append(None)
    levels.append(_t_level(t_stage))
    if "high" in levels:
        return "high"
    if None in levels:
        return None
    return "intermediate" if "intermediate" in levels else "low"
