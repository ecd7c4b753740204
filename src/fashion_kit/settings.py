"""The grading settings: read from otter_config.json in this one place, typed and validated.

``otter_config.json`` is Otter's file; the kit's own settings live in its ``fashion_kit`` section,
next to Otter's top-level ``assignment_name`` and ``seed``, which the kit uses too. Every part of the
kit (the build, local and class grading, and the grader inside the autograder zip) gets its settings
from :func:`load`, once, and passes the resulting :class:`Settings` on; nothing re-reads the file.

:class:`Settings` is a pydantic model: each key is declared once with its type, its bounds, its
default and its help, and pydantic checks every value (strictly: ``"42"`` is not a number, ``true``
is not one either). A bad value stops with one message naming the key, the value found and what is
allowed, written from the same declaration as the README's table.
"""

from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .contract import OTTER_CONFIG_FILE
from .errors import KitError

SECTION = "fashion_kit"

# Gradescope's four moments a result can be shown to a student (its results.json "visibility").
Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
VISIBILITIES = typing.get_args(Visibility)

# Otter's keys that fashion-kit's grader does not read, and the kit's setting that says it instead.
NOT_READ = {"show_hidden": "score_visibility", "show_stdout": "log_visibility"}


class SettingsError(KitError, ValueError):
    """otter_config.json holds a value the kit cannot use; the message names the key."""


def _whole_float_as_int(value):
    # The command line's limits arrive as floats (--max-processes 256 is 256.0): a whole one is a
    # whole number; 64.5 stays a float and the strict int check refuses it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("blank")
    return value


Whole = Annotated[int, BeforeValidator(_whole_float_as_int)]
Text = Annotated[str, AfterValidator(_not_blank)]


def _key(default, help: str, *, top_level: bool = False, limit: str | None = None, grading: bool = True,
         **bounds):
    """One setting, declared once: its default, its bounds (pydantic's ``ge``, ``le``, ``gt``), its
    help; ``top_level`` for Otter's own keys (the rest live in the ``fashion_kit`` section); ``limit``
    is the unit of a limit of one grading that `fashion-kit run` and `grade` can override on the
    command line; ``grading`` False for a key applied only to the totals a class's LMS files carry,
    so changing it grades nothing again."""
    if bounds:
        bounds["allow_inf_nan"] = False
    return Field(default, description=help, **bounds,
                 json_schema_extra={"top_level": top_level, "limit": limit, "grading": grading})


class Settings(BaseModel):
    """Everything that decides a grade or limits a grading, each declared once with its default,
    its bounds and the help people read (README's table is tested against these)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    assignment_name: Text = _key("fashion_mnist", "the assignment's name (Otter's)", top_level=True)
    seed: Whole = _key(42, "seeds NumPy, `random` and TensorFlow before the notebook runs (Otter's)",
                       top_level=True, ge=0, le=2**32 - 1)
    min_test_accuracy: float = _key(
        0.85, "the test accuracy q9 requires ([how it was calibrated](docs/threshold-calibration.md))", ge=0, le=1)
    challenge_bonus_points: float = _key(1.0, "the bonus (0 turns it off)", ge=0, le=1000)
    challenge_bonus_threshold: float = _key(
        0.90, "test accuracy the optional challenge needs for its bonus ([the challenge](docs/challenge.md))",
        ge=0, le=1)
    # CPU seconds, not wall time: a loaded machine trains more slowly, but no less.
    challenge_cpu_seconds: float = _key(
        360.0, "CPU seconds the grader trains each challenge recipe for (360: 3 minutes of both cores of a "
        "2-core machine); training stops when they are used ([the challenge](docs/challenge.md))", ge=1, le=24 * 3600)
    # Gradescope's own limit must be longer than timeout_seconds.
    timeout_seconds: float = _key(
        900.0, "wall-clock limit for grading one submission; a stopped notebook keeps the points it earned",
        limit="s", ge=1, le=24 * 3600)
    memory_limit_mb: float = _key(4096.0, "memory limit per submission (the notebook's whole process tree)",
                                  limit="MB", ge=256, le=1024 * 1024)
    max_notebook_mb: float = _key(20.0, "larger notebooks are refused with a message", limit="MB", gt=0, le=1024)
    max_work_folder_mb: float = _key(2048.0, "what the notebook may write while it is graded",
                                     limit="MB", ge=16, le=1024 * 1024)
    max_processes: Whole = _key(
        512, "processes and threads the notebook may run at once (TensorFlow needs a few dozen)",
        limit="processes", ge=64, le=100000)

    # When students see what on Gradescope (results.json's visibility of each part).
    check_visibility: Visibility = _key(
        "visible", "when students see each question's check on Gradescope (the words of the notebook's own check)")
    score_visibility: Visibility = _key(
        "after_published", "when students see each question's score and the grader's message on Gradescope")
    log_visibility: Visibility = _key(
        "after_published", "when students see the grading's log on Gradescope (instructors always do)")

    # An LMS's download marks a late upload but says nothing of how late (Canvas's file names carry
    # `_LATE_` and no time), so the only honest policy is one flat share per late upload.
    late_penalty_percent: float = _key(
        0.0, "share of the total taken off an upload the LMS marked late (Canvas's `_LATE_` file names), in "
        "`canvas.csv`, `moodle.csv` and the feedback page; 0 takes nothing off", grading=False, ge=0, le=100)

    def replace(self, **overrides) -> "Settings":
        """A copy with ``overrides`` (None values are ignored), each validated like the file's."""
        changes = {key: value for key, value in overrides.items() if value is not None}
        return _validated({**self.to_dict(), **changes}, {name: name for name in changes})

    def to_dict(self) -> dict:
        return self.model_dump()

    def fingerprint(self) -> str:
        """Identifies every value that can change a grade: same fingerprint, same grading."""
        grading = {k.name: getattr(self, k.name) for k in KEYS if k.grading}
        return hashlib.sha256(json.dumps(grading, sort_keys=True).encode()).hexdigest()


def _plain(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Key:
    """One declared setting, as the rest of the kit reads it: its name, default, help, whether it is
    Otter's (top level), its unit when it is a limit of one grading, whether it changes a grade, and
    what it allows (``allowed`` for messages, ``bounds`` for the README's table)."""

    name: str
    default: Any
    help: str
    top_level: bool
    limit: str | None
    grading: bool
    allowed: str
    bounds: str


def _declared(name: str, field) -> Key:
    """The :class:`Key` of one of the model's fields: its range is read from pydantic's own
    constraints, so the error messages and the README's table say what the validation does."""
    choices = typing.get_origin(field.annotation) is Literal and typing.get_args(field.annotation)
    limits = {type(m).__name__: getattr(m, type(m).__name__.lower()) for m in field.metadata
              if isinstance(m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le))}
    if choices:
        allowed, bounds = f"one of {', '.join(choices)}", " · ".join(f"`{c}`" for c in choices)
    elif not limits:
        allowed, bounds = "a non-empty text", "non-empty text"
    else:
        whole = field.annotation is int
        low, high = limits.get("Ge", limits.get("Gt")), limits["Le"]
        above = "Gt" in limits
        allowed = (f"{'a whole number' if whole else 'a number'} {'above' if above else 'from'} {_plain(low)} "
                   f"to {_plain(high)}")
        bounds = f"{'>' if above else '≥'} {_plain(low)}, ≤ {_plain(high)}" + (", whole" if whole else "")
    extra = field.json_schema_extra
    return Key(name, field.default, field.description, extra["top_level"], extra["limit"], extra["grading"],
               allowed, bounds)


KEYS = tuple(_declared(name, field) for name, field in Settings.model_fields.items())
KIT_KEYS = tuple(k for k in KEYS if not k.top_level)
# The limits of one grading, which `run` and `grade` take as options named like the keys.
LIMITS = tuple(k for k in KEYS if k.limit)
_BY_NAME = {k.name: k for k in KEYS}


def _validated(values: dict, names: dict[str, str], where: str = "") -> Settings:
    """``Settings`` from ``values``, or one SettingsError for the first bad key: its name as the
    reader wrote it (``names``), the value found and what is allowed."""
    try:
        return Settings.model_validate(values)
    except ValidationError as e:
        error = e.errors()[0]
        key = str(error["loc"][0])
        prefix = f"{where}: " if where else ""
        if error["type"] == "extra_forbidden":
            kit = [k.name for k in KIT_KEYS]
            raise SettingsError(f"{prefix}unknown setting {names.get(key, key)}; expected one of "
                                f"{', '.join(kit)}.") from None
        raise SettingsError(f"{prefix}{names.get(key, key)} must be {_BY_NAME[key].allowed}; "
                            f"found {error['input']!r}.") from None


def option(key: Key) -> str:
    """The command-line option of a limit: the key's own name (``--timeout-seconds``)."""
    return "--" + key.name.replace("_", "-")


def markdown_table() -> str:
    """The settings table of the README: the kit's keys, their defaults and what they mean."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key in KIT_KEYS:
        default = f"`{key.default}`" if isinstance(key.default, str) else f"{key.default:g}"
        rows.append(f"| `{key.name}` | {default} | {key.bounds} | {key.help} |")
    return "\n".join(rows)


def parse(config: dict, where: str = OTTER_CONFIG_FILE) -> Settings:
    """Settings from the content of an otter_config.json."""
    if not isinstance(config, dict):
        raise SettingsError(f"{where} must hold a JSON object; found {type(config).__name__}.")
    section = config.get(SECTION, {})
    if not isinstance(section, dict):
        raise SettingsError(f"{where}: \"{SECTION}\" must be an object; found {type(section).__name__}.")
    for otter_key, instead in NOT_READ.items():
        if otter_key in config:
            raise SettingsError(
                f"{where}: {otter_key} is Otter's setting, which fashion-kit's grader does not read; remove it and "
                f"set {SECTION}.{instead} instead (one of {', '.join(VISIBILITIES)}).")
    otters = sorted(k for k in section if k in _BY_NAME and _BY_NAME[k].top_level)
    if otters:  # Otter's own key written inside the kit's section: Otter would not see it there
        raise SettingsError(f"{where}: {SECTION}.{otters[0]} is Otter's setting; set it at the top level of "
                            f"{where}, beside assignment_name.")
    top = {k.name: config[k.name] for k in KEYS if k.top_level and k.name in config}
    values = {**section, **top}
    names = {**{k: f"{SECTION}.{k}" for k in section}, **{k: k for k in top}}
    return _validated(values, names, where)


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
            raw = zf.read(OTTER_CONFIG_FILE)
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
