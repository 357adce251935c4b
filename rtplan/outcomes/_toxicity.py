"""CTCAE v5 toxicity grade distributions by domain and timepoint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtplan.errors import InvalidParameterError

__all__ = ["CTCAE_GRADES", "ToxicityCell", "toxicity_table"]

#: CTCAE v5 grades (0 = none, 5 = death related to the adverse event).
CTCAE_GRADES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class ToxicityCell:
    """Grade distribution of one domain at one timepoint.

    ``counts[g]`` patients with worst grade g (0-5); ``n_assessed`` patients with a
    grade; ``n_not_assessed`` patients listed without a grade (kept apart from
    grade 0); ``percent[g]`` = 100 counts[g] / n_assessed.
    """

    domain: str
    timepoint: str
    counts: tuple[int, ...]
    n_assessed: int
    n_not_assessed: int

    @property
    def percent(self) -> tuple[float, ...]:
        """Percent of assessed patients per grade 0-5 (NaN when none assessed)."""
        n = self.n_assessed
        return tuple((100.0 * c / n) if n else float("nan") for c in self.counts)


def toxicity_table(
    records: Iterable[tuple[str, str, str, int | None]],
) -> list[ToxicityCell]:
    """Grade distribution per (domain, timepoint) from (patient, timepoint, domain, grade).

    A patient with several grades for the same domain and timepoint counts once with
    the worst grade (CTCAE convention). ``grade=None`` means "not assessed": such a
    patient counts in ``n_not_assessed`` unless graded elsewhere in the same cell,
    and never as grade 0. Cells come in order of first appearance of domain, then
    timepoint.

    References
    ----------
    National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE)
    version 5.0, 2017.

    Examples
    --------
    >>> rows = [("P1", "3m", "GU", 1), ("P2", "3m", "GU", None), ("P3", "3m", "GU", 0),
    ...         ("P1", "3m", "GU", 2)]
    >>> c = toxicity_table(rows)[0]
    >>> c.counts, c.n_assessed, c.n_not_assessed
    ((1, 0, 1, 0, 0, 0), 2, 1)
    """
    worst: dict[tuple[str, str], dict[str, int | None]] = {}
    domains: list[str] = []
    timepoints: list[str] = []
    for pid, tp, dom, grade in records:
        if grade is not None and (isinstance(grade, bool) or grade not in CTCAE_GRADES):
            raise InvalidParameterError(
                f"CTCAE grade must be 0-5 or empty (not assessed), got {grade!r} for "
                f"patient {pid!r}, {dom} at {tp}"
            )
        if dom not in domains:
            domains.append(dom)
        if tp not in timepoints:
            timepoints.append(tp)
        cell = worst.setdefault((dom, tp), {})
        prev = cell.get(pid)
        if grade is not None and (prev is None or grade > prev):
            cell[pid] = int(grade)
        elif pid not in cell:
            cell[pid] = None
    out = []
    for dom in domains:
        for tp in timepoints:
            if (dom, tp) not in worst:
                continue
            grades = list(worst[(dom, tp)].values())
            counts = tuple(sum(1 for g in grades if g == k) for k in CTCAE_GRADES)
            n_na = sum(1 for g in grades if g is None)
            out.append(ToxicityCell(dom, tp, counts, len(grades) - n_na, n_na))
    return out
