"""The machine-readable report: `attn-grade ... --format json`."""

from __future__ import annotations

import json

from grader.render.options import DEFAULT, RenderOptions
from grader.results import Report


def render(report: Report, options: RenderOptions = DEFAULT) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"
