"""The time left while a class is graded, from the gradings measured, with a clock the test moves."""

from __future__ import annotations

import io
from types import SimpleNamespace

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
    clock.now += 1000
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
