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

SECTION = "fashion_kit"


class SettingsError(ValueError):
    """otter_config.json holds a value the kit cannot use; the message names the key."""


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
    return check


def _text(key: str, value):
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{key} must be a non-empty text; found {value!r}.")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything that decides a grade or limits a grading. Defaults are the kit's own choices."""

    assignment_name: str = "fashion_mnist"
    seed: int = 42
    # q9: the saved model's accuracy on the grader's own copy of the test set must reach this.
    min_test_accuracy: float = 0.85
    # The optional challenge: extra points at or above the threshold (0 turns the bonus off).
    challenge_bonus_points: float = 1.0
    challenge_bonus_threshold: float = 0.90
    # Limits of one grading. Gradescope's own limit must be longer than timeout_seconds.
    timeout_seconds: float = 900.0
    memory_limit_mb: float = 4096.0
    max_notebook_mb: float = 20.0
    # What the notebook may leave in its work folder, and how many processes it may run at once.
    max_work_folder_mb: float = 2048.0
    max_processes: int = 512

    # Where each field lives in otter_config.json, and how it is checked.
    _TOP_LEVEL = {"assignment_name": _text, "seed": _number(0, 2**32 - 1, whole=True)}
    _KIT = {
        "min_test_accuracy": _number(0, 1),
        "challenge_bonus_points": _number(0, 1000),
        "challenge_bonus_threshold": _number(0, 1),
        "timeout_seconds": _number(1, 24 * 3600),
        "memory_limit_mb": _number(256, 1024 * 1024),
        "max_notebook_mb": _number(0, 1024, low_open=True),
        "max_work_folder_mb": _number(16, 1024 * 1024),
        "max_processes": _number(64, 100000, whole=True),
    }

    def replace(self, **overrides) -> "Settings":
        """A copy with ``overrides`` (None values are ignored), each validated like the file's."""
        checks = {**self._TOP_LEVEL, **self._KIT}
        changes = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in checks:
                raise SettingsError(f"{key} is not a grading setting; expected one of {', '.join(checks)}.")
            changes[key] = checks[key](key, value)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def fingerprint(self) -> str:
        """Identifies every value that can change a grade: same fingerprint, same grading."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def parse(config: dict, where: str = "otter_config.json") -> Settings:
    """Settings from the content of an otter_config.json."""
    if not isinstance(config, dict):
        raise SettingsError(f"{where} must hold a JSON object; found {type(config).__name__}.")
    section = config.get(SECTION, {})
    if not isinstance(section, dict):
        raise SettingsError(f"{where}: \"{SECTION}\" must be an object; found {type(section).__name__}.")
    unknown = sorted(set(section) - set(Settings._KIT))
    if unknown:
        raise SettingsError(
            f"{where}: unknown setting {SECTION}.{unknown[0]}; expected one of {', '.join(Settings._KIT)}."
        )
    values = {}
    for key, check in Settings._TOP_LEVEL.items():
        if key in config:
            values[key] = check(f"{where}: {key}", config[key])
    for key, check in Settings._KIT.items():
        if key in section:
            values[key] = check(f"{where}: {SECTION}.{key}", section[key])
    return Settings(**values)


# Keys of otter_config.json that are secrets (Otter's Gradescope token for PDF uploads).
SECRET_KEYS = ("token",)


def without_secrets(path: Path | str) -> str:
    """The otter_config.json at ``path`` as text for the sandboxed notebook's copy: Otter there needs
    the settings, never a secret the instructor put in the file."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in SECRET_KEYS:
        config.pop(key, None)
    return json.dumps(config, indent=4)


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
