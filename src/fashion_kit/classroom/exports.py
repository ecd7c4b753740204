"""What a batch's records become for other programs: the gradebook (CSV), and other exports.

Every cell a spreadsheet opens is neutralised first: a cell starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets, and a student's name
or a notebook's error message must never run as one (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io

# The characters OWASP lists as starting a formula in some spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV file as UTF-8 only when it starts with a byte order mark; without one, Chinese
# names show as mojibake.
BOM = "\ufeff"


def spreadsheet_safe(value) -> str:
    """``value`` as a cell no spreadsheet runs as a formula: a leading quote makes it plain text."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def gradebook_csv(records, questions: list[str]) -> str:
    """The gradebook, one row per record, in the order given; UTF-8 text starting with a BOM.

    Numbers the kit writes itself (scores, seconds) are never negative, so neutralising every cell
    changes none of them.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([
        "id", "original_name", "gradescope_id", "submitters", "sids", "emails", *questions, "total",
        "possible", "status", "message", "message_zh", "counted", "duplicate_of", "sandbox", "seconds",
    ])
    for r in records:
        # A run stopped part-way has the scores of the questions checked before: shown, as on Gradescope.
        scored = bool(r.scores)
        row = [
            r.id, r.original_name, r.gradescope_id,
            "; ".join(p.get("name", "") for p in r.submitters),
            "; ".join(p.get("sid", "") for p in r.submitters),
            "; ".join(p.get("email", "") for p in r.submitters),
            *[f"{r.scores[q][0]:g}" if q in r.scores else "" for q in questions],
            f"{r.total:g}" if scored else "", f"{r.possible:g}" if scored else "",
            r.status, r.message, r.message_zh, "yes" if r.counted else "no", r.duplicate_of, r.sandbox,
            f"{r.seconds:.1f}",
        ]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return BOM + buffer.getvalue()
