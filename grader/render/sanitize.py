"""Text from a submission, made inert for every output format.

Student code prints what it likes and raises exceptions with any message;
every renderer treats that text as data, never as markup:

- `clean`: for every format.  Terminal escape sequences (ANSI CSI, OSC,
  DCS...) are dropped; the other C0 and C1 control characters (NUL, bell,
  a lone ESC, the one-byte CSI 0x9B...), which XML forbids and terminals
  obey, become U+FFFD.  A carriage return or a Unicode line separator ends
  a line, as it does for a terminal or the GitHub Actions runner.  A line
  that would begin (after any indentation) with a workflow command `::`
  gets a visible marker in front, so a CI log printing it never obeys it
  (the runner trims leading whitespace, so indentation alone is not enough).
- Markdown (`md_inline`, `md_cell`, `md_code_span`, `md_code_block`): no
  live link, image, emphasis, heading, HTML tag, autolink or @mention.
- GitHub annotations (`gh_data`, `gh_property`): the runner's escapes.
- The rich terminal scorecard uses `clean` and rich `Text` objects (never
  markup strings) for anything that is not the grader's own constant text.
"""

from __future__ import annotations

import re

# Escape sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC
# (ESC ] ... BEL or ST), and two-byte escapes (ESC + one char).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"                    # CSI
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC (to BEL or ST)
    r"|\x9b[0-?]*[ -/]*[@-~]"                     # one-byte CSI
    r"|[\x90\x9d\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # one-byte OSC/DCS/... to ST
    r"|\x1b[ -~]"                                 # ESC + one printable char
)
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029\x85]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_WORKFLOW_COMMAND = re.compile(r"^(\s*)(?=::)", re.M)

WORKFLOW_MARKER = "» "   # in front of a student's line that starts with `::`


def clean(text) -> str:
    """Student text safe in any format: no escapes, no controls, no line
    starting with a workflow command.  Newlines and tabs stay."""
    text = _ESCAPES.sub("", str(text))
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("\ufffd", text)
    return _WORKFLOW_COMMAND.sub(lambda m: m.group(1) + WORKFLOW_MARKER, text)


def one_line(text) -> str:
    """`clean` text on a single line (runs of white space become one space)."""
    return " ".join(clean(text).split())


# ------------------------------------------------------------------ markdown
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()!#|~{}])")
_AUTOLINK = re.compile(r"(?i)(www)(\.)|(https?|ftp|mailto|file)(:)|(@)")


def _break_autolink(match: re.Match) -> str:
    # A zero-width joiner inside `www.`, `https:` or `a@b` keeps GitHub's
    # extended autolinks (and @mentions) from firing; the text reads the same.
    groups = [g for g in match.groups() if g is not None]
    if groups == ["@"]:
        return "@\u200b"
    return groups[0] + "\u200b" + groups[1]


def md_inline(text) -> str:
    """Untrusted text on one line of Markdown: every character that could
    start emphasis, a link, an image, a heading, a table cell, an HTML tag or
    an entity is escaped; autolinks and mentions are broken."""
    text = one_line(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _AUTOLINK.sub(_break_autolink, text)


def md_cell(text) -> str:
    """Untrusted text inside one table cell (md_inline escapes `|` too)."""
    return md_inline(text)


def md_code_span(text) -> str:
    """Untrusted text as an inline code span: a backtick fence longer than
    any backtick run inside, so the text cannot close it."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_code_block(text, limit: int | None = None, *, tail: bool = False, info: str = "text") -> str:
    """Untrusted text as a fenced code block whose fence (backticks, longer
    than any backtick run inside) the text cannot close."""
    text = clean(text).rstrip()
    if limit is not None and len(text) > limit:
        text = ("…" + text[-limit:]) if tail else (text[:limit] + "…")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


# ------------------------------------------------------------------ GitHub annotations
def gh_data(text) -> str:
    """The message part of a workflow command, escaped as the runner expects
    (`%`, CR, LF), so it stays on the command's own line."""
    return clean(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(text) -> str:
    """A property value of a workflow command (`file=`, `title=`): also `:` and `,`."""
    return gh_data(text).replace(":", "%3A").replace(",", "%2C")


def starts_workflow_command(line: str) -> bool:
    return line.lstrip().startswith("::")
