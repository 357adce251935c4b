"""Plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as an aligned text table; numbers are right-aligned.

    Examples
    --------
    >>> print(format_table(["plan", "EQD2 (Gy)"], [["SBRT", "44.5"], ["ENI", "49.7"]]))
    plan  EQD2 (Gy)
    ----  ---------
    SBRT       44.5
    ENI        49.7
    """
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    ncol = len(headers)
    widths = [max(len(row[i]) for row in cells) for i in range(ncol)]

    def is_num(s: str) -> bool:
        try:
            float(s.replace("%", ""))
        except ValueError:
            return False
        return True

    numeric = [all(is_num(r[i]) or r[i] in ("", "-") for r in cells[1:]) for i in range(ncol)]
    lines = []
    for n, row in enumerate(cells):
        out = []
        for i, c in enumerate(row):
            right = numeric[i] and n > 0
            out.append(c.rjust(widths[i]) if right else c.ljust(widths[i]))
        lines.append("  ".join(out).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
