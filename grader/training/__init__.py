"""Exercise 8's training machinery, all of it trusted judge code.

- task.py: the synthetic translation task (reverse a random token sequence),
  its batches and held-out set, generated from a seed.
- tiny.py: a judge-provided tiny sequence-to-sequence module and the
  scenarios that drive a `train_step` on it (the same code drives the
  student's function inside the worker and the reference in the judge).
- reference.py: the judge's own Noam schedule, loss and training step.
- check.py: the timed training check (budget calibration, chunks, accuracy).
"""

import threading

_preloading: threading.Thread | None = None


def preload_optimizer_imports() -> None:
    """The first optimizer.step() of a process imports torch._dynamo (seconds
    on a small machine).  Start that import on a background thread, so that
    it overlaps with other work instead of landing on the first timed step."""
    global _preloading
    if _preloading is not None:
        return

    def target():
        try:
            import torch._dynamo  # noqa: F401
        except Exception:  # noqa: BLE001 - only an optimisation
            pass

    _preloading = threading.Thread(target=target, name="preload-dynamo", daemon=True)
    _preloading.start()
