"""The autograder zip: what Gradescope receives, written byte for byte the same from the same inputs.

It carries Otter's tests (built from the master), ``otter_config.json`` exactly as in the repository,
the grading image's pinned requirements, its lean ``setup.sh`` and ``run_autograder``, the Fashion-MNIST
files (so grading never downloads), and the kit itself as a wheel: the grader inside the image is the
same code as the kit's local grader, installed where the notebook cannot write. A manifest records
what the zip was built from, so ``fashion-kit check`` can tell when it is stale.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import NotDone
from . import contract, data, paths
from .questions import layout as question_layout

# A fixed timestamp for every zip entry: the same inputs always give the same bytes.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
SOURCE_DATE_EPOCH = "1577836800"  # the same moment, for the wheel
EXECUTABLES = ("setup.sh", "run_autograder")
GRADESCOPE_FILES = ("setup.sh", "run_autograder")
GRADING_PACKAGES = ("tensorflow-cpu", "keras", "otter-grader", "numpy", "matplotlib", "ipykernel", "h5py")
MANIFEST = "fashion_kit_build.json"
PACKAGE = Path(__file__).resolve().parent


class BuildError(NotDone):
    """The build could not finish; nothing in the repository was changed."""


# The grading image: Linux x86_64 with the Python setup.sh installs. Dependency markers are evaluated
# for it, not for the machine running the build.
GRADING_ENVIRONMENT = {
    "python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
    "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
    "implementation_name": "cpython", "platform_python_implementation": "CPython",
}
# Same wheel contents under another name: where the CPU build is not installed (macOS), read the other.
SAME_DEPENDENCIES = {"tensorflow-cpu": "tensorflow"}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def grading_closure() -> set[str]:
    """Every distribution the grading packages need in the grading image, read from the installed
    packages' metadata (which ``constraints.txt`` pinned), extras included."""
    from importlib import metadata

    from packaging.requirements import Requirement

    needed: set[str] = set()
    todo = [(p, frozenset()) for p in GRADING_PACKAGES]
    seen = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        try:
            requires = metadata.requires(name)
        except metadata.PackageNotFoundError:
            try:
                requires = metadata.requires(SAME_DEPENDENCIES[name])
            except (KeyError, metadata.PackageNotFoundError):
                raise BuildError(
                    f"{name} is not installed, so its dependencies cannot be pinned for the grading "
                    "image. Install the kit with: pip install -c constraints.txt -e '.[dev]'"
                ) from None
        for line in requires or []:
            req = Requirement(line)
            applies = req.marker is None or any(
                req.marker.evaluate({**GRADING_ENVIRONMENT, "extra": extra}) for extra in (extras or {""})
            )
            if applies:
                todo.append((_canonical(req.name), frozenset(req.extras)))
    return needed


# A pin of constraints.txt as pip-compile writes it: ``name==version``, then `` \`` and its hashes.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pinned(constraints: Path) -> dict[str, str]:
    """The version ``constraints`` pins for each package, by canonical name."""
    found = {}
    for line in constraints.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[_canonical(match[1])] = match[2]
    return found


def grading_requirements(constraints: Path) -> str:
    """The grading image's requirements.txt: every package of the grading closure, each pinned to
    the version ``constraints`` gives it, so the image is the same on every build."""
    pins = pinned(constraints)
    needed = grading_closure()
    missing = sorted(needed - pins.keys())
    if missing:
        raise BuildError(
            f"{constraints} pins no version for {', '.join(missing)}, which the grading image needs. "
            "Add a name==version line for each."
        )
    return "".join(f"{p}=={pins[p]}\n" for p in sorted(needed))


def _zip_entry(zf: zipfile.ZipFile, name: str, payload: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = (0o755 if executable else 0o644) << 16
    # Already compressed (the data, the wheel): deflating them again only costs time.
    info.compress_type = zipfile.ZIP_STORED if name.endswith((".gz", ".whl")) else zipfile.ZIP_DEFLATED
    zf.writestr(info, payload)


def _package_files() -> list[Path]:
    """The kit's own files as the wheel carries them: its Python modules and package data, without
    the question folders' test data."""
    return sorted(
        p for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
        and p.suffix in (".py", ".json", ".sh", ".html", ".js", ".toml", ".md", "")
        and not p.name.startswith(".")
        and not (p.parent.parent == question_layout.FOLDER and p.name in question_layout.TEST_DATA_FILES)
    )


def kit_fingerprint() -> str:
    """Identifies the kit's code: the same fingerprint, the same grader."""
    digest = hashlib.sha256()
    for path in _package_files():
        digest.update(path.relative_to(PACKAGE.parent).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def kit_wheel(folder: Path) -> Path:
    """The kit as a wheel (no dependencies: requirements.txt pins those), packed by ``wheel pack``
    from the package folder with fixed timestamps, so the same code gives the same bytes."""
    from importlib import metadata

    version = metadata.version("fashion-kit")
    unpacked = folder / f"fashion_kit-{version}"
    for path in _package_files():
        target = unpacked / path.relative_to(PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    info = unpacked / f"fashion_kit-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fashion-kit\nVersion: {version}\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nGenerator: fashion-kit\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    out = folder / "dist"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "wheel", "pack", str(unpacked), "-d", str(out)],
                          capture_output=True, text=True, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PATH": ""})
    if proc.returncode != 0:
        raise BuildError(f"packing the kit's wheel failed:\n{proc.stdout}\n{proc.stderr}")
    return next(out.glob("*.whl"))


def manifest(master: Path, config: Path | None = None) -> dict:
    """What a zip is built from, by content: the master, the settings, the pins and the kit."""
    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {"master": sha(master), "otter_config": sha(config or paths.OTTER_CONFIG), "constraints": sha(paths.CONSTRAINTS),
            "kit": kit_fingerprint()}


def stale_reasons(autograder_zip: Path, master: Path | None = None) -> list[str]:
    """Why ``autograder_zip`` no longer matches the repository (empty when it does)."""
    names = {"master": "the master notebook", "otter_config": contract.OTTER_CONFIG_FILE,
             "constraints": "constraints.txt", "kit": "the kit's code"}
    try:
        with zipfile.ZipFile(autograder_zip) as zf:
            built = json.loads(zf.read(MANIFEST))
    except FileNotFoundError:
        return [f"{autograder_zip} does not exist"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return [f"{autograder_zip} has no readable {MANIFEST} (built by an older kit)"]
    now = manifest(Path(master or paths.MASTER))
    return [f"{names[k]} changed since the zip was built" for k in names if built.get(k) != now[k]]


def write_autograder_zip(otter_zip: Path, target: Path, data_dir: Path, master: Path | None = None,
                         config: Path | None = None) -> None:
    """Otter's tests, with the kit's config (``config``, else the repository's otter_config.json),
    entry point, lean set-up, wheel and bundled data."""
    config = config or paths.OTTER_CONFIG
    entries: dict[str, tuple[bytes, bool]] = {}
    with zipfile.ZipFile(otter_zip) as zf:
        for name in zf.namelist():
            if name.startswith(f"{contract.TESTS_DIR}/"):
                entries[name] = (zf.read(name), False)
    entries[contract.OTTER_CONFIG_FILE] = (config.read_bytes(), False)
    entries["requirements.txt"] = (grading_requirements(paths.CONSTRAINTS).encode(), False)
    for name in GRADESCOPE_FILES:
        entries[name] = ((PACKAGE / "gradescope" / name).read_bytes(), name in EXECUTABLES)
    with tempfile.TemporaryDirectory(prefix="fashion-kit-wheel-") as tmp:
        wheel = kit_wheel(Path(tmp))
        entries[wheel.name] = (wheel.read_bytes(), False)
    entries[MANIFEST] = (json.dumps(manifest(Path(master or paths.MASTER), config), indent=2).encode() + b"\n", False)
    for name in data.FILES:
        entries[f"{contract.DATA_DIR}/{name}"] = ((data_dir / name).read_bytes(), False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(entries):
            payload, executable = entries[name]
            _zip_entry(zf, name, payload, executable)
    target.write_bytes(buffer.getvalue())
