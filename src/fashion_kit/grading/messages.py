"""What a student reads when a check fails: one short message, in Chinese with English beside it.

Otter formats a failing exception-based test as the line of the test that raised, indented, then
``ExceptionClass: message`` (``otter.test_files.exception_test.ExceptionTestFile.
_generate_error_message``). The notebook's first cell replaces that formatter in the student's
kernel; ``clean_output`` gives the same result for test outputs that were formatted without it (a
kernel where the first cell did not run), so the grader can apply it to every test output it
publishes. The kit's tests raise only ``AssertionError`` with a bilingual message; any other error
means a test met a value it did not expect, and the student gets a general message instead of the
error's name and text.
"""

from __future__ import annotations

import re

# The same words as the formatter in the notebook's first cell.
UNEXPECTED_VALUE = (
    "這個檢查讀到意想不到的值，沒辦法完成：請先執行上面的題目，再檢查一次答案。 / "
    "The check met a value it did not expect and could not finish: run the questions above, then "
    "check your answer again."
)

_ERROR_AT = re.compile(r"^(?P<indent>[ \t]*)Error at line \d+ in test .*:$")
_EXCEPTION_LINE = re.compile(r"^(?P<kind>[A-Za-z_][\w.]*): ?(?P<message>.*)$")


def _message(kind: str, message: str) -> str:
    if kind == "AssertionError" and message.strip():
        return message.strip()
    return UNEXPECTED_VALUE


def clean_output(text: str) -> str:
    """``text`` (a test output) with each of Otter's error blocks ("Error at line N in test ...:",
    the test's source line, "ExceptionClass: message") replaced by the message alone, or by
    UNEXPECTED_VALUE when the test did not fail by its own assertion. Other text is unchanged."""
    lines = text.split("\n")
    cleaned, i = [], 0
    while i < len(lines):
        start = _ERROR_AT.match(lines[i])
        if not start:
            cleaned.append(lines[i])
            i += 1
            continue
        indent = start["indent"]
        i += 1
        while i < len(lines) and lines[i].startswith(indent + "  "):  # the test's source line(s)
            i += 1
        kind, message = "", []
        exception = _EXCEPTION_LINE.match(lines[i][len(indent):]) if i < len(lines) else None
        if exception and lines[i].startswith(indent):
            kind = exception["kind"]
            message.append(exception["message"])
            i += 1
            # A message of several lines continues at the same indentation up to a blank line.
            while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                message.append(lines[i][len(indent):])
                i += 1
        shown = _message(kind, "\n".join(message))
        cleaned.extend(indent + line for line in shown.split("\n"))
    return "\n".join(cleaned)
