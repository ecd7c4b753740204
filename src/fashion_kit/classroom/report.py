"""The class report: a self-contained HTML page (``templates/report.html``: figures embedded as PNG,
one small inline script to sort the table, ``templates/sort_table.js``) and a terminal summary.

Statistics count every submission that has scores: a run stopped part-way (time limit, a crashed
kernel) keeps the points of the questions checked before it stopped, as on Gradescope, so its partial
scores count too. Submissions marked as not counted (a duplicate of another) are listed but left out.
Records may be objects or dicts with the same names (``id`` or ``submission``, ``submitters``,
``status``, ``message``, ``scores`` as {question: [score, possible]}, ``sandbox``, ``counted``).
"""

from __future__ import annotations

import base64
import io
import statistics
from collections import Counter

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from .. import contract, pages, points
from ..statuses import NOT_FAILED, Status
from .matching import is_late

# Two means closer than this are a tie for "hardest question" (floating-point sums of halves).
TIE = 1e-9
NO_SANDBOX = "none"


def regraded_text(result) -> str:
    """How many recorded submissions were graded again, and why ("" if none)."""
    reasons = getattr(result, "regraded", None) or {}
    return "; ".join(f"{n} because {why}" for why, n in sorted(reasons.items()))


def _get(record, name, default=None):
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def record_id(record) -> str:
    return str(_get(record, "id", None) or _get(record, "submission", "") or "")


def submitters_text(record) -> str:
    people = _get(record, "submitters", "") or ""
    if isinstance(people, str):
        return people
    return "; ".join(
        " ".join(x for x in (str(p.get("name") or ""), f"<{p['email']}>" if p.get("email") else "",
                             f"({p['sid']})" if p.get("sid") else "") if x)
        for p in people if isinstance(p, dict)
    )


def scores_of(record) -> dict:
    return _get(record, "scores", None) or {}


def total_of(record) -> float:
    return points.total(scores_of(record))


def possible_of(record) -> float:
    return points.possible(scores_of(record))


def counted(records) -> list:
    """The records statistics are made of: every one with scores (stopped runs included), except
    those marked as not counted."""
    return [r for r in records if scores_of(r) and _get(r, "counted", True) is not False]


def pass_rates(records, questions) -> dict[str, float]:
    """For each question, the share of scored submissions that earned its full points."""
    scored_records = counted(records)
    rates = {}
    for q in questions:
        scored = [scores_of(r)[q] for r in scored_records if q in scores_of(r)]
        rates[q] = sum(1 for s, p in scored if float(s) >= float(p)) / len(scored) if scored else 0.0
    return rates


def mean_scores(records, questions) -> dict[str, tuple[float, float]]:
    """For each question, (mean score, its points) over the scored submissions."""
    scored_records = counted(records)
    means = {}
    for q in questions:
        scored = [scores_of(r)[q] for r in scored_records if q in scores_of(r)]
        means[q] = (statistics.mean(float(s) for s, _ in scored) if scored else 0.0,
                    max((float(p) for _, p in scored), default=0.0))
    return means


def hardest(records, questions) -> tuple[list[str], float]:
    """The questions with the lowest mean share of their points, all of them when tied, in question
    order; and that share. Empty when nothing was scored."""
    means = {q: m / p for q, (m, p) in mean_scores(records, questions).items() if p}
    if not means or not counted(records):
        return [], 0.0
    low = min(means.values())
    return [q for q in questions if q in means and means[q] - low <= TIE], low


def leaderboard_entries(records, results_of) -> list[tuple[str, str, float]]:
    """(id, submitters, challenge accuracy) for every submission whose results.json has the challenge
    leaderboard value, best first (ties in id order)."""
    entries = []
    for r in records:
        results = results_of(r) if results_of else None
        board = (results or {}).get("leaderboard") or []
        value = next((e.get("value") for e in board if isinstance(e, dict) and e.get("name") == contract.LEADERBOARD_NAME), None)
        if isinstance(value, (int, float)):
            entries.append((record_id(r), submitters_text(r), float(value)))
    return sorted(entries, key=lambda e: (-e[2], contract.natural_key(e[0])))


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def share_axis(values: list[float]) -> tuple[float, str]:
    """Where the mean-score chart's axis ends, and its label: a share of the points ends at 100 %;
    only a bonus can take a bar beyond it, and then the label says so."""
    end = max([100.0, *values])
    label = "mean score (% of the question's points)"
    return end, label + (f"; above 100 % with the bonus, up to {end:.0f} %" if end > 100 else "")


def figures(records, questions) -> dict[str, str]:
    """Base64 PNGs: the mean score per question (as a share of its points) and the score histogram."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never pick up an interactive backend
    import matplotlib.pyplot as plt

    scored = counted(records)
    out = {}
    means = mean_scores(records, questions)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(questions) + 1.2))
    names = list(reversed(questions))  # first question on top
    values = [100 * means[q][0] / means[q][1] if means[q][1] else 0.0 for q in names]
    bars = ax.barh(names, values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{means[q][0]:.2f} / {means[q][1]:g}" for q in names], padding=3, fontsize=8)
    end, label = share_axis(values)
    ax.set_xlim(0, end)
    ax.set_xlabel(label)
    ax.set_title(f"Mean score per question ({len(scored)} scored)")
    out["means"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    possible = max((possible_of(r) for r in scored), default=0)
    totals = [total_of(r) for r in scored]
    top = max([possible, *totals]) if totals else possible
    edges = [x - 0.5 for x in range(int(top) + 2)] if top else 10
    ax.hist(totals, bins=edges, color="#55a868", edgecolor="white")
    if top:
        ax.set_xticks(range(0, int(top) + 1))
        ax.set_xlim(-0.5, top + 0.5)
    ax.set_xlabel(f"total score (out of {possible:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    ax.yaxis.get_major_locator().set_params(integer=True)
    out["histogram"] = _png(fig)
    plt.close(fig)
    return out


def _split(result) -> tuple[list, list]:
    """The submissions, and the files that were ignored as no submission at all."""
    everything = list(result.records)
    return ([r for r in everything if _get(r, "status") != Status.IGNORED],
            [r for r in everything if _get(r, "status") == Status.IGNORED])


def partial_text(result, roster=None) -> str:
    """Why the batch's outputs are partial ("" when it finished)."""
    pending = list(getattr(result, "pending", None) or [])
    if not pending and not getattr(result, "interrupted", False) and not getattr(roster, "partial", False):
        return ""
    left = f"{len(pending)} upload(s) are not graded yet" if pending else "the batch was interrupted"
    return (f"Partial results: {left}. Students without a graded upload show as pending, and the LMS files "
            "(canvas.csv, moodle.csv, feedback.zip) are not written. Run the same command again to finish.")


def counted_text(record) -> str:
    """Whether an upload is its student's grade, and, for one of several, how it was chosen."""
    if _get(record, "counted", True) is False:
        return f"no: a duplicate of {_get(record, 'duplicate_of', '')}" if _get(record, "duplicate_of", "") else "no"
    how = _get(record, "counted_by", "") or ""
    return f"yes: {how}" if how else "yes"


def students_of(roster) -> dict[str, list[str]]:
    """Upload id -> the roster students it was matched to (labels), from ``outputs.Written``."""
    found: dict[str, list[str]] = {}
    for row in getattr(roster, "rows", None) or []:
        for upload_id in row.uploads:
            found.setdefault(upload_id, []).append(row.student.label)
    return found


def _roster_block(roster) -> dict | None:
    """Missing students and unmatched uploads, first: what the instructor must act on."""
    rows = getattr(roster, "rows", None) or []
    if not rows:
        return None
    absent = [r for r in rows if r.upload is None]
    unmatched = getattr(roster, "unmatched", None) or []
    closest = getattr(roster, "closest", None) or {}
    return {
        "count": len(rows), "with_upload": len(rows) - len(absent),
        "absent_status": absent[0].status if absent else "missing",
        "unmatched": [(record_id(u), str(_get(u, "original_name", "") or ""),
                       "; ".join(s.label for s in closest.get(record_id(u), []))) for u in unmatched],
        "conflicts": [(r.student.label, record_id(r.upload), r.conflict) for r in rows if getattr(r, "conflict", "")],
        "several": [(r.student.label, "; ".join(r.uploads), record_id(r.upload), _get(r.upload, "counted_by", "") or "")
                    for r in rows if len(r.uploads) > 1],
        "absent": [(r.student.label, r.student.email, r.student.section) for r in absent],
    }


def _similar_block(result, records, roster) -> dict | None:
    """Pairs of submissions whose own answers are near-identical, each with the cells side by side."""
    pairs = getattr(result, "similar", None) or []
    if not pairs:
        return None
    from . import similarity

    matched, by_id = students_of(roster), {record_id(r): r for r in records}

    def who(sub_id):
        return "; ".join(matched.get(sub_id, [])) or (submitters_text(by_id[sub_id]) if sub_id in by_id else "") or sub_id

    def upload(sub_id):
        return sub_id if who(sub_id) == sub_id else f"{sub_id}: {who(sub_id)}"

    return {"threshold": f"{100 * similarity.THRESHOLD:.0f}", "pairs": [
        {"who_a": who(p.a), "who_b": who(p.b), "percent": f"{100 * p.similarity:.0f}",
         "upload_a": upload(p.a), "upload_b": upload(p.b),
         "cells": [(c.label, f"{100 * c.similarity:.0f}", c.code_a, c.code_b) for c in p.cells]}
        for p in pairs]}


def _score_cell(value) -> tuple[str, float, str]:
    """A number of the submissions' table, and its sort key: a blank sorts below every number."""
    return (f"{value:g}" if value is not None else "", value if value is not None else -1, "")


def html_report(result, title: str = "Fashion-MNIST: class grading report", results_of=None, roster=None) -> str:
    """The report of a batch ``result`` (``records``, ``questions``). ``results_of(record)`` returns
    a submission's results.json content (or None); with it, the challenge leaderboard is shown.
    ``roster`` (``outputs.Written``) adds the students: missing ones and unmatched uploads first."""
    (records, ignored), questions = _split(result), list(result.questions)
    scored = counted(records)
    graded = [r for r in records if _get(r, "status") == Status.GRADED]
    failed = [r for r in records if _get(r, "status") not in NOT_FAILED]
    totals = [total_of(r) for r in scored]
    possible = max((possible_of(r) for r in scored), default=0)
    statuses = Counter(str(_get(r, "status", "")) for r in records)
    means, rates = mean_scores(records, questions), pass_rates(records, questions)
    hard, hard_share = hardest(records, questions)

    summary = [("submissions", len(records)), ("graded", len(graded)), ("failed to grade", len(failed)),
               ("with scores (stopped runs' partial scores included)", len(scored))]
    if ignored:
        summary.append(("other files, ignored", ", ".join(record_id(r) for r in ignored)))
    if regraded_text(result):
        summary.append(("graded again", regraded_text(result)))
    if totals:
        summary += [
            ("mean score", f"{statistics.mean(totals):.2f} / {possible:g}"),
            ("median score", f"{statistics.median(totals):g} / {possible:g}"),
            ("full marks", sum(1 for t in totals if t >= possible)),
            ("hardest question" + ("s (tied)" if len(hard) > 1 else ""),
             f"{', '.join(hard)} (mean {100 * hard_share:.0f}% of the points)"),
        ]

    matched = students_of(roster)
    rows = []
    for r in records:
        sc = scores_of(r)
        total = total_of(r) if sc else None
        pct = 100 * total / possible_of(r) if sc and possible_of(r) else None
        rows.append([
            (record_id(r), None, ""), (_get(r, "original_name", "") or "", None, ""),
            ("; ".join(matched.get(record_id(r), [])) or submitters_text(r), None, ""), (_get(r, "status", ""), None, ""),
            *(_score_cell(float(sc[q][0]) if q in sc else None) for q in questions),
            _score_cell(total), (f"{pct:.1f}" if pct is not None else "", pct if pct is not None else -1, ""),
            (counted_text(r), None, ""), ("late" if is_late(r) else "", None, ""),
            (_get(r, "message", "") or "", None, "message"),
        ])
    return pages.render(
        "report.html", title=title, partial=partial_text(result, roster),
        unsandboxed=[record_id(r) for r in records if _get(r, "sandbox", None) == NO_SANDBOX],
        roster=_roster_block(roster), similar=_similar_block(result, records, roster), summary=summary,
        status_counts=", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
        figures=figures(records, questions),
        questions=[(q, f"{means[q][0]:.2f}", f"{means[q][1]:g}", f"{100 * rates[q]:.0f}") for q in questions],
        board=leaderboard_entries(records, results_of),
        head=("id", "original name", "student", "status", *questions, "total", "percent", "counted", "late", "message"),
        rows=rows)


def print_summary(result, console: Console, roster=None) -> None:
    records, ignored = _split(result)
    graded = [r for r in records if _get(r, "status") == Status.GRADED]
    failed = [r for r in records if _get(r, "status") not in NOT_FAILED]
    scored = counted(records)
    totals = [total_of(r) for r in scored]
    pending = len(getattr(result, "pending", None) or [])
    line = f"{len(records) + pending} submissions: {len(graded)} graded, {len(failed)} failed to grade"
    if pending:
        line += f", {pending} not graded yet"
    if getattr(result, "skipped", 0):
        line += f" ({result.skipped} already graded, skipped)"
    if ignored:
        line += f"; {len(ignored)} other file(s) ignored"
    console.print(line)
    rows = getattr(roster, "rows", None) or []
    if rows:
        absent = [r for r in rows if r.upload is None]
        unmatched = getattr(roster, "unmatched", None) or []
        text = f"{len(rows)} students on the roster: {len(rows) - len(absent)} with an upload, {len(absent)} without"
        if absent:
            names = ", ".join(r.student.label for r in absent[:10]) + (" ..." if len(absent) > 10 else "")
            text += f" ({absent[0].status}: {names})"
        if unmatched:
            closest = getattr(roster, "closest", None) or {}

            def hint(u):
                near = closest.get(record_id(u)) or []
                return record_id(u) + (f" (closest: {'; '.join(s.label for s in near)})" if near else "")

            text += f"; {len(unmatched)} upload(s) match no one: " + ", ".join(hint(u) for u in unmatched[:10])
        console.print(markup_escape(text))
    if partial_text(result, roster):
        console.print(f"[yellow]{markup_escape(partial_text(result, roster))}[/yellow]")
    if regraded_text(result):
        console.print(markup_escape(f"graded again: {regraded_text(result)}"))
    if totals:
        possible = max(possible_of(r) for r in scored)
        console.print(f"score: mean {statistics.mean(totals):.2f}, median {statistics.median(totals):g} "
                      f"of {possible:g} over {len(scored)} scored; {sum(1 for t in totals if t >= possible)} with full marks")
        hard, share = hardest(records, result.questions)
        label = "hardest (tied)" if len(hard) > 1 else "hardest"
        console.print(f"{label}: {', '.join(hard)} (mean {100 * share:.0f}% of the points)")
    unsandboxed = sum(1 for r in records if _get(r, "sandbox", None) == NO_SANDBOX)
    if unsandboxed:
        console.print(f"[yellow]{unsandboxed} submission(s) were graded without a sandbox.[/yellow]")
    similar = getattr(result, "similar", None) or []
    if similar:
        console.print(f"[yellow]{len(similar)} pair(s) of submissions with near-identical answers: "
                      "side by side in the report.[/yellow]")
    if failed:
        table = Table("submission", "status", "what happened", title="Failed to grade", title_justify="left")
        for r in failed[:15]:
            # Ids and messages quote uploads: printed as text, never as rich markup.
            table.add_row(markup_escape(record_id(r)), f"[red]{markup_escape(str(_get(r, 'status', '')))}[/red]",
                          markup_escape(str(_get(r, "message", "") or "")))
        if len(failed) > 15:
            table.add_row("...", "", f"{len(failed) - 15} more in the report")
        console.print(table)
