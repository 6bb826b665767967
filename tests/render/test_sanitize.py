"""Student text is data, never markup, in every renderer (issue 10, class 10).

A hostile report, built by hand: every field a submission controls holds
terminal escapes, rich markup, workflow commands and Markdown/HTML.  Each
format must show it as inert text.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from grader.render import RENDERERS, render_text
from grader.render import rich as rich_renderer
from grader.render.sanitize import WORKFLOW_MARKER, clean, md_code_span, md_inline
from grader.results import ExerciseResult, Report, Status, TestResult

CLEAR_AND_FAKE = "\x1b[2J\x1b[H\x1b[32m80/80 passed\x1b[0m\x1b]0;owned\x07\x9b31mC1\x1b]8;;https://evil.example/\x1b\\link"
MARKUP = "[bold green]FAKE 80/80[/bold green] [link=https://evil.example]x[/link]"
WORKFLOW = ("ok\n::add-mask::secret\n  ::stop-commands::tok\r::error::forged\r\n"
            "\t::set-output name=x::1\u2028::warning::ls\x85::notice::nl")
MARKDOWN = ("**FAKE 80/80** [phish](https://evil.example/login) ![t](https://evil.example/t.png) "
            "<img src=https://evil.example/p.png> <script>alert(1)</script> www.evil.example "
            "@instructor # heading `code` ~~gone~~ _em_ &lt;b&gt;")
HOSTILE = "\n".join([CLEAR_AND_FAKE, MARKUP, WORKFLOW, MARKDOWN])


def hostile_report() -> Report:
    def test(name, status, **kw):
        return TestResult(name=name, status=Status(status), points=0.0, max_points=5.0, **kw)

    return Report(
        submission="exercises/" + MARKUP + "\n::error::path", seed=7, grader_version="0.1.0",
        exercises=[
            ExerciseResult(1, "attention", "Scaled dot-product attention", Status.ERROR, 0.0, 10.0, [
                test("matches_the_equation", "failed", message=HOSTILE, example=HOSTILE,
                     description="a property", hint="a hint " + MARKDOWN),
                test("weights_are_probabilities", "error", message="ValueError: " + HOSTILE,
                     traceback='  File "ex01_attention.py", line 3, in f\n' + HOSTILE),
            ], notes=["note " + HOSTILE], output=HOSTILE),
            ExerciseResult(2, "masks", "Causal and padding masks", Status.FAILED, 0.0, 10.0, [
                test("masked_attention_matches_the_equation", "failed", message="wrong",
                     counterexample={"inputs": {"model": "<student " + HOSTILE + " #3>"},
                                     "got": {"weights": {"shape": [1], "dtype": "float32", "values": [0.5]}},
                                     "expected": {"weights": {"shape": [1], "dtype": "float64",
                                                              "values": [1.0]}},
                                     "call": "f(" + HOSTILE + ")"}),
            ]),
            ExerciseResult(3, "cross-attention", "Cross-attention", Status.NOT_IMPLEMENTED, 0.0, 10.0, [
                test("queries_come_from_x_q", "not_implemented", message=HOSTILE),
            ]),
        ])


def rich_terminal_output(report: Report) -> str:
    """The scorecard as a colour terminal receives it."""
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, color_system="truecolor", width=100)
    rich_renderer.print_report(report, console)
    return sink.getvalue()


def outputs(report: Report | None = None) -> dict[str, str]:
    report = report or hostile_report()
    found = {fmt: render_text(report, fmt) for fmt in RENDERERS}
    found["rich-terminal"] = rich_terminal_output(report)
    return found


SGR = re.compile(r"\x1b\[[0-9;]*m")     # colours: what rich itself emits


@pytest.mark.parametrize("fmt", [*RENDERERS, "rich-terminal"])
def test_no_terminal_escapes_or_controls_from_student_text(fmt):
    text = outputs()[fmt]
    if fmt == "rich-terminal":
        text = SGR.sub("", text)          # rich's own colours; nothing else may remain
        text = re.sub(r"\x1b\]8;[^\x1b]*\x1b\\", "", text)  # rich's own hyperlinks (none expected)
    if fmt == "gradescope":   # shown to the student: decoded strings must be clean too
        text = json.dumps(json.loads(text), ensure_ascii=False)
    # (the json format keeps the raw data, \u-escaped: its bytes hold no control either)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", text)


def test_rich_shows_student_markup_as_text():
    text = rich_terminal_output(hostile_report())
    plain = SGR.sub("", text)
    assert "[bold green]FAKE 80/80[/bold green]" in plain           # shown, not obeyed
    assert "\x1b]8;" not in text                                       # no live hyperlink
    # and the plain-text export agrees
    assert "[bold green]FAKE 80/80[/bold green]" in rich_renderer.render(hostile_report())


@pytest.mark.parametrize("fmt", [*RENDERERS, "rich-terminal"])
def test_no_line_starts_a_workflow_command_from_student_text(fmt):
    text = outputs()[fmt]
    if fmt == "rich-terminal":
        text = SGR.sub("", text)
    for line in re.split(r"\r\n|\r|\n", text):
        if not line.lstrip().startswith("::"):
            continue
        # only the grader's own annotations, in the github format, start with `::`
        assert fmt == "github" and re.match(r"::(error file=|notice file=|notice title=attn-grade::)", line), (fmt, line)
        assert "\n" not in line and "::add-mask::" not in line.split("::", 2)[1]


def test_github_annotations_keep_student_text_inside_the_message():
    lines = render_text(hostile_report(), "github").splitlines()
    assert lines and all(line.startswith(("::error file=", "::notice file=")) for line in lines)
    for line in lines:
        command, _, data = line[2:].partition("::")
        assert "%0A" in data or "\n" not in data
        assert "::" not in command                      # properties cannot end early
    assert any(f"%0A{WORKFLOW_MARKER}::add-mask::secret" in line for line in lines)


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough").render(markdown)


def _outside_code(html: str) -> str:
    return re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", html, flags=re.S)


def test_markdown_from_student_text_is_inert():
    html = _html(render_text(hostile_report(), "markdown"))
    live = _outside_code(html)
    for tag in ("<a ", "<img", "<script", "<h1", "<del>", "<s>"):
        assert tag not in live, tag
    for emphasised in re.findall(r"<(?:strong|em)>(.*?)</(?:strong|em)>", live, flags=re.S):
        assert "FAKE" not in emphasised and "em" != emphasised
    # GitHub also links bare URLs and mentions: they are broken with a zero-width space
    text = re.sub(r"<[^>]+>", "", live)
    assert "https://" not in text and "www.evil" not in text and "@instructor" not in text
    assert "FAKE 80/80" in text                     # the text is still there, as text


def test_markdown_code_blocks_cannot_be_closed_by_student_text():
    report = hostile_report()
    report.exercises[0].tests[0].message = "x\n```\n**FAKE** <img src=https://e/x.png>\n````\ny"
    html = _html(render_text(report, "markdown"))
    assert "<img" not in _outside_code(html) and "FAKE" not in "".join(
        re.findall(r"<strong>(.*?)</strong>", _outside_code(html)))


@pytest.mark.parametrize("text", ["a`b", "``", "`x`", "plain", "| pipe |", ""])
def test_code_spans_hold_any_text(text):
    span = md_code_span(text)
    html = MarkdownIt("commonmark").renderInline(span)
    assert html.startswith("<code>") and html.endswith("</code>") and html.count("<code>") == 1


def test_clean_and_md_inline_units():
    assert clean("a\x1b[31mb\x1b[0mc") == "abc"
    assert clean("x\r::error::y") == f"x\n{WORKFLOW_MARKER}::error::y"
    assert clean("tab\there\nnew") == "tab\there\nnew"
    assert clean("\x00\x07\x9b") == "\ufffd\ufffd\ufffd"
    assert md_inline("[a](b) **c** <d>") == r"\[a\]\(b\) \*\*c\*\* &lt;d&gt;"


HOSTILE_SUBMISSION = """
import torch

print({hostile!r})


def scaled_dot_product_attention(q, k, v):
    print({hostile!r})
    raise ValueError({hostile!r})


class SelfAttention(torch.nn.Module):
    def __init__(self, d_model):
        raise RuntimeError({hostile!r})
"""


def test_a_submission_printing_and_raising_markup_is_shown_as_data(tmp_path):
    """End to end: the worker's own output and exception messages."""
    from tests.conftest import grade

    (tmp_path / "ex01_attention.py").write_text(HOSTILE_SUBMISSION.format(hostile=HOSTILE))
    report = grade(tmp_path, 1, max_examples=1)
    assert report.exercises[0].status is Status.ERROR and "FAKE 80/80" in report.exercises[0].output
    for fmt, text in outputs(report).items():
        plain = SGR.sub("", text) if fmt == "rich-terminal" else text
        if fmt == "gradescope":
            plain = json.dumps(json.loads(plain), ensure_ascii=False)
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", plain), fmt
        for line in re.split(r"\r\n|\r|\n", plain):
            if line.lstrip().startswith("::"):
                assert fmt == "github" and line.startswith("::error file="), (fmt, line)
    live = _outside_code(_html(render_text(report, "markdown")))
    assert "<img" not in live and "<a " not in live and "<script" not in live
