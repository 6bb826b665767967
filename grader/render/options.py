"""How a report is shown: the options every renderer accepts.

`details`: every failure in full, one panel per failing test, nothing cut
(default: failures with one cause grouped, long texts shortened to the
lines that matter; the JSON always holds everything).  `notebook`: the
report is shown by `check()` in a notebook, so what to run next is said as
a notebook call (`check(2, seed=1234)`), not as a command-line flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader import registry


@dataclass(frozen=True)
class RenderOptions:
    details: bool = False
    notebook: bool = False

    def rerun(self, seed: int, exercises=None, *, details: bool = False) -> str:
        """The call that grades `exercises` (a number, a list, None: all)
        again with this seed (and every failure in full with `details`)."""
        numbers = [exercises] if isinstance(exercises, int) else list(exercises or [])
        if self.notebook:
            extra = ", details=True" if details else ""
            return f"check({numbers[0] if len(numbers) == 1 else 'N'}, seed={seed}{extra})"
        target = "all" if not numbers or len(numbers) == len(registry.EXERCISES) else (
            "exercise " + " ".join(map(str, numbers)))
        return f"attn-grade {target} --seed {seed}" + (" --details" if details else "")

    @property
    def details_flag(self) -> str:
        return "details=True" if self.notebook else "--details"

    def details_call(self, exercise: int, seed: int) -> str:
        return self.rerun(seed, exercise, details=True)

    def repro_call(self, exercise: int, test: str, seed: int) -> str:
        if self.notebook:
            return f"print(check({exercise}, seed={seed}, show=False).repro({test!r}))"
        return f"attn-grade repro {exercise} {test} --seed {seed}"


DEFAULT = RenderOptions()
