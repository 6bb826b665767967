"""Duplicate and similarity flags: pairs of submissions for a human to look at.

Never a penalty: two students may well write the same twelve lines of a
well-known equation.  A flag only says where to look.

Per exercise file, the code a student wrote is compared with everyone else's:

- the code: the file's statements with docstrings, comments and layout
  removed (`ast.unparse`), one line per statement; lines that are also in the
  exercise's stub are left out, so untouched (or barely touched) stubs never
  pair up;
- identical: the same remaining lines, in the same order;
- similar: the remaining lines with every name the student chose replaced by
  one placeholder (names of built-ins, imported modules and attributes such
  as `torch.softmax` stay), compared token by token with difflib; a ratio of
  SIMILARITY_THRESHOLD or more, over at least MIN_TOKENS tokens, is flagged.
- the reference solution: a student's code identical to (or similar to) the
  solution of that exercise is flagged too.
"""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import Enum
from pathlib import Path

from grader import registry

SIMILARITY_THRESHOLD = 0.92     # difflib ratio of the renamed token streams
MIN_TOKENS = 40                 # shorter student code is too generic to compare
SOLUTION = "the reference solution"
_BUILTINS = frozenset(dir(builtins)) | {"self", "cls"}


@dataclass(frozen=True)
class Fingerprint:
    lines: tuple[str, ...]        # the student's own statements, normalised
    tokens: tuple[str, ...]       # the same with chosen names replaced

    @property
    def empty(self) -> bool:
        return not self.lines

    def to_dict(self) -> dict:
        return {"lines": list(self.lines), "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> "Fingerprint":
        return cls(tuple(d.get("lines", ())), tuple(d.get("tokens", ())))


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]


def statement_lines(text: str) -> list[str] | None:
    """One normalised line per statement (docstrings, comments, layout gone); None if unparsable."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    _strip_docstrings(tree)
    return [line.strip() for line in ast.unparse(tree).splitlines() if line.strip()]


def _imported_names(text: str) -> set[str]:
    names = set()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return names
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def renamed_tokens(lines: list[str], keep: set[str]) -> list[str]:
    """The tokens of `lines`, each name the student chose replaced by `_`."""
    tokens: list[str] = []
    source = "\n".join(lines) + "\n"
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER, tokenize.COMMENT):
                continue
            text = tok.string
            if tok.type == tokenize.NAME and not (text in keep or text in _BUILTINS
                                                  or previous == "." or _is_keyword(text)):
                text = "_"
            tokens.append(text)
            previous = tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [line for line in lines]
    return tokens


def _is_keyword(name: str) -> bool:
    import keyword

    return keyword.iskeyword(name) or keyword.issoftkeyword(name)


def fingerprint(text: str, stub: str | None = None) -> Fingerprint:
    """The student's own code in `text`: its statements minus the stub's."""
    lines = statement_lines(text)
    if lines is None:
        return Fingerprint((), ())
    if stub:
        stub_lines = Counter(statement_lines(stub) or [])
        mine = []
        for line in lines:
            if stub_lines[line] > 0:
                stub_lines[line] -= 1
            else:
                mine.append(line)
        lines = mine
    keep = _imported_names(text)
    return Fingerprint(tuple(lines), tuple(renamed_tokens(lines, keep)))


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    if len(a.tokens) < MIN_TOKENS or len(b.tokens) < MIN_TOKENS:
        return 0.0
    matcher = SequenceMatcher(None, a.tokens, b.tokens, autojunk=False)
    if matcher.real_quick_ratio() < SIMILARITY_THRESHOLD or matcher.quick_ratio() < SIMILARITY_THRESHOLD:
        return 0.0
    return matcher.ratio()


class FlagKind(str, Enum):
    IDENTICAL = "identical"
    SIMILAR = "similar"


@dataclass(frozen=True)
class Flag:
    exercise: int
    student: str
    other: str                   # another student, or SOLUTION
    kind: FlagKind
    ratio: float = 1.0

    def text(self) -> str:
        if self.kind is FlagKind.IDENTICAL:
            return f"ex{self.exercise:02d}: identical to {self.other}"
        return f"ex{self.exercise:02d}: similar to {self.other} ({self.ratio:.0%})"


def pair_flags(prints: dict[str, dict[int, Fingerprint]]) -> list[Flag]:
    """Flags between students, from {student: {exercise: fingerprint}}; each pair in both rows."""
    found: list[Flag] = []
    exercises = sorted({n for files in prints.values() for n in files})
    for number in exercises:
        mine = {s: files[number] for s, files in sorted(prints.items())
                if number in files and not files[number].empty}
        names = sorted(mine)
        for i, one in enumerate(names):
            for two in names[i + 1:]:
                flag = _compare(number, one, mine[one], two, mine[two])
                if flag:
                    found += [flag, Flag(number, two, one, flag.kind, flag.ratio)]
    return found


def solution_flags(prints: dict[str, dict[int, Fingerprint]], solutions: dict[int, Fingerprint]) -> list[Flag]:
    found = []
    for student, files in sorted(prints.items()):
        for number, print_ in sorted(files.items()):
            reference = solutions.get(number)
            if reference is None or reference.empty or print_.empty:
                continue
            flag = _compare(number, student, print_, SOLUTION, reference)
            if flag:
                found.append(flag)
    return found


def fingerprints(codes: dict[str, dict[int, str]], stubs: dict[int, str]) -> dict[str, dict[int, Fingerprint]]:
    return {student: {n: fingerprint(text, stubs.get(n)) for n, text in files.items()}
            for student, files in codes.items()}


def find_flags(codes: dict[str, dict[int, str]], *, stubs: dict[int, str] | None = None,
               solutions: dict[int, str] | None = None) -> list[Flag]:
    """Flags for {student: {exercise: source text}}: between students, and with the solutions."""
    stubs, solutions = stubs or {}, solutions or {}
    prints = fingerprints(codes, stubs)
    references = {n: fingerprint(text, stubs.get(n)) for n, text in solutions.items()}
    return pair_flags(prints) + solution_flags(prints, references)


def _order(flag: Flag) -> tuple:
    return (flag.exercise, flag.other == SOLUTION, flag.other)


def _compare(number: int, one: str, a: Fingerprint, two: str, b: Fingerprint) -> Flag | None:
    if a.lines == b.lines:
        return Flag(number, one, two, FlagKind.IDENTICAL)
    ratio = similarity(a, b)
    if ratio >= SIMILARITY_THRESHOLD:
        return Flag(number, one, two, FlagKind.SIMILAR, ratio)
    return None


def course_texts(folder: Path | None) -> dict[int, str]:
    """{exercise: text} of a course folder's exercise files (stubs or solutions), if there."""
    if folder is None or not folder.is_dir():
        return {}
    found = {}
    for exercise in registry.EXERCISES:
        path = folder / exercise.file
        if path.is_file():
            found[exercise.number] = path.read_text(encoding="utf-8")
    return found


def flag_rows(rows, sources, exercises: list[int], *, stubs: dict[int, str] | None = None,
              solutions: dict[int, str] | None = None) -> dict[int, Fingerprint]:
    """Flag a batch: each row gets its `flags`, and its `code` (the fingerprints, so
    that `merge` can flag pairs across shards); returns the solutions' fingerprints."""
    stubs = stubs or {}
    codes: dict[str, dict[int, str]] = {}
    for student, submission in sources.items():
        files = {}
        for number in exercises:
            source = submission.files.get(registry.get(number).module)
            if source is not None and not source.problem:
                files[number] = source.text
        codes[student] = files
    prints = fingerprints(codes, stubs)
    for row in rows:
        row.code = {n: p.to_dict() for n, p in prints.get(row.student, {}).items() if not p.empty}
    references = {n: fingerprint(text, stubs.get(n)) for n, text in (solutions or {}).items()
                  if n in exercises}
    reflag(rows, references)
    return references


def reflag(rows, references: dict[int, Fingerprint]) -> list[Flag]:
    """Set every row's `flags` from the rows' stored fingerprints (`row.code`): pairs of
    students, and each student with the solution fingerprints `references`."""
    prints = {row.student: {int(n): Fingerprint.from_dict(d) for n, d in row.code.items()} for row in rows}
    flags = pair_flags(prints) + solution_flags(prints, references)
    by_student: dict[str, list[Flag]] = {}
    for flag in flags:
        by_student.setdefault(flag.student, []).append(flag)
    for row in rows:
        row.flags = [f.text() for f in sorted(by_student.get(row.student, []), key=_order)]
    return flags
