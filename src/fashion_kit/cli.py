"""The ``fashion-kit`` command: one verb per job, as Otter does (assign, run, grade, ...)."""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.markup import escape as markup_escape

from . import paths
from .errors import KitError

console = Console(stderr=True)


def cmd_data(args) -> int:
    from . import data

    cache = data.check_cache(data.install(args.source)) if args.source else data.ensure()
    console.print(f"Fashion-MNIST is ready in {cache}")
    return 0


def cmd_assign(args) -> int:
    from . import assign, points, run
    from .questions import master, readme
    from .statuses import Status

    # What the questions' folders give: the master Otter reads (the lesson with each question's
    # block) and the README's table of the questions.
    for path, changed in ((paths.MASTER, master.write(paths.LESSON, paths.MASTER)),
                          (paths.README, readme.write(paths.README))):
        if changed:
            console.print(f"  written       {path.relative_to(paths.ROOT)}")
    with console.status("building") as status:
        result = assign.build(verify=not args.no_verify, progress=lambda msg: status.update(msg))
    for kind, index in (("student", result.student), ("solutions", result.solutions)):
        for lang, path in index.items():
            console.print(f"{kind:>9} [{lang}]  {path.relative_to(paths.ROOT)}")
    console.print(f"autograder      {result.autograder_zip.relative_to(paths.ROOT)}")
    if result.solution_results is not None:
        outcome = run.Outcome("reference solution", Status.GRADED, results=result.solution_results)
        outcome.scores = points.of_results(result.solution_results)
        print("\nReference solution, graded by the new autograder:\n" + run.format_table(outcome))
    return 0


# Exit codes, the same for `run` and `grade`.
EXIT_GRADED, EXIT_NOT_GRADED, EXIT_USAGE = 0, 1, 2
RUN_LOG, RUN_FEEDBACK = "grading.log", "feedback.html"


def run_output(submission: Path | str, output: Path | str | None) -> Path:
    """Where `run` writes: ``--output``, else ``graded/<notebook name>/`` in the current folder; always
    absolute, since the grading's child processes run in folders of their own."""
    return (Path(output) if output else Path("graded") / Path(submission).stem).resolve()


# Shorter spellings of the limit options, kept for the commands people already have in their notes.
LIMIT_ALIASES = {"timeout_seconds": ("--timeout",), "memory_limit_mb": ("--memory-limit",)}


def add_limit_options(command: argparse.ArgumentParser) -> None:
    """The limits of one grading, the same options for `run` and `grade`, named like the settings."""
    from . import settings

    for key in settings.LIMITS:
        command.add_argument(
            settings.option(key), *LIMIT_ALIASES.get(key.name, ()), dest=key.name, type=float, default=None,
            metavar=key.limit.upper(), help=f"{key.help} (default: the zip's otter_config.json)")


def limits_of(args) -> dict:
    from . import settings

    return {key.name: getattr(args, key.name) for key in settings.LIMITS}


def _say(text: str, style: str = "") -> None:
    """Print text that may come from an upload: never read as markup, never a crash on odd characters."""
    from rich.text import Text

    from .classroom.ids import printable

    console.print(Text(printable(str(text)), style=style))


def cmd_run(args) -> int:
    import tempfile

    from . import contract, folders, run, settings
    from .classroom import feedback
    from .statuses import Status
    from .classroom.ids import printable
    from .grading.sandbox import SandboxUnavailable

    submission, autograder = Path(args.submission).absolute(), Path(args.autograder).absolute()
    if submission.is_dir():
        _say(f"{submission} is a folder; expected the path of a submitted .ipynb file. To grade a folder of "
             "submissions, use `fashion-kit grade`.", "red")
        return EXIT_USAGE
    if not submission.is_file():
        _say(f"No notebook at {submission}; expected the path of a submitted .ipynb file or the zip "
             "grader.export() made.", "red")
        return EXIT_USAGE
    if not autograder.is_file():
        console.print(f"[red]No autograder at {autograder}. Build it first: fashion-kit assign[/red]")
        return EXIT_USAGE
    grading = settings.from_zip(autograder).replace(**limits_of(args))
    out = folders.make_private(run_output(submission, args.output))
    # The files a student hands in beside the notebook (the saved model).
    extra_files = [submission.with_name(name) for name in contract.SUBMITTED_FILES
                   if name != contract.NOTEBOOK and submission.with_name(name).is_file()]
    try:
        with tempfile.TemporaryDirectory(prefix=".run-", dir=out) as work, \
                console.status(f"grading {printable(str(submission))}"):
            notebook = submission
            if submission.suffix.lower() == ".zip":  # what the export cell makes: read as `grade` reads it
                from .classroom import intake

                upload = intake.read_export(submission, Path(work), int(grading.max_notebook_mb * 2**20))
                notebook, extra_files = upload.notebook, upload.extra_files
                if upload.status == Status.INVALID:
                    outcome = run.Outcome(str(submission), Status.INVALID, upload.message,
                                          message_zh=upload.message_zh)
            if notebook is not None:
                outcome = run.grade(
                    notebook, autograder, out, settings=grading,
                    sandbox="none" if args.no_sandbox else "auto", extra_files=extra_files, workdir=work,
                )
    except SandboxUnavailable as e:
        _say(f"{e}\nTo grade a notebook you trust without a sandbox, add --no-sandbox.", "red")
        return EXIT_USAGE
    outcome.submission = printable(str(submission))
    record = {"id": printable(submission.stem), "status": outcome.status, "message": outcome.message,
              "message_zh": outcome.message_zh, "submitters": []}
    if outcome.status == Status.INVALID:  # the student still gets a page saying why nothing was graded
        _say(f"invalid: {outcome.message}\n{outcome.message_zh}", "red")
        (out / RUN_LOG).write_text(f"invalid: {outcome.message}\n{outcome.message_zh}\n", encoding="utf-8")
        (out / RUN_FEEDBACK).write_text(feedback.page(record, None, assignment=grading.assignment_name),
                                        encoding="utf-8")
        return EXIT_NOT_GRADED
    (out / RUN_LOG).write_text(outcome.log or "", encoding="utf-8")
    results = outcome.results if outcome.results is not None else run.read_results(out / contract.RESULTS_FILE)
    # The grader records the notebook's language in its results, read from the upload itself.
    language = ((results or {}).get("extra_data") or {}).get(contract.LANGUAGE_KEY) or feedback.DEFAULT_LANGUAGE
    (out / RUN_FEEDBACK).write_text(
        feedback.page(record, results, language=language, assignment=grading.assignment_name),
        encoding="utf-8",
    )
    print(printable(run.format_table(outcome)))
    if outcome.stopped:
        console.print(f"[yellow]{markup_escape(printable(outcome.message))}[/yellow]")
    if getattr(outcome, "sandbox", "") == "none":
        _say("Graded without a sandbox: the notebook ran with this user's rights.", "yellow")
    failed = outcome.status != Status.GRADED or bool(outcome.stopped)
    if failed and not outcome.stopped:
        console.print(f"[red]{markup_escape(outcome.status)}: {markup_escape(printable(outcome.message))}[/red]")
    written = [("results:", out / contract.RESULTS_FILE)] if (out / contract.RESULTS_FILE).is_file() else []
    written += [("log:", out / RUN_LOG), ("feedback:", out / RUN_FEEDBACK)]
    _say("\n".join(f"{label:<9} {path}" for label, path in written))
    return EXIT_NOT_GRADED if failed else EXIT_GRADED


INTERRUPTED = "Interrupted. Run the same command again to carry on where it stopped."


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def cmd_grade(args) -> int:
    from .classroom.schedule import Interrupts

    # First of all: from here on, SIGINT and SIGTERM only ask the batch to stop (see schedule.py).
    with Interrupts() as interrupts:
        return _grade(args, interrupts)


def _grade(args, interrupts) -> int:
    from . import run
    from .classroom import report
    from . import settings as settings_module
    from .classroom import batch, matching, outputs, progress, roster, store

    resume = INTERRUPTED
    if not Path(args.autograder).is_file():
        _say(f"No autograder at {args.autograder}. Build it first: fashion-kit assign", "red")
        return EXIT_USAGE
    settings = settings_module.from_zip(args.autograder).replace(**limits_of(args))
    # A roster or a pattern that cannot be used stops the batch before any grading.
    students = roster.read(args.roster) if args.roster else None
    pattern = matching.compile_pattern(args.match)
    owners = (lambda uploads: matching.owners(students, uploads, pattern)) if students else None
    if not args.no_sandbox and not args.cluster:  # refused once, before any work (on a cluster: by each worker)
        from .grading import sandbox as sandboxes

        sandboxes.choose("auto", settings=settings)
    # On a cluster (--cluster) the workers grade; the batch, its records and its outputs stay here.
    cluster_session, remote = ExitStack(), None
    if args.cluster:
        try:
            from .classroom import cluster as clusters
        except ImportError as e:
            _say(f"--cluster needs Dask ({e}); install it with: pip install 'fashion-kit[cluster]'", "red")
            return EXIT_USAGE
        remote = cluster_session.enter_context(clusters.session(
            args.cluster, args.cluster_config, args.autograder, settings,
            "none" if args.no_sandbox else "auto", interrupts.event, say=_say))
    from .classroom.resources import default_jobs

    # How many gradings run at once, for the time left (the batch decides the same way).
    jobs = args.jobs or (remote.in_flight() if remote is not None else default_jobs())
    reporter = progress.Reporter(console, jobs=jobs,
                                 columns=[remote.progress_column()] if remote is not None else [],
                                 note=remote.workers_note if remote is not None else None)

    try:
        result = batch.grade_class(
            args.source, args.output, args.autograder, settings=settings,
            sandbox="none" if args.no_sandbox else "auto",
            jobs=jobs, force=args.force,
            grade_fn=remote, use_watchdog=remote is None,
            retry_failed=args.retry_failed, duplicates=args.duplicates, student=args.student,
            stop=interrupts.event, on_start=reporter.start, on_done=reporter.done, group=args.group,
            owners=owners,
        )
    finally:
        reporter.stop()
        cluster_session.close()
    out = Path(args.output)
    if result.records:
        def results_of(record):
            return run.read_results(store.inside(out, record.id, store.RESULTS))

        written = outputs.for_batch(out, result, args.autograder, settings, args.roster, args.match)
        store.write(out, store.REPORT, data=report.html_report(result, results_of=results_of, roster=written))
        report.print_summary(result, console, roster=written)
        _say(f"gradebook: {out / store.GRADEBOOK}\nreport:    {out / store.REPORT}")
        for path in written.files:
            _say(f"{path.name + ':':<10} {path}")
        for note in written.notes:
            _say(note, "yellow")
    if remote is not None and remote.lost:
        resume = f"{remote.lost}\n{INTERRUPTED}"
    if result.interrupted or interrupts.event.is_set():
        _say(resume, "yellow")
        return 130
    return 0 if result.all_graded else 1


def cmd_cluster_credentials(args) -> int:
    try:
        from .classroom import cluster_tls

        creds = cluster_tls.make(args.folder)
    except ImportError as e:
        _say(f"cluster-credentials needs the cluster extra ({e}); install it with: pip install 'fashion-kit[cluster]'", "red")
        return EXIT_USAGE
    except cluster_tls.CredentialsError as e:
        _say(str(e), "red")
        return EXIT_USAGE
    folder = creds.ca_file.parent
    _say(f"Credentials for the grading cluster in {folder} (the folder 0700, each file 0600). Whoever holds them can "
         "run code on the scheduler, the workers and the grading command: copy the folder only to the machines "
         "of the cluster, to the same path, as the account that runs Dask there (scp -rp).")
    import socket

    host, port = args.host or socket.getfqdn(), args.port or cluster_tls.DEFAULT_PORT
    for where, line in cluster_tls.commands(creds, host, port):
        _say(f"{where}:")
        # Unwrapped, whatever the terminal's width: the lines are meant to be copied as they are.
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_check(args) -> int:
    from . import assign, autograder_zip, settings
    from .questions import master, readme

    grading = settings.load(paths.OTTER_CONFIG)  # a bad setting is refused here, as `assign` refuses it
    # What the lesson and the question folders give; the notebooks are then compared with the master.
    derived = ((paths.MASTER, master.text(paths.LESSON)), (paths.README, readme.with_table(paths.README)))
    stale = [f"{path.relative_to(paths.ROOT)} is out of date with the lesson and the question folders"
             for path, text in derived if not path.is_file() or path.read_text(encoding="utf-8") != text]
    stale += [
        f"{name} is out of date"
        for name, text in assign.expected_notebooks(settings=grading).items()
        if not (paths.ROOT / name).is_file() or (paths.ROOT / name).read_text(encoding="utf-8") != text
    ]
    stale += [f"{paths.AUTOGRADER_ZIP.relative_to(paths.ROOT)}: {why}" for why in autograder_zip.stale_reasons(paths.AUTOGRADER_ZIP)]
    for problem in stale:
        console.print(problem, style="red", markup=False)
    if stale:
        console.print("Run `fashion-kit assign` (and commit what it wrote).")
        return 1
    console.print("The master, the README's table, student/, solutions/ and the autograder zip match the lesson, "
                  "the question folders, otter_config.json and the kit.")
    return 0


def version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("fashion-kit")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def plain(text: str) -> str:
    """Help text as a terminal shows it: the docstrings' and settings' markup (``code``, `code`,
    [text](link)) written plainly."""
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)
    return re.sub(r"`{1,2}([^`]+)`{1,2}", r"\1", text)


class PlainHelp(argparse.HelpFormatter):
    """``--help`` with every description, option help and epilog made :func:`plain`."""

    def _format_text(self, text):
        return super()._format_text(plain(text))

    def _expand_help(self, action):
        return plain(super()._expand_help(action))


def _command(sub, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is both its entry in `--help` and its own description."""
    return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                          formatter_class=PlainHelp)


AUTOGRADER_HELP = "the autograder zip to grade with (default: %(default)s, built by `fashion-kit assign`)"
EXIT_CODES = ("exit codes (run and grade): 0 every submission graded; 1 some submission could not be graded "
              "(see its message and grading.log); 2 usage or input error (a missing file, a bad option); "
              "grade only: 130 interrupted (run it again to carry on)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fashion-kit", description=__doc__, epilog=EXIT_CODES, formatter_class=PlainHelp)
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                   help="print the version of fashion-kit and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = _command(sub, "data", "put Fashion-MNIST into the Keras cache (offline use)")
    s.add_argument("--source", help="folder with the four official .gz files (default: $FASHION_MNIST_DIR)")
    s.set_defaults(func=cmd_data)

    s = _command(sub, "assign", "build student/, solutions/ and autograder/autograder.zip")
    s.add_argument("--no-verify", action="store_true", help="skip grading the reference solution")
    s.set_defaults(func=cmd_assign)

    s = _command(sub, "run", "grade one submission with the built autograder, as Gradescope would")
    s.epilog = EXIT_CODES
    # Optional to argparse only so that a notebook named like an option (-rf.ipynb) is taken; see main().
    s.add_argument("submission", nargs="?",
                   help="a notebook (.ipynb), with the model file it saved beside it graded too, or the zip "
                        "grader.export() made")
    s.add_argument("--autograder", default=str(paths.AUTOGRADER_ZIP), help=AUTOGRADER_HELP)
    s.add_argument("--output", "-o", help="folder for results.json, grading.log and feedback.html "
                   "(default: graded/<notebook name>/)")
    add_limit_options(s)
    s.add_argument("--no-sandbox", action="store_true",
                   help="run the notebook without a sandbox (only for notebooks you trust)")
    s.set_defaults(func=cmd_run)

    s = _command(sub, "grade", "grade a whole class: a folder of notebooks or zips, or a Gradescope export")
    s.epilog = EXIT_CODES
    s.add_argument("source", help="a folder of notebooks / grader.export() zips, or a Gradescope export (zip or folder)")
    s.add_argument("--output", "-o", default="graded",
                   help="folder for the gradebook, report and results, made private to you (see --group) "
                        "(default: graded)")
    s.add_argument("--autograder", default=str(paths.AUTOGRADER_ZIP), help=AUTOGRADER_HELP)
    s.add_argument("--roster", help="the class list as CSV: a Canvas gradebook export, a Moodle participants "
                   "export, a Gradescope roster or any sheet with a student id, a name and an email; adds "
                   "students.csv with a row per student, 'missing' for those who handed in nothing (default: "
                   "the Gradescope export's own roster, if any)")
    s.add_argument("--match", metavar="REGEX",
                   help="how the LMS names the uploads: a regular expression searched in each upload's name, with "
                   "named groups sid, email, login, canvas_id, name, first_name or last_name, e.g. "
                   "'^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_' for Canvas's downloads (default: ids and names "
                   "found anywhere in the file name)")
    s.add_argument("--jobs", "-j", type=int, default=None, help="submissions graded at once (default: one per core, as many as the available memory holds)")
    add_limit_options(s)
    s.add_argument("--force", action="store_true", help="grade again what was already graded")
    s.add_argument("--retry-failed", action="store_true", help="grade again what timed out, ran out of memory or crashed")
    s.add_argument("--duplicates", choices=("latest", "highest", "both"), default="latest",
                   help="a student who handed in more than once: which upload counts (default: latest); all are kept and flagged")
    s.add_argument("--student", metavar="ID", help="grade again only this submission (its id in gradebook.csv)")
    s.add_argument("--group", metavar="GROUP",
                   help="let this group's members (teaching assistants) read the output folder "
                        "(default: only you)")
    s.add_argument("--no-sandbox", action="store_true",
                   help="run the notebooks without a sandbox (only for notebooks you trust; recorded in the gradebook)")
    s.add_argument("--cluster", metavar="ADDRESS|slurm|pbs|sge",
                   help="grade on a Dask cluster: a TLS scheduler's address (tls://host:8786, with the credentials "
                   "of fashion-kit cluster-credentials), or a batch system whose workers start as jobs (needs "
                   "--cluster-config); see docs/grading-on-a-cluster.md")
    s.add_argument("--cluster-config", metavar="FILE",
                   help="TOML file with the [tls] credentials of a tls:// scheduler (the cluster.toml that "
                   "cluster-credentials writes), or the batch jobs' cores, memory, walltime, queue and account "
                   "(--cluster slurm|pbs|sge)")
    s.set_defaults(func=cmd_grade)

    s = _command(sub, "cluster-credentials", "make the TLS credentials that let only your machines into a "
                 "grading cluster, and print the commands that use them")
    s.add_argument("folder", help="a new or empty folder for them (made 0700)")
    s.add_argument("--host", default=None,
                   help="the scheduler's host name, for the printed commands (default: this machine's)")
    s.add_argument("--port", type=int, default=None,
                   help="the scheduler's port, for the printed commands (default: Dask's, 8786)")
    s.set_defaults(func=cmd_cluster_credentials)

    s = _command(sub, "check", "verify the committed notebooks are up to date with the master")
    s.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    import signal

    from . import contract

    contract.skip_slow_optional_modules()  # seconds of every command's start-up, for nothing it uses
    # Until a command installs its own handling, SIGTERM stops the program as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if threading_is_main() else None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        p = parser()
        args, unknown = p.parse_known_args(argv)
    except KeyboardInterrupt:
        console.print(INTERRUPTED)
        return 130
    if args.command == "run" and args.submission is None and len(unknown) == 1 \
            and (not unknown[0].startswith("--") or Path(unknown[0]).exists()):
        args.submission, unknown = unknown[0], []  # a notebook named like an option: -rf.ipynb
    if unknown:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run" and args.submission is None:
        p.error("run: the following argument is required: submission")
    try:
        return args.func(args)
    except KeyboardInterrupt:  # before a command's own handling of Ctrl-C was in place
        console.print(INTERRUPTED)
        return 130
    except KitError as e:  # every error of the kit's reaches the user as one clear message
        _say(str(e), "red")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
