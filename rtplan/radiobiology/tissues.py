"""alpha/beta presets: value, plausible range and citation."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rtplan.errors import InvalidParameterError

__all__ = ["TISSUES", "TissuePreset", "get_tissue"]


class TissuePreset(BaseModel):
    """An alpha/beta value (Gy) for a tissue and endpoint, with its range and source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    label: str
    alpha_beta_gy: Annotated[float, Field(gt=0)]
    range_gy: tuple[float, float]
    citation: str


#: Tissue presets by key. The ranges are those used in the literature cited, for
#: sensitivity analyses; they are not confidence intervals unless the citation says so.
TISSUES: dict[str, TissuePreset] = {
    t.key: t
    for t in (
        TissuePreset(
            key="prostate",
            label="prostate cancer",
            alpha_beta_gy=1.5,
            range_gy=(1.2, 3.0),
            citation=(
                "Brenner DJ, Hall EJ. Int J Radiat Oncol Biol Phys 1999;43:1095-1101 "
                "(alpha/beta 1.5 Gy); Miralbell R et al. Int J Radiat Oncol Biol Phys "
                "2012;82:e17-e24 (1.4 Gy, 95% CI 0.9-2.2 Gy); Vogelius IR, Bentzen SM. "
                "Int J Radiat Oncol Biol Phys 2018;100:858-865 (about 1.6-1.8 Gy)"
            ),
        ),
        TissuePreset(
            key="rectum_late",
            label="rectum, late effects",
            alpha_beta_gy=3.0,
            range_gy=(2.0, 5.0),
            citation=(
                "Late-responding normal tissues, alpha/beta about 3 Gy: Joiner MC, "
                "van der Kogel AJ (eds), Basic Clinical Radiobiology, 5th ed., CRC Press "
                "2018; Fowler JF. Br J Radiol 1989;62:679-694"
            ),
        ),
        TissuePreset(
            key="bladder_late",
            label="bladder, late effects",
            alpha_beta_gy=3.0,
            range_gy=(2.0, 6.0),
            citation=(
                "Late-responding normal tissues, alpha/beta about 3 Gy: Joiner MC, "
                "van der Kogel AJ (eds), Basic Clinical Radiobiology, 5th ed., CRC Press "
                "2018; Fowler JF. Br J Radiol 1989;62:679-694"
            ),
        ),
        TissuePreset(
            key="tumour",
            label="generic tumour / early-responding tissue",
            alpha_beta_gy=10.0,
            range_gy=(7.0, 20.0),
            citation=(
                "Early-responding tissues and most tumours, alpha/beta about 10 Gy: "
                "Fowler JF. Br J Radiol 1989;62:679-694; Joiner MC, van der Kogel AJ "
                "(eds), Basic Clinical Radiobiology, 5th ed., CRC Press 2018"
            ),
        ),
    )
}


def get_tissue(key: str) -> TissuePreset:
    """Look up a tissue preset by key.

    Examples
    --------
    >>> get_tissue("prostate").alpha_beta_gy
    1.5
    >>> get_tissue("rectum_late").range_gy
    (2.0, 5.0)
    """
    k = key.strip().lower()
    if k not in TISSUES:
        raise InvalidParameterError(
            f"unknown tissue {key!r}: choose one of {', '.join(TISSUES)}"
        )
    return TISSUES[k]
