"""The one way points are written, in every format and in the notebook.

One decimal at most, rounded half to even on the float's exact value
(`10/3` -> "3.3", `2.5` -> "2.5", `10.0` -> "10"), so a line and a table
always show the same figure for the same number.
"""

from __future__ import annotations


def points_text(value: float) -> str:
    text = f"{float(value):.1f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def score_text(points: float, max_points: float) -> str:
    """`points/max` as every view writes it: "3.3/10"."""
    return f"{points_text(points)}/{points_text(max_points)}"
