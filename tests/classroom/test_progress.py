"""The time left while a class is graded, from the gradings measured, with a clock the test moves."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from fashion_kit.classroom import progress


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_time_left_comes_from_measured_gradings_run_jobs_at_a_time():
    clock = Clock()
    eta = progress.Estimate(total=6, jobs=2, clock=clock)
    assert eta.seconds_left() is None, "unknown before a grading has ended"
    clock.now += 62
    eta.finished(60.0)
    clock.now += 1
    eta.finished(180.0)  # two ended together: a rate over them would say seconds
    # 4 left, 2 at a time, 120 s each on average: two rounds.
    assert eta.seconds_left() == 240.0
    clock.now += 100  # the two running now are 100 s in
    assert eta.seconds_left() == 140.0
    clock.now += 1000  # long past the mean: still a round after the running one, of at least 60 s
    assert eta.seconds_left() == 60.0
    for _ in range(4):
        eta.finished(100.0)
    assert eta.seconds_left() == 0.0 and progress.duration(0.0) == "almost done"
    assert progress.duration(240) == "about 4 min left" and progress.duration(42) == "about 40 s left"
    assert progress._EtaColumn(lambda: eta).render(None).plain == "almost done", "the bar shows the same estimate"


def test_off_a_terminal_each_grading_is_a_line():
    out = io.StringIO()
    reporter = progress.Reporter(Console(file=out, width=40), jobs=2)
    reporter.start(2, 1)
    record = SimpleNamespace(id="王小明", status="graded", failed=False, seconds=61.0, scores={"q1": [1, 1]},
                             total=1.0, possible=1.0)
    reporter.done(record)
    reporter.done(SimpleNamespace(**{**vars(record), "id": "b"}))
    reporter.stop()
    lines = out.getvalue().splitlines()
    assert lines == ["1 submissions already graded: skipped (--force grades them again)",
                     "grading 2 submission(s), 2 at a time",
                     "[1/2] 王小明: graded, 1/1 (61 s); 1 remaining, about 60 s left",
                     "[2/2] b: graded, 1/1 (61 s); all graded"], "one unwrapped line each, even at 40 columns"


def test_off_a_terminal_the_lines_carry_what_the_bar_would_show_beside_them():
    out = io.StringIO()
    alive = iter([2, 1])
    reporter = progress.Reporter(Console(file=out, width=40), jobs=2, note=lambda: f"{next(alive)} workers alive")
    reporter.start(2, 0)
    record = SimpleNamespace(id="a", status="graded", failed=False, seconds=10.0, scores={}, total=0.0, possible=1.0)
    reporter.done(record)
    reporter.done(SimpleNamespace(**{**vars(record), "id": "b"}))
    lines = out.getvalue().splitlines()
    assert lines[1].endswith("; 2 workers alive") and lines[2].endswith("all graded; 1 workers alive"), lines


def test_every_upload_counts_once_and_the_time_left_starts_from_what_earlier_runs_measured():
    """8 uploads, 1 of them no notebook, 3 graded by an earlier run (60 s each), 4 to grade: the
    lines count the invalid one apart, and the first estimate is known before any grading ends."""
    out = io.StringIO()
    reporter = progress.Reporter(Console(file=out, width=40), jobs=2)
    reporter.start(4, 3, ungradable=1, measured=[60.0, 60.0, 60.0])
    assert reporter.estimate.seconds_left() == pytest.approx(120.0, abs=1), "two rounds of 60 s, from the earlier run's records"
    reporter.done(SimpleNamespace(id="notes", status="invalid", failed=True, seconds=0.0, message="no notebook"))
    reporter.done(SimpleNamespace(id="a", status="graded", failed=False, seconds=30.0, scores={}, total=1.0,
                                  possible=1.0))
    lines = out.getvalue().splitlines()
    assert lines[1] == "grading 4 submission(s), 2 at a time (1 more cannot be graded)"
    assert lines[2] == "notes: not gradable: no notebook"
    assert lines[3].startswith("[1/4] a: graded") and "3 remaining" in lines[3]


def test_the_time_left_is_never_below_the_rounds_left_times_the_fastest_grading():
    clock = Clock()
    eta = progress.Estimate(total=8, jobs=2, clock=clock)
    clock.now += 5
    eta.finished(5.0)  # a quick one first (it crashed at once)
    eta.finished(130.0)
    assert eta.seconds_left() == 3 * 67.5, "6 left, 2 at a time: 3 rounds of the mean"
    clock.now += 400  # the two running now are far past the mean
    assert eta.seconds_left() == 2 * 5.0, "the two rounds after them take at least the fastest grading each"


def test_an_interrupted_batchs_summary_counts_the_whole_class():
    from fashion_kit.classroom import report

    graded = [SimpleNamespace(id=i, status="graded", scores={"q1": [1.0, 1.0]}, counted=True, sandbox="bubblewrap")
              for i in ("a", "b")]
    result = SimpleNamespace(records=graded, questions=["q1"], skipped=0, interrupted=True, pending=["c", "d"],
                             regraded={})
    out = io.StringIO()
    report.print_summary(result, Console(file=out, width=200))
    assert out.getvalue().splitlines()[0] == "4 submissions: 2 graded, 0 failed to grade, 2 not graded yet"
