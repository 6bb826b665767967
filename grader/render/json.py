"""The machine-readable report: `attn-grade ... --format json`."""

from __future__ import annotations

import json

from grader.results import Report


def render(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"
