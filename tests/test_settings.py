"""The grading settings: declared once, read once, and what people read about them is what they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fashion_kit import paths, settings
from fashion_kit.settings import Settings


def test_the_readme_table_is_the_one_the_declarations_give():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in readme, "regenerate it: python -c 'from fashion_kit import settings; " \
                                                "print(settings.markdown_table())'"


def test_the_class_guides_limits_table_gives_each_limits_default_and_option():
    guide = (paths.ROOT / "docs" / "grading-a-class.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| [^|]+ \| (\S+)[^|]* \| [^|]*`fashion_kit\.(\w+)` \| `(--[\w-]+)` \|$", guide, re.MULTILINE)
    assert {name for _, name, _ in rows} == {key.name for key in settings.LIMITS}
    for default, name, option in rows:
        key = next(k for k in settings.LIMITS if k.name == name)
        assert float(default) == key.default and option == settings.option(key), name


def test_the_repositorys_otter_config_is_valid():
    assert settings.load(paths.OTTER_CONFIG).assignment_name == "fashion_mnist"


@pytest.mark.parametrize("key, value", [("min_test_accuracy", 1.5), ("max_processes", 64.5), ("seed", -1),
                                        ("max_notebook_mb", 0), ("timeout_seconds", True), ("assignment_name", " ")])
def test_a_value_out_of_bounds_names_the_key_and_what_was_found(key, value):
    with pytest.raises(settings.SettingsError, match=re.escape(key) + r".*found"):
        settings.Settings().replace(**{key: value})
    config = {key: value} if key in ("seed", "assignment_name") else {"fashion_kit": {key: value}}
    with pytest.raises(settings.SettingsError, match=re.escape(key)):
        settings.parse(config)


def test_an_unknown_key_is_refused_with_the_known_ones():
    with pytest.raises(settings.SettingsError, match="unknown setting fashion_kit.timeout; expected one of min_test"):
        settings.parse({"fashion_kit": {"timeout": 5}})


def test_every_key_is_declared_with_a_default_its_check_accepts_and_help():
    for key in settings.KEYS:
        assert getattr(Settings().replace(**{key.name: key.default}), key.name) == key.default
        assert key.help and key.bounds and key.allowed


def test_settings_name_the_bad_key_and_what_was_found(tmp_path):
    with pytest.raises(settings.SettingsError, match=r"fashion_kit.min_test_accuracy must be a number from 0 to 1; found 1.5"):
        settings.parse({"fashion_kit": {"min_test_accuracy": 1.5}})
    with pytest.raises(settings.SettingsError, match="unknown setting fashion_kit.min_test_acuracy"):
        settings.parse({"fashion_kit": {"min_test_acuracy": 0.9}})
    with pytest.raises(settings.SettingsError, match="seed must be a whole number"):
        settings.parse({"seed": "42"})
    with pytest.raises(settings.SettingsError, match="does not exist"):
        settings.load(tmp_path / "otter_config.json")
    with pytest.raises(settings.SettingsError, match="timeout_seconds must be"):
        Settings().replace(timeout_seconds=-1)
    assert Settings().replace(timeout_seconds=60).fingerprint() != Settings().fingerprint()
    assert Settings().replace(timeout_seconds=None) == Settings()


def test_the_repositorys_settings_are_valid_and_are_what_the_zip_carries(built):
    assert settings.load(paths.OTTER_CONFIG) == settings.from_zip(built.autograder_zip)


def test_only_settings_py_reads_otter_config():
    """One owner for the settings: no other module of the kit opens otter_config.json."""
    package = Path(settings.__file__).parent
    parsing = re.compile(r"json\.loads?\([^\n]*(otter_config|OTTER_CONFIG)|(otter_config|OTTER_CONFIG)[^\n]*\.read_text\(")
    readers = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                     if parsing.search(p.read_text(encoding="utf-8")))
    assert readers == [], f"parse otter_config.json through fashion_kit.settings, not in {readers}"


def _same(shown: str, default) -> bool:
    shown = shown.strip().strip("`")
    return shown == default if isinstance(default, str) else float(shown.replace(",", "")) == default


def test_the_guides_state_each_setting_as_it_is_declared():
    """A guide that gives a setting's value, in a sentence (`key` (value)) or in a table row
    (| `key` | value |), gives the declared default: the declaration is the one owner of the value."""
    keys = {k.name: k.default for k in settings.KEYS}
    inline = re.compile(r"`(?:fashion_kit\.)?(\w+)` \(([\d.,]+)\)")
    row = re.compile(r"^\| ((?:`[\w.]+`(?:, )?)+) \| ([^|]+) \|", re.MULTILINE)
    found, wrong = 0, []
    for guide in [paths.ROOT / "README.md", *sorted((paths.ROOT / "docs").glob("*.md"))]:
        text = guide.read_text(encoding="utf-8")
        pairs = [m.groups() for m in inline.finditer(text)]
        for names, values in row.findall(text):
            names = [n.strip("`").removeprefix("fashion_kit.") for n in names.split(", ")]
            if all(n in keys for n in names) and len(values.split(", ")) == len(names):
                pairs += zip(names, values.split(", "))
        for name, shown in pairs:
            if name in keys:
                found += 1
                if not _same(shown, keys[name]):
                    wrong.append(f"{guide.name}: {name} shown as {shown}, declared {keys[name]!r}")
    assert found >= 10, found
    assert not wrong, wrong
