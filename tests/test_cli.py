"""The `fashion-kit` command line: `run`'s defaults, outputs and exit codes (with the grading itself
replaced, so these are fast), the exit codes `run` and `grade` share, `--version` and the help."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from fashion_kit import cli, contract, run

OUTPUT = "q1_load_data: 陣列形狀不對 / Expected training_images.shape == (60000, 28, 28), found <b>(1, 2)</b>"


def autograder(tmp_path: Path, timeout=900) -> Path:
    path = tmp_path / "autograder.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("otter_config.json", json.dumps({"assignment_name": "fashion_mnist",
                                                     "fashion_kit": {"timeout_seconds": timeout}}))
    return path


def notebook(folder: Path, name="anna.ipynb", language="en") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"cells": [], "metadata": {"fashion_kit": {"language": language}},
                                "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return path


@pytest.fixture
def fake_grade(monkeypatch):
    """run.grade replaced: records how it was called and writes what a grading writes."""
    calls = []
    outcome = {"status": "graded", "message": "", "stopped": ""}

    def grade(path, zip_path, out, **kwargs):
        calls.append(SimpleNamespace(path=Path(path), zip=Path(zip_path), out=Path(out),
                                     content=Path(path).read_bytes() if Path(path).is_file() else None, **kwargs))
        results = {"tests": [{"name": "q1_load_data", "score": 0.0, "max_score": 1.0, "visibility": "after_published",
                              "output": OUTPUT}], "score": 0.0}
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "results.json").write_text(json.dumps(results), encoding="utf-8")
        return SimpleNamespace(submission=str(path), results=results, log="kernel said hello\n", message_zh="",
                               scores={"q1_load_data": (0.0, 1.0)}, seconds=1.0, peak_memory_mb=1.0, **outcome)

    monkeypatch.setattr(run, "grade", grade)
    monkeypatch.setattr(run, "format_table", lambda outcome: f"table of {outcome.status}")
    return SimpleNamespace(calls=calls, outcome=outcome)


def test_run_writes_results_log_and_feedback_to_graded_notebook_name(tmp_path, monkeypatch, fake_grade):
    monkeypatch.chdir(tmp_path)
    nb = notebook(tmp_path / "uploads", language="zh-TW")
    (nb.parent / contract.MODEL_FILES[0]).write_bytes(b"model")
    (nb.parent / "challenge_model.keras").write_bytes(b"no entry any more: the grader trains the recipe")
    assert cli.main(["run", str(nb), "--autograder", str(autograder(tmp_path))]) == cli.EXIT_GRADED
    (call,) = fake_grade.calls
    assert call.out == tmp_path / "graded" / "anna", "absolute: the grading runs in folders of its own"
    assert call.sandbox == "auto" and call.settings.timeout_seconds == 900
    assert call.extra_files == [nb.parent / contract.MODEL_FILES[0]], "the saved model travels with its notebook"
    out = tmp_path / "graded" / "anna"
    assert (out / "results.json").is_file()
    assert (out / "grading.log").read_text(encoding="utf-8") == "kernel said hello\n"
    page = (out / "feedback.html").read_text(encoding="utf-8")
    assert "評分回饋 / Grading feedback" in page, "in the notebook's language, English beside it"
    assert "found &lt;b&gt;(1, 2)&lt;/b&gt;" in page and "<b>(1, 2)" not in page


def test_run_options_override_the_defaults(tmp_path, fake_grade):
    nb = notebook(tmp_path)
    out = tmp_path / "elsewhere"
    code = cli.main(["run", str(nb), "--autograder", str(autograder(tmp_path)), "--output", str(out),
                     "--timeout", "30", "--no-sandbox"])
    assert code == cli.EXIT_GRADED
    (call,) = fake_grade.calls
    assert call.out == out and call.sandbox == "none" and call.settings.timeout_seconds == 30
    assert call.extra_files == []
    assert {p.name for p in out.iterdir()} == {"results.json", "grading.log", "feedback.html"}
    assert "Grading feedback" in (out / "feedback.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("status, stopped", [("error", ""), ("timeout", ""), ("graded", "timeout")])
def test_run_exits_1_when_the_submission_could_not_be_graded(tmp_path, fake_grade, status, stopped):
    fake_grade.outcome.update(status=status, stopped=stopped, message="the kernel died")
    out = tmp_path / "out"
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(autograder(tmp_path)),
                     "-o", str(out)]) == cli.EXIT_NOT_GRADED
    assert (out / "grading.log").is_file(), "the log the message points to exists"


def test_run_exits_2_on_bad_input_without_grading(tmp_path, fake_grade):
    zip_path = autograder(tmp_path)
    assert cli.main(["run", str(tmp_path / "missing.ipynb"), "--autograder", str(zip_path)]) == cli.EXIT_USAGE
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(tmp_path / "none.zip")]) == cli.EXIT_USAGE
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(broken)]) == cli.EXIT_USAGE
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(zip_path), "--timeout", "0"]) == cli.EXIT_USAGE
    assert fake_grade.calls == []
    with pytest.raises(SystemExit) as e:
        cli.main(["run"])
    assert e.value.code == cli.EXIT_USAGE


def test_an_invalid_notebook_exits_1_with_a_page_saying_why(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("an invalid notebook must not reach the grading core")

    monkeypatch.setattr(run.supervise, "run", never)  # the real grade: it checks the notebook first
    bad = tmp_path / "empty.ipynb"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    assert cli.main(["run", str(bad), "--autograder", str(autograder(tmp_path)), "-o", str(out),
                     "--no-sandbox"]) == cli.EXIT_NOT_GRADED
    log = (out / "grading.log").read_text(encoding="utf-8")
    page = (out / "feedback.html").read_text(encoding="utf-8")
    assert log.startswith("invalid:") and "沒有評分結果" in page and "No results" not in log


def test_run_without_bubblewrap_says_so_and_exits_2(tmp_path, monkeypatch):
    from fashion_kit.grading.sandbox import SandboxUnavailable

    def no_sandbox(*args, **kwargs):
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(run, "grade", no_sandbox)
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(autograder(tmp_path)),
                     "-o", str(tmp_path / "out")]) == cli.EXIT_USAGE


def test_grade_exits_2_on_a_missing_input_like_run(tmp_path):
    assert cli.main(["grade", str(tmp_path / "no-such-folder"), "--autograder", str(autograder(tmp_path)),
                     "--output", str(tmp_path / "out")]) == cli.EXIT_USAGE


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"fashion-kit {version('fashion-kit')}"


def _subcommands(parser: argparse.ArgumentParser) -> tuple[dict[str, argparse.ArgumentParser], dict[str, str]]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices), {c.dest: c.help for c in action._choices_actions}


def _without_help(name: str) -> list[str]:
    parser = cli.parser()
    commands, summaries = _subcommands(parser)
    sub = commands[name]
    missing = [] if summaries.get(name) and sub.description else ["no description"]
    for action in sub._actions + parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{'/'.join(action.option_strings) or action.dest} has no help")
    return missing


def test_the_commands_are_there():
    assert set(_subcommands(cli.parser())[0]) >= {"data", "assign", "run", "grade", "check"}


@pytest.mark.parametrize("name", sorted(set(_subcommands(cli.parser())[0]) - {"grade"}))
def test_every_subcommand_has_a_description_and_every_option_help(name):
    assert _without_help(name) == []


def test_grade_has_a_description_and_every_option_help():
    assert _without_help("grade") == []


def test_help_documents_the_exit_codes():
    commands, _ = _subcommands(cli.parser())
    for name in ("run", "grade"):
        assert "2 usage or input error" in commands[name].format_help()


def test_run_prints_no_results_path_when_the_grading_wrote_none(tmp_path, monkeypatch, fake_grade, capsys):
    monkeypatch.setattr(run, "grade", lambda path, zip_path, out, **kw: SimpleNamespace(
        submission=str(path), results=None, log="", scores={}, seconds=1.0, peak_memory_mb=1.0,
        status="error", message="the autograder exited with code 1", message_zh="", stopped="", sandbox="bubblewrap"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(notebook(tmp_path)), "--autograder", str(autograder(tmp_path))]) == cli.EXIT_NOT_GRADED
    printed = capsys.readouterr()
    lines = (printed.out + printed.err).splitlines()
    assert not [line for line in lines if line.startswith("results:")], lines
    assert any(line.startswith("log:") for line in lines), lines


def test_run_and_grade_share_the_limit_options_named_like_the_settings():
    from fashion_kit import settings

    for command in ("run", "grade"):
        sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
        options = {o for action in sub._actions for o in action.option_strings}
        assert {settings.option(key) for key in settings.LIMITS} <= options, command
        args = sub.parse_args(["x.ipynb", "--max-processes", "100", "--memory-limit-mb", "300"])
        assert cli.limits_of(args)["max_processes"] == 100 and cli.limits_of(args)["memory_limit_mb"] == 300


def test_every_error_of_the_kits_is_one_message_and_its_exit_code(tmp_path, capsys):
    from fashion_kit import errors

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("otter_config.json", json.dumps({"fashion_kit": {"timeout_seconds": -1}}))
    (tmp_path / "class").mkdir()
    assert cli.main(["grade", str(tmp_path / "class"), "--autograder", str(bad), "-o", str(tmp_path / "out")]) == 2
    printed = capsys.readouterr()
    assert "timeout_seconds must be a number" in printed.err and "Traceback" not in printed.err
    from fashion_kit import autograder_zip, data, questions, settings
    from fashion_kit.classroom import batch, intake, lock, roster
    from fashion_kit.grading import core, sandbox

    usage = (settings.SettingsError, roster.RosterError, batch.BatchError, intake.InputError, lock.Busy,
             sandbox.SandboxUnavailable, questions.NoQuestions, core.AutograderBroken)
    assert all(issubclass(e, errors.KitError) and e.exit_code == cli.EXIT_USAGE for e in usage)
    not_done = (autograder_zip.BuildError, data.DataError, sandbox.SandboxBreach)
    assert all(issubclass(e, errors.NotDone) and e.exit_code == cli.EXIT_NOT_GRADED for e in not_done)


def test_run_grades_the_zip_the_export_cell_makes_as_grade_does(tmp_path, monkeypatch, fake_grade):
    """The export cell tells students to upload its zip: `run` takes it, the notebook and the saved
    model inside; a zip without a notebook is an invalid submission with its reason in both languages."""
    import stat

    monkeypatch.chdir(tmp_path)
    nb = notebook(tmp_path / "made", name="fashion_mnist (1).ipynb")
    export = tmp_path / "fashion_mnist_2026_12_06T10_00_00.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.write(nb, nb.name)
        zf.writestr(contract.MODEL_FILES[0], b"model")
        zf.writestr(".OTTER_LOG", b"")
    assert cli.main(["run", str(export), "--autograder", str(autograder(tmp_path))]) == cli.EXIT_GRADED
    (call,) = fake_grade.calls
    assert call.content == nb.read_bytes() and [p.name for p in call.extra_files] == [contract.MODEL_FILES[0]]
    out = tmp_path / "graded" / export.stem
    assert (out / "results.json").is_file() and stat.S_IMODE(out.stat().st_mode) == 0o700

    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", b"hello")
    assert cli.main(["run", str(empty), "--autograder", str(autograder(tmp_path))]) == cli.EXIT_NOT_GRADED
    page = (tmp_path / "graded" / "empty" / "feedback.html").read_text(encoding="utf-8")
    assert "no notebook" in page and len(fake_grade.calls) == 1


def test_check_refuses_a_setting_out_of_range_naming_the_key_and_the_value(tmp_path, monkeypatch, capsys):
    """`check` validates otter_config.json as `assign` does, before comparing anything."""
    from fashion_kit import assign, paths

    config = json.loads(paths.OTTER_CONFIG.read_text(encoding="utf-8"))
    config["fashion_kit"]["min_test_accuracy"] = 1.5
    bad = tmp_path / "otter_config.json"
    bad.write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setattr(paths, "OTTER_CONFIG", bad)
    monkeypatch.setattr(assign, "expected_notebooks", lambda **_: pytest.fail("compared before validating"))
    assert cli.main(["check"]) == cli.EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "fashion_kit.min_test_accuracy must be a number from 0 to 1; found 1.5" in err, err


def test_check_finds_a_master_or_a_readme_table_behind_the_question_folders(tmp_path, monkeypatch, capsys):
    """`check` compares the master and the README's table with what the lesson and the folders give."""
    from fashion_kit import assign, autograder_zip, paths
    from fashion_kit.questions import readme as table

    originals = {"MASTER": paths.MASTER.read_text(encoding="utf-8"), "README": paths.README.read_text(encoding="utf-8")}
    copies = {"MASTER": tmp_path / "assignment" / paths.MASTER.name, "README": tmp_path / "README.md"}
    copies["MASTER"].parent.mkdir()
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    for name, path in copies.items():
        monkeypatch.setattr(paths, name, path)
    monkeypatch.setattr(assign, "expected_notebooks", lambda **_: {})
    monkeypatch.setattr(autograder_zip, "stale_reasons", lambda _: [])
    edits = {"MASTER": ("points: 2", "points: 3"), "README": (table.END, "| q99_by_hand | a row | 1 |\n" + table.END)}
    for changed in (False, True):
        for name, path in copies.items():
            old, new = edits[name]
            path.write_text(originals[name].replace(old, new if changed else old, 1), encoding="utf-8")
        assert cli.main(["check"]) == (1 if changed else 0)
        out = " ".join("".join(capsys.readouterr()).split())  # the console wraps long lines
        for shown in ("assignment/fashion_mnist.ipynb", "README.md"):
            assert (f"{shown} is out of date with the lesson and the question folders" in out) is changed, out
