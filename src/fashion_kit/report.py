"""The class report: a self-contained HTML page (figures embedded as PNG) and a terminal summary."""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections import Counter

from rich.console import Console
from rich.table import Table


def pass_rates(records, questions) -> dict[str, float]:
    """For each question, the share of graded submissions that earned its full points."""
    graded = [r for r in records if r.status == "graded"]
    rates = {}
    for q in questions:
        scored = [r.scores[q] for r in graded if q in r.scores]
        rates[q] = sum(1 for s, p in scored if s >= p) / len(scored) if scored else 0.0
    return rates


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figures(records, questions) -> dict[str, str]:
    """Base64 PNGs: per-question pass rates and the histogram of total scores."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never pick up an interactive backend
    import matplotlib.pyplot as plt

    graded = [r for r in records if r.status == "graded"]
    out = {}
    rates = pass_rates(records, questions)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(questions) + 1.2))
    names = list(reversed(questions))  # first question on top
    values = [100 * rates[q] for q in names]
    bars = ax.barh(names, values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, 110)
    ax.set_xlabel("submissions with full points (%)")
    ax.set_title(f"Pass rate per question ({len(graded)} graded)")
    out["pass_rates"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    possible = max((r.possible for r in graded), default=0)
    totals = [r.total for r in graded]
    edges = [x - 0.5 for x in range(int(possible) + 2)] if possible else 10
    ax.hist(totals, bins=edges, color="#55a868", edgecolor="white")
    if possible:
        ax.set_xticks(range(0, int(possible) + 1))
        ax.set_xlim(-0.5, possible + 0.5)
    ax.set_xlabel(f"total score (out of {possible:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    ax.yaxis.get_major_locator().set_params(integer=True)
    out["histogram"] = _png(fig)
    plt.close(fig)
    return out


def html_report(result, title: str = "Fashion-MNIST: class grading report") -> str:
    records, questions = result.records, result.questions
    graded = [r for r in records if r.status == "graded"]
    failed = [r for r in records if r.status != "graded"]
    totals = [r.total for r in graded]
    possible = max((r.possible for r in graded), default=0)
    statuses = Counter(r.status for r in records)
    figs = figures(records, questions)
    esc = html.escape

    summary = [
        ("submissions", len(records)),
        ("graded", len(graded)),
        ("failed to grade", len(failed)),
    ]
    if totals:
        summary += [
            ("mean score", f"{statistics.mean(totals):.2f} / {possible:g}"),
            ("median score", f"{statistics.median(totals):g} / {possible:g}"),
            ("full marks", sum(1 for t in totals if t >= possible)),
        ]
    rates = pass_rates(records, questions)
    rows_failed = "".join(
        f"<tr><td>{esc(r.submission)}</td><td>{esc(r.submitters)}</td><td class='status'>{esc(r.status)}</td>"
        f"<td>{esc(r.message)}</td></tr>"
        for r in failed
    )
    failed_block = (
        "<table><tr><th>submission</th><th>submitters</th><th>status</th><th>what happened</th></tr>"
        f"{rows_failed}</table>" if failed else "<p>Every submission was graded.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.status {{ font-weight: bold; color: #b00; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(title)}</h1>
<table>{"".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in summary)}</table>
<p>Status counts: {esc(", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))}</p>
<h2>Pass rate per question</h2>
<img alt="pass rate per question" src="data:image/png;base64,{figs["pass_rates"]}">
<table><tr><th>question</th><th>full points</th></tr>
{"".join(f"<tr><td>{esc(q)}</td><td>{100 * rates[q]:.0f}%</td></tr>" for q in questions)}</table>
<h2>Scores</h2>
<img alt="score histogram" src="data:image/png;base64,{figs["histogram"]}">
<h2>Submissions that failed to grade ({len(failed)})</h2>
{failed_block}
</body></html>
"""


def print_summary(result, console: Console) -> None:
    records = result.records
    graded = [r for r in records if r.status == "graded"]
    failed = [r for r in records if r.status != "graded"]
    totals = [r.total for r in graded]
    line = f"{len(records)} submissions: {len(graded)} graded, {len(failed)} failed to grade"
    if result.skipped:
        line += f" ({result.skipped} already graded, skipped)"
    console.print(line)
    if totals:
        possible = max(r.possible for r in graded)
        console.print(f"score: mean {statistics.mean(totals):.2f}, median {statistics.median(totals):g} "
                      f"of {possible:g}; {sum(1 for t in totals if t >= possible)} with full marks")
        rates = pass_rates(records, result.questions)
        hardest = sorted(result.questions, key=lambda q: rates[q])[:3]
        console.print("hardest: " + ", ".join(f"{q} ({100 * rates[q]:.0f}%)" for q in hardest))
    if failed:
        table = Table("submission", "status", "what happened", title="Failed to grade", title_justify="left")
        for r in failed[:15]:
            table.add_row(r.submission, f"[red]{r.status}[/red]", r.message)
        if len(failed) > 15:
            table.add_row("...", "", f"{len(failed) - 15} more in the report")
        console.print(table)
