"""What ``fashion-kit grade`` shows while a class is graded: a bar on a terminal, plain lines otherwise.

The time left is estimated from the gradings measured (each record's own ``seconds``: this run's, and
those an earlier run of the same batch recorded), not from the rate of the bar: gradings finish in
bunches (``--jobs`` at a time), and a rate taken over two that ended together says seconds when
minutes are left. It is never below the rounds still to start times the fastest grading. With no
grading measured yet, it is unknown and says so. Every upload counts once: those that cannot be
graded (not a notebook, too large) are counted apart, not left out. When the output is no terminal
(piped, in a log, in CI), a line is printed as each grading ends, so a log shows the batch moving.
"""

from __future__ import annotations

import math
import statistics
import time

from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..statuses import Status
from .ids import printable

# Recorded without a grading: an upload no grader can take, and a file that is no submission.
NOT_TO_GRADE = (Status.INVALID, Status.IGNORED)


class Estimate:
    """The time left, from the measured gradings: the ones left run ``jobs`` at a time."""

    def __init__(self, total: int, jobs: int, clock=time.monotonic, measured=()):
        self.total, self.jobs, self.clock = total, max(1, jobs), clock
        self.durations: list[float] = [s for s in measured if s > 0]
        self.done = 0
        self.started = self.last = clock()  # self.last: when the last grading ended

    def finished(self, seconds: float) -> None:
        self.done += 1
        if seconds > 0:
            self.durations.append(seconds)
        self.last = self.clock()

    def seconds_left(self) -> float | None:
        """None until a grading has been measured."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if self.durations:
            mean = statistics.mean(self.durations)
        elif self.done:  # gradings that measured no time of their own: the wall clock's
            mean = (self.last - self.started) * min(self.jobs, self.total) / self.done
        else:
            return None
        rounds = math.ceil(left / min(self.jobs, left))
        # The gradings running now started about when the last one ended; those after them will take
        # at least as long as the fastest one did.
        floor = (rounds - 1) * min(self.durations) if self.durations else 0.0
        return max(rounds * mean - (self.clock() - self.last), floor, 0.0)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "time left unknown until a grading ends"
    if seconds <= 0:
        return "almost done"
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s left"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60):.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class _EtaColumn(ProgressColumn):
    def __init__(self, estimate_of):
        super().__init__()
        self.estimate_of = estimate_of

    def render(self, task) -> Text:
        estimate = self.estimate_of()
        return Text(duration(estimate.seconds_left()) if estimate else "", style="progress.remaining")


class Reporter:
    """``on_start`` and ``on_done`` for :func:`.batch.grade_class`, printing to a rich console."""

    def __init__(self, console, jobs: int, columns=(), note=None):
        # columns: more for the bar; note(): the same information as text, for the plain lines.
        self.console, self.jobs, self.columns, self.note = console, jobs, list(columns), note
        self.estimate: Estimate | None = None
        self.counts = {"done": 0, "failed": 0, "invalid": 0}
        self.ungradable = 0
        self.progress = None
        self.task = None

    def start(self, total: int, skipped: int, ungradable: int = 0, measured=()) -> None:
        """``total`` uploads to grade, ``skipped`` already graded, ``ungradable`` that no grader can take
        (reported to :meth:`done` as they are recorded), ``measured`` the seconds earlier gradings took."""
        if skipped:
            self.console.print(f"{skipped} submissions already graded: skipped (--force grades them again)",
                               soft_wrap=True)
        self.ungradable = ungradable
        self.estimate = Estimate(total, min(self.jobs, total) if total else self.jobs, measured=measured)
        if not total + ungradable:
            return
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("grading"), BarColumn(),
                TextColumn("[green]{task.fields[done]} done[/green] [red]{task.fields[failed]} failed[/red] "
                           "{task.fields[invalid]} not gradable {task.fields[left]} remaining"),
                TimeElapsedColumn(), _EtaColumn(lambda: self.estimate), *self.columns, console=self.console)
            self.task = self.progress.add_task("grading", total=total + ungradable, left=total, **self.counts)
            self.progress.start()
        else:
            apart = f" ({ungradable} more cannot be graded)" if ungradable else ""
            self.console.print(f"grading {total} submission(s), {min(self.jobs, total or 1)} at a time{apart}",
                               soft_wrap=True)

    def done(self, record) -> None:
        if self.estimate is None:
            return
        if getattr(record, "status", "") in NOT_TO_GRADE:  # counted once, apart from the gradings
            if record.status == Status.INVALID:
                self.counts["invalid"] += 1
                if self.progress is not None:
                    self.progress.update(self.task, advance=1, **self.counts)
                else:
                    self.console.print(Text(f"{printable(record.id)}: not gradable: {record.message}"), soft_wrap=True)
            return
        self.counts["done" if not record.failed else "failed"] += 1
        self.estimate.finished(float(getattr(record, "seconds", 0) or 0))
        left = self.estimate.total - self.estimate.done
        if self.progress is not None:
            self.progress.update(self.task, advance=1, left=left, **self.counts)
            return
        score = f", {record.total:g}/{record.possible:g}" if getattr(record, "scores", None) else ""
        self.console.print(Text(
            f"[{self.estimate.done}/{self.estimate.total}] {printable(record.id)}: {record.status}{score} "
            f"({record.seconds:.0f} s); "
            + (f"{left} remaining, {duration(self.estimate.seconds_left())}" if left else "all graded")
            + (f"; {self.note()}" if self.note is not None else "")),
            soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
