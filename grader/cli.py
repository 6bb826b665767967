"""The `attn-grade` console script's entry point (the commands live in
grader/commands/)."""

from grader.commands import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":  # pragma: no cover
    run()
