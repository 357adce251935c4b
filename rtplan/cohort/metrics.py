"""DVH metric names (``D2cc``, ``D50%``, ``V30Gy``...) and alpha/beta by ROI name.

alpha/beta of an ROI, first match wins:

1. an override (``DVHParameters.alpha_beta_gy``): the ROI name, or a glob pattern
   (``PTV*``), compared case-insensitively;
2. a TG-263-like name rule (:data:`ALPHA_BETA_RULES`): targets (GTV, CTV, PTV, ITV),
   prostate and seminal vesicles 1.5 Gy (prostate cancer); rectum, bladder, bowel,
   femoral heads, urethra, penile bulb and other late-responding organs 3 Gy;
3. the default (``DVHParameters.default_alpha_beta_gy``, 3 Gy).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rtplan.dose.dvh import DVH
from rtplan.errors import InvalidParameterError
from rtplan.radiobiology import get_tissue

__all__ = ["ALPHA_BETA_RULES", "MetricSpec", "alpha_beta_for_roi", "parse_metric"]

#: (rule name, regular expression on the lower-case ROI name, tissue preset key).
ALPHA_BETA_RULES: tuple[tuple[str, str, str], ...] = (
    ("target", r"^(z_?)?(gtv|ctv|ptv|itv)", "prostate"),
    ("prostate", r"^(prostate|prostatebed|prostate_bed|seminalves|seminal_?vesicles?|sv)",
     "prostate"),
    ("rectum", r"^(rectum|rect|anorectum|anus|anal_?canal)", "rectum_late"),
    ("bladder", r"^(bladder|bladder_wall)", "bladder_late"),
    ("late_oar", r"^(bowel|smallbowel|bowel_small|bowel_large|colon|sigmoid|femur|"
     r"femoral|urethra|penilebulb|penile_bulb|bulb|cauda|spinalcord|spinal_cord|"
     r"kidney|liver|lung|heart|body|external|skin)", "rectum_late"),
)

_METRIC = re.compile(
    r"^(?:(?P<stat>Dmean|Dmax|Dmin)|D(?P<dx>\d+(?:\.\d+)?)(?P<dunit>%|cc)|"
    r"V(?P<vx>\d+(?:\.\d+)?)Gy(?P<vpct>%)?)$"
)


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric: ``kind`` (mean/max/min/d_percent/d_cc/v_cc/v_percent), ``x``."""

    name: str
    kind: str
    x: float

    @property
    def unit(self) -> str:
        """``Gy`` for dose metrics, ``cc`` or ``%`` for volume metrics."""
        return {"v_cc": "cc", "v_percent": "%"}.get(self.kind, "Gy")

    def value(self, h: DVH) -> float:
        """The metric of a non-empty DVH."""
        if self.kind == "mean":
            return h.mean_gy
        if self.kind == "max":
            return h.max_gy
        if self.kind == "min":
            return h.min_gy
        if self.kind == "d_percent":
            return float(h.dose_at_percent_gy(self.x))
        if self.kind == "d_cc":
            return float(h.dose_at_volume_gy(self.x))
        if self.kind == "v_cc":
            return float(h.volume_at_dose_cc(self.x))
        return float(h.volume_at_dose_percent(self.x))


def parse_metric(text: str) -> MetricSpec:
    """Parse ``Dmean``, ``Dmax``, ``Dmin``, ``D<x>%``, ``D<x>cc``, ``V<x>Gy``, ``V<x>Gy%``.

    Examples
    --------
    >>> parse_metric("D2cc"), parse_metric("V30Gy%").unit
    (MetricSpec(name='D2cc', kind='d_cc', x=2.0), '%')
    >>> parse_metric("D120%")
    Traceback (most recent call last):
    ...
    rtplan.errors.InvalidParameterError: metric 'D120%': the percentage must be 0-100
    """
    t = text.strip()
    m = _METRIC.match(t)
    if not m:
        raise InvalidParameterError(
            f"unknown metric {text!r}: use Dmean, Dmax, Dmin, D<x>% (D2%), D<x>cc (D2cc), "
            "V<x>Gy (V30Gy, cm3) or V<x>Gy% (V30Gy%, percent of the ROI)"
        )
    if m["stat"]:
        return MetricSpec(t, m["stat"][1:].lower(), 0.0)
    if m["dx"] is not None:
        x = float(m["dx"])
        if m["dunit"] == "%":
            if x > 100:
                raise InvalidParameterError(f"metric {text!r}: the percentage must be 0-100")
            return MetricSpec(t, "d_percent", x)
        return MetricSpec(t, "d_cc", x)
    return MetricSpec(t, "v_percent" if m["vpct"] else "v_cc", float(m["vx"]))


def alpha_beta_for_roi(
    name: str, overrides: Mapping[str, float], default_gy: float
) -> tuple[float, str]:
    """alpha/beta (Gy) of an ROI and where it comes from (``override``, ``rule:...``,
    ``default``).

    Examples
    --------
    >>> alpha_beta_for_roi("PTV_5000", {}, 3.0)
    (1.5, 'rule:target')
    >>> alpha_beta_for_roi("Rectum", {"rect*": 5}, 3.0)
    (5.0, 'override')
    >>> alpha_beta_for_roi("Spleen", {}, 2.5)
    (2.5, 'default')
    """
    low = name.strip().lower()
    for pattern, value in overrides.items():
        p = pattern.strip().lower()
        if low == p or fnmatch.fnmatchcase(low, p):
            return float(value), "override"
    compact = low.replace(" ", "_")
    for rule, regex, tissue in ALPHA_BETA_RULES:
        if re.match(regex, compact):
            return get_tissue(tissue).alpha_beta_gy, f"rule:{rule}"
    return float(default_gy), "default"
