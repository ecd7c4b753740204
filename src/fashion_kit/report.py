"""The class report: a self-contained HTML page (figures embedded as PNG, one small inline script to
sort the table) and a terminal summary.

Statistics count every submission that has scores: a run stopped part-way (time limit, a crashed
kernel) keeps the points of the questions checked before it stopped, as on Gradescope, so its partial
scores count too. Submissions marked as not counted (a duplicate of another) are listed but left out.
Records may be objects or dicts with the same names (``id`` or ``submission``, ``submitters``,
``status``, ``message``, ``scores`` as {question: [score, possible]}, ``sandbox``, ``counted``).
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections import Counter

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from . import contract
from .classroom.matching import is_late
from .statuses import NOT_FAILED

# Two means closer than this are a tie for "hardest question" (floating-point sums of halves).
TIE = 1e-9
NO_SANDBOX = "none"
# A file in the upload folder that is no submission at all (a README, the roster): listed, not graded.
IGNORED = "ignored"
# Statuses that are no failure to grade: "ignored" is a file beside the submissions (a README).


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
    return sum(float(s) for s, _ in scores_of(record).values())


def possible_of(record) -> float:
    return sum(float(p) for _, p in scores_of(record).values())


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


SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var cell = row.cells[column], text = cell.getAttribute("data-sort") || cell.textContent;
      text = text.trim();
      return /^-?[0-9]+(\\.[0-9]+)?$/.test(text) ? [0, parseFloat(text)] : [1, text.toLowerCase()];
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      // Numbers before text; text in natural order (student9 before student10).
      var order = x[0] !== y[0] ? x[0] - y[0]
        : x[0] === 0 ? x[1] - y[1] : x[1].localeCompare(y[1], undefined, {numeric: true});
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _cell(value, sort_key=None, css: str = "") -> str:
    attr = f" data-sort='{html.escape(str(sort_key))}'" if sort_key is not None else ""
    attr += f" class='{css}'" if css else ""
    return f"<td{attr}>{html.escape(str(value))}</td>"


def _split(result) -> tuple[list, list]:
    """The submissions, and the files that were ignored as no submission at all."""
    everything = list(result.records)
    return ([r for r in everything if _get(r, "status") != IGNORED],
            [r for r in everything if _get(r, "status") == IGNORED])


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


def _roster_block(roster, esc) -> str:
    """Missing students and unmatched uploads, first: what the instructor must act on."""
    rows = getattr(roster, "rows", None) or []
    if not rows:
        return ""
    absent = [r for r in rows if r.upload is None]
    unmatched = getattr(roster, "unmatched", None) or []
    closest = getattr(roster, "closest", None) or {}
    parts = [f"<h2>Students ({len(rows)} on the roster)</h2>",
             f"<p>{len(rows) - len(absent)} with an upload, {len(absent)} without "
             f"({esc(absent[0].status) if absent else 'missing'}), {len(unmatched)} upload(s) matched to no one.</p>"]
    if unmatched:
        parts.append("<h3>Uploads that match no student</h3><table><tr><th>id</th><th>original name</th>"
                     "<th>closest roster entries</th></tr>" + "".join(
                         f"<tr><td>{esc(record_id(u))}</td><td>{esc(str(_get(u, 'original_name', '') or ''))}</td>"
                         f"<td>{esc('; '.join(s.label for s in closest.get(record_id(u), [])) or '—')}</td></tr>"
                         for u in unmatched) + "</table>")
    conflicts = [r for r in rows if getattr(r, "conflict", "")]
    if conflicts:
        parts.append("<h3>Uploads whose notebook names another student</h3><p>Matched by their file name or the "
                     "LMS; check that each is the student's own work.</p><table><tr><th>student</th><th>upload</th>"
                     "<th>what the notebook says</th></tr>" + "".join(
                         f"<tr><td>{esc(r.student.label)}</td><td>{esc(record_id(r.upload))}</td>"
                         f"<td>{esc(r.conflict)}</td></tr>" for r in conflicts) + "</table>")
    several = [r for r in rows if len(r.uploads) > 1]
    if several:
        parts.append("<h3>Students with several uploads</h3><p>Each is graded and listed; one counts as the "
                     "student's grade, and the statistics count it alone.</p><table><tr><th>student</th>"
                     "<th>uploads</th><th>counted</th><th>how it was chosen</th></tr>" + "".join(
                         f"<tr><td>{esc(r.student.label)}</td><td>{esc('; '.join(r.uploads))}</td>"
                         f"<td>{esc(record_id(r.upload))}</td><td>{esc(_get(r.upload, 'counted_by', '') or '')}</td></tr>"
                         for r in several) + "</table>")
    if absent:
        parts.append(f"<h3>Students without an upload ({esc(absent[0].status)})</h3><table><tr><th>student</th>"
                     "<th>email</th><th>section</th></tr>" + "".join(
                         f"<tr><td>{esc(r.student.label)}</td><td>{esc(r.student.email)}</td>"
                         f"<td>{esc(r.student.section)}</td></tr>" for r in absent) + "</table>")
    return "\n".join(parts)


def _similar_block(result, records, roster, esc) -> str:
    """Pairs of submissions whose own answers are near-identical, each with the cells side by side."""
    pairs = getattr(result, "similar", None) or []
    if not pairs:
        return ""
    from .classroom import similarity

    matched, by_id = students_of(roster), {record_id(r): r for r in records}

    def who(sub_id):
        return "; ".join(matched.get(sub_id, [])) or (submitters_text(by_id[sub_id]) if sub_id in by_id else "") or sub_id

    def upload(sub_id):
        return sub_id if who(sub_id) == sub_id else f"{sub_id}: {who(sub_id)}"

    parts = [f"<h2>Similar submissions ({len(pairs)} pair(s))</h2>",
             f"<p>Pairs whose answer cells, without the starter code and the reference answers, share at least "
             f"{100 * similarity.THRESHOLD:.0f}% of one student's own code (renamed variables count as the same). "
             "A pointer to look at, not a verdict: the grades are unchanged.</p>"]
    for p in pairs:
        rows = "".join(
            f"<tr><td>{esc(c.label)}<br>{100 * c.similarity:.0f}%</td><td><pre>{esc(c.code_a)}</pre></td>"
            f"<td><pre>{esc(c.code_b)}</pre></td></tr>" for c in p.cells)
        parts.append(
            f"<h3>{esc(who(p.a))} and {esc(who(p.b))}: {100 * p.similarity:.0f}%</h3>"
            f"<table class='similar'><tr><th>answer</th><th>{esc(upload(p.a))}</th>"
            f"<th>{esc(upload(p.b))}</th></tr>{rows}</table>")
    return "\n".join(parts)


def html_report(result, title: str = "Fashion-MNIST: class grading report", results_of=None, roster=None) -> str:
    """The report of a batch ``result`` (``records``, ``questions``). ``results_of(record)`` returns
    a submission's results.json content (or None); with it, the challenge leaderboard is shown.
    ``roster`` (``outputs.Written``) adds the students: missing ones and unmatched uploads first."""
    (records, ignored), questions = _split(result), list(result.questions)
    scored = counted(records)
    graded = [r for r in records if _get(r, "status") == "graded"]
    failed = [r for r in records if _get(r, "status") not in NOT_FAILED]
    totals = [total_of(r) for r in scored]
    possible = max((possible_of(r) for r in scored), default=0)
    statuses = Counter(str(_get(r, "status", "")) for r in records)
    figs = figures(records, questions)
    means, rates = mean_scores(records, questions), pass_rates(records, questions)
    hard, hard_share = hardest(records, questions)
    esc = html.escape

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
    unsandboxed = [record_id(r) for r in records if _get(r, "sandbox", None) == NO_SANDBOX]
    sandbox_note = (
        f"<p class='warning'>{len(unsandboxed)} submission(s) were graded without a sandbox (the notebook could "
        f"read and write as the grading user): {esc(', '.join(unsandboxed))}.</p>" if unsandboxed else ""
    )

    head = "".join(f"<th>{esc(h)}</th>" for h in ("id", "original name", "student", "status", *questions, "total",
                                                   "percent", "counted", "late", "message"))
    matched = students_of(roster)
    body = []
    for r in records:
        sc = scores_of(r)
        total = total_of(r) if sc else None
        pct = 100 * total / possible_of(r) if sc and possible_of(r) else None
        body.append(
            "<tr>" + _cell(record_id(r), None) + _cell(_get(r, "original_name", "") or "")
            + _cell("; ".join(matched.get(record_id(r), [])) or submitters_text(r)) + _cell(_get(r, "status", ""))
            + "".join(_cell(f"{float(sc[q][0]):g}" if q in sc else "", float(sc[q][0]) if q in sc else -1) for q in questions)
            + _cell(f"{total:g}" if total is not None else "", total if total is not None else -1)
            + _cell(f"{pct:.1f}" if pct is not None else "", pct if pct is not None else -1)
            + _cell(counted_text(r)) + _cell("late" if is_late(r) else "")
            + _cell(_get(r, "message", "") or "", None, "message") + "</tr>"
        )
    question_rows = "".join(f"<tr><td>{esc(q)}</td><td>{means[q][0]:.2f}</td><td>{means[q][1]:g}</td>"
                            f"<td>{100 * rates[q]:.0f}%</td></tr>" for q in questions)
    board = leaderboard_entries(records, results_of)
    board_block = (
        "<table><tr><th>rank</th><th>id</th><th>submitters</th><th>test accuracy</th></tr>"
        + "".join(f"<tr><td>{i}</td><td>{esc(sid)}</td><td>{esc(who)}</td><td>{value:.4f}</td></tr>"
                  for i, (sid, who, value) in enumerate(board, start=1)) + "</table>"
        if board else "<p>No submission took the challenge.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 80rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
table.sortable th {{ cursor: pointer; }}
table.sortable th[aria-sort=ascending]::after {{ content: " \\25B2"; }}
table.sortable th[aria-sort=descending]::after {{ content: " \\25BC"; }}
.warning {{ background: #fff6e0; padding: 0.5rem; }}
.partial {{ background: #ffe0e0; padding: 0.5rem; font-weight: bold; }}
img {{ max-width: 100%; }}
.wide {{ overflow-x: auto; max-width: 100%; }}
table.sortable {{ font-size: 0.85rem; }}
table.similar pre {{ margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 36rem; }}
table.sortable td.message {{ min-width: 16rem; max-width: 32rem; overflow-wrap: anywhere; }}
</style></head><body>
<h1>{esc(title)}</h1>
{f"<p class='partial'>{esc(partial_text(result, roster))}</p>" if partial_text(result, roster) else ""}
{sandbox_note}
{_roster_block(roster, esc)}
{_similar_block(result, records, roster, esc)}
<table>{"".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in summary)}</table>
<p>Status counts: {esc(", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))}</p>
<h2>Mean score per question</h2>
<img alt="mean score per question" src="data:image/png;base64,{figs["means"]}">
<table><tr><th>question</th><th>mean score</th><th>points</th><th>full points</th></tr>
{question_rows}</table>
<h2>Scores</h2>
<img alt="score histogram" src="data:image/png;base64,{figs["histogram"]}">
<h2>Challenge leaderboard</h2>
{board_block}
<h2>Every submission ({len(records)})</h2>
<p>Click a column's title to sort by it.</p>
<div class="wide"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></div>
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def print_summary(result, console: Console, roster=None) -> None:
    records, ignored = _split(result)
    graded = [r for r in records if _get(r, "status") == "graded"]
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
