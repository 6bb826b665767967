"""Exercise 8's training curves as a small standalone SVG (no matplotlib).

Held-out token accuracy against training steps (with the target as a dashed
line) and the mean training loss per chunk, side by side.  Shown inline by
`check(8)` in a notebook; `training_svg(report)` is also what a CI job can
save as an artifact.  Every number is formatted here; no text from the
submission goes into the picture.
"""

from __future__ import annotations

import math

from grader.results import Report

WIDTH, HEIGHT, PAD = 320, 180, 28


def _polyline(points: list[tuple[float, float]], x_range, y_range, left: float, colour: str) -> str:
    (x0, x1), (y0, y1) = x_range, y_range
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    coords = " ".join(
        f"{left + PAD + (x - x0) / span_x * (WIDTH - 2 * PAD):.1f},"
        f"{HEIGHT - PAD - (y - y0) / span_y * (HEIGHT - 2 * PAD):.1f}"
        for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'


def _panel(left: float, title: str, points, y_range, colour: str, target: float | None = None) -> list[str]:
    xs = [x for x, _ in points] or [0.0, 1.0]
    x_range = (min(xs), max(xs))
    parts = [f'<rect x="{left}" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white" stroke="#ccc"/>',
             f'<text x="{left + PAD}" y="16" font-size="12" font-family="sans-serif">{title}</text>',
             f'<text x="{left + PAD}" y="{HEIGHT - 8}" font-size="10" font-family="sans-serif">'
             f'steps {x_range[0]:g} to {x_range[1]:g}</text>']
    if target is not None:
        parts.append(_polyline([(x_range[0], target), (x_range[1], target)], x_range, y_range, left, "#999")
                     .replace('stroke-width="2"', 'stroke-width="1" stroke-dasharray="4 3"'))
    if points:
        parts.append(_polyline(points, x_range, y_range, left, colour))
    return parts


def training_svg(report: Report) -> str:
    """The first training check of `report` as SVG text ("" when there is none)."""
    training = next((ex.extra["training"] for ex in report.exercises
                     if isinstance(ex.extra, dict) and ex.extra.get("training")), None)
    if not training:
        return ""
    curve = [(float(s), float(a)) for s, _, a in training.get("curve", []) if math.isfinite(float(a))]
    losses = [float(v) for v in training.get("losses", []) if isinstance(v, (int, float)) and math.isfinite(v)]
    target = float(training.get("target", 0.0))
    parts = _panel(0, f"held-out accuracy {float(training.get('accuracy', 0.0)):.1%} "
                      f"(target {target:.0%})", curve, (0.0, 1.0), "#2a7", target)
    if losses:
        loss_points = [(float(i + 1), v) for i, v in enumerate(losses)]
        parts += _panel(WIDTH + 10, f"training loss (last {losses[-1]:.3g})", loss_points,
                        (min(losses), max(losses)), "#c33")
    width = 2 * WIDTH + 10 if losses else WIDTH
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
            f'viewBox="0 0 {width} {HEIGHT}">' + "".join(parts) + "</svg>\n")
