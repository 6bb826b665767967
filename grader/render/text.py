"""Text from a submission, made safe to show in any format.

Student code prints what it likes and raises exceptions with any message:
colour codes (ANSI escape sequences) are dropped, and the other control
characters (NUL, bell...), which XML forbids and terminals and web pages
mangle, become U+FFFD. Newlines and tabs stay.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    return _CONTROL.sub("\ufffd", _ANSI.sub("", str(text)))
