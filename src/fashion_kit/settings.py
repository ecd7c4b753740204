"""The grading settings: read from otter_config.json in this one place, typed and validated.

``otter_config.json`` is Otter's file; the kit's own settings live in its ``fashion_kit`` section,
next to Otter's top-level ``assignment_name`` and ``seed``, which the kit uses too. Every part of the
kit (the build, local and class grading, and the grader inside the autograder zip) gets its settings
from :func:`load`, once, and passes the resulting :class:`Settings` on; nothing re-reads the file.
A bad value stops with one message naming the key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import KitError

SECTION = "fashion_kit"


class SettingsError(KitError, ValueError):
    """otter_config.json holds a value the kit cannot use; the message names the key."""


def _plain(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _number(low: float, high: float, *, whole: bool = False, low_open: bool = False):
    def check(key: str, value):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and value <= high
        ok = ok and (not whole or float(value).is_integer())
        if not ok:
            kind = "a whole number" if whole else "a number"
            bound = f"above {low:g}" if low_open else f"from {low:g}"
            raise SettingsError(f"{key} must be {kind} {bound} to {high:g}; found {value!r}.")
        return int(value) if whole else float(value)
    check.bounds = f"{'>' if low_open else '≥'} {_plain(low)}, ≤ {_plain(high)}" + (", whole" if whole else "")
    return check


def _text(key: str, value):
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{key} must be a non-empty text; found {value!r}.")
    return value


_text.bounds = "non-empty text"


# Gradescope's four moments a result can be shown to a student (its results.json "visibility").
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


def _one_of(choices: tuple[str, ...]):
    def check(key: str, value):
        if value not in choices:
            raise SettingsError(f"{key} must be one of {', '.join(choices)}; found {value!r}.")
        return value
    check.bounds = " · ".join(f"`{c}`" for c in choices)
    return check


# Otter's keys that fashion-kit's grader does not read, and the kit's setting that says it instead.
NOT_READ = {"show_hidden": "score_visibility", "show_stdout": "log_visibility"}


def _key(default, check, help: str, *, top_level: bool = False, limit: str | None = None, grading: bool = True):
    """One setting, declared once: its default, its check, its help; ``top_level`` for Otter's own
    keys (the rest live in the ``fashion_kit`` section); ``limit`` is the unit of a limit of one
    grading that `fashion-kit run` and `grade` can override on the command line; ``grading`` False
    for a key applied only to the totals a class's LMS files carry, so changing it grades nothing again."""
    return dataclasses.field(default=default, metadata={
        "check": check, "help": help, "top_level": top_level, "limit": limit, "grading": grading})


@dataclass(frozen=True)
class Settings:
    """Everything that decides a grade or limits a grading, each declared once with its default,
    its check and the help people read (README's table is tested against these)."""

    assignment_name: str = _key("fashion_mnist", _text, "the assignment's name (Otter's)", top_level=True)
    seed: int = _key(42, _number(0, 2**32 - 1, whole=True),
                     "seeds NumPy, `random` and TensorFlow before the notebook runs (Otter's)", top_level=True)
    min_test_accuracy: float = _key(
        0.85, _number(0, 1), "the test accuracy q9 requires ([how it was calibrated](docs/threshold-calibration.md))")
    challenge_bonus_points: float = _key(1.0, _number(0, 1000), "the bonus (0 turns it off)")
    challenge_bonus_threshold: float = _key(
        0.90, _number(0, 1), "test accuracy the optional challenge needs for its bonus ([the challenge](docs/challenge.md))")
    # CPU seconds, not wall time: a loaded machine trains more slowly, but no less.
    challenge_cpu_seconds: float = _key(
        360.0, _number(1, 24 * 3600),
        "CPU seconds the grader trains each challenge recipe for (360: 3 minutes of both cores of a 2-core "
        "machine); training stops when they are used ([the challenge](docs/challenge.md))")
    # Gradescope's own limit must be longer than timeout_seconds.
    timeout_seconds: float = _key(
        900.0, _number(1, 24 * 3600),
        "wall-clock limit for grading one submission; a stopped notebook keeps the points it earned", limit="s")
    memory_limit_mb: float = _key(4096.0, _number(256, 1024 * 1024),
                                  "memory limit per submission (the notebook's whole process tree)", limit="MB")
    max_notebook_mb: float = _key(20.0, _number(0, 1024, low_open=True),
                                  "larger notebooks are refused with a message", limit="MB")
    max_work_folder_mb: float = _key(2048.0, _number(16, 1024 * 1024),
                                     "what the notebook may write while it is graded", limit="MB")
    max_processes: int = _key(512, _number(64, 100000, whole=True),
                              "processes and threads the notebook may run at once (TensorFlow needs a few dozen)",
                              limit="processes")

    # When students see what on Gradescope (results.json's visibility of each part).
    check_visibility: str = _key(
        "visible", _one_of(VISIBILITIES),
        "when students see each question's check on Gradescope (the words of the notebook's own check)")
    score_visibility: str = _key(
        "after_published", _one_of(VISIBILITIES),
        "when students see each question's score and the grader's message on Gradescope")
    log_visibility: str = _key("after_published", _one_of(VISIBILITIES),
                               "when students see the grading's log on Gradescope (instructors always do)")

    # An LMS's download marks a late upload but says nothing of how late (Canvas's file names carry
    # `_LATE_` and no time), so the only honest policy is one flat share per late upload.
    late_penalty_percent: float = _key(
        0.0, _number(0, 100),
        "share of the total taken off an upload the LMS marked late (Canvas's `_LATE_` file names), in "
        "`canvas.csv`, `moodle.csv` and the feedback page; 0 takes nothing off", grading=False)

    def replace(self, **overrides) -> "Settings":
        """A copy with ``overrides`` (None values are ignored), each validated like the file's."""
        keys = {k.name: k for k in KEYS}
        changes = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in keys:
                raise SettingsError(f"{key} is not a grading setting; expected one of {', '.join(keys)}.")
            changes[key] = keys[key].metadata["check"](key, value)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in KEYS}

    def fingerprint(self) -> str:
        """Identifies every value that can change a grade: same fingerprint, same grading."""
        grading = {f.name: getattr(self, f.name) for f in KEYS if f.metadata["grading"]}
        return hashlib.sha256(json.dumps(grading, sort_keys=True).encode()).hexdigest()


KEYS = dataclasses.fields(Settings)
KIT_KEYS = tuple(k for k in KEYS if not k.metadata["top_level"])
# The limits of one grading, which `run` and `grade` take as options named like the keys.
LIMITS = tuple(k for k in KEYS if k.metadata["limit"])


def option(key: dataclasses.Field) -> str:
    """The command-line option of a limit: the key's own name (``--timeout-seconds``)."""
    return "--" + key.name.replace("_", "-")


def markdown_table() -> str:
    """The settings table of the README: the kit's keys, their defaults and what they mean."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key in KIT_KEYS:
        default = f"`{key.default}`" if isinstance(key.default, str) else f"{key.default:g}"
        rows.append(f"| `{key.name}` | {default} | {key.metadata['check'].bounds} | {key.metadata['help']} |")
    return "\n".join(rows)


def parse(config: dict, where: str = "otter_config.json") -> Settings:
    """Settings from the content of an otter_config.json."""
    if not isinstance(config, dict):
        raise SettingsError(f"{where} must hold a JSON object; found {type(config).__name__}.")
    section = config.get(SECTION, {})
    if not isinstance(section, dict):
        raise SettingsError(f"{where}: \"{SECTION}\" must be an object; found {type(section).__name__}.")
    kit = [k.name for k in KIT_KEYS]
    for otter_key, instead in NOT_READ.items():
        if otter_key in config:
            raise SettingsError(
                f"{where}: {otter_key} is Otter's setting, which fashion-kit's grader does not read; remove it and "
                f"set {SECTION}.{instead} instead (one of {', '.join(VISIBILITIES)}).")
    unknown = sorted(set(section) - set(kit))
    if unknown:
        raise SettingsError(f"{where}: unknown setting {SECTION}.{unknown[0]}; expected one of {', '.join(kit)}.")
    values = {}
    for key in KEYS:
        found, name = (config, key.name) if key.metadata["top_level"] else (section, f"{SECTION}.{key.name}")
        if key.name in found:
            values[key.name] = key.metadata["check"](f"{where}: {name}", found[key.name])
    return Settings(**values)


def load(path: Path | str) -> Settings:
    """Settings from the otter_config.json at ``path``."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path} does not exist; expected the assignment's otter_config.json.") from None
    except (OSError, ValueError) as e:
        raise SettingsError(f"{path} is not readable JSON ({e}).") from e
    return parse(config, path.name)


def from_zip(autograder_zip: Path | str) -> Settings:
    """The settings an autograder zip was built with: its own copy of otter_config.json."""
    import zipfile

    autograder_zip = Path(autograder_zip)
    try:
        with zipfile.ZipFile(autograder_zip) as zf:
            raw = zf.read("otter_config.json")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise SettingsError(
            f"{autograder_zip} is not a usable autograder zip ({e}); expected the otter_config.json "
            "that `fashion-kit assign` puts in it. Build it again: fashion-kit assign"
        ) from e
    try:
        config = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise SettingsError(f"{autograder_zip}: its otter_config.json is not valid JSON ({e}).") from e
    return parse(config, f"{autograder_zip.name}:otter_config.json")
