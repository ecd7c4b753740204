"""Fashion-MNIST files: where Keras looks for them, and how to put them there offline.

The notebooks call ``keras.datasets.fashion_mnist.load_data()`` unchanged. With internet, Keras
downloads the four files into its cache. Without it, the kit copies them into that same cache from
a folder named by ``FASHION_MNIST_DIR`` (or bundled in the autograder zip), so the notebook never
notices the difference.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import NotDone

ENV_VAR = "FASHION_MNIST_DIR"

# The official release's checksums, as published by Zalando Research.
FILES = {
    "train-images-idx3-ubyte.gz": (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte.gz": (29515, "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte.gz": (4422102, "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte.gz": (5148, "bb300cfdad3c16e7a12a480ee83cd310"),
}

# The training set alone: all the challenge's trainer may read.
TRAINING_FILES = tuple(name for name in FILES if name.startswith("train-"))


class DataError(NotDone):
    """The Fashion-MNIST files are missing or damaged; the message says which and what to do."""


# Where Keras keeps the data set, inside its home (KERAS_HOME, or ~/.keras).
KERAS_DATASET_DIR = "datasets/fashion-mnist"


def keras_cache_dir() -> Path:
    """The folder ``load_data()`` reads, honouring ``KERAS_HOME`` exactly as Keras does."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / KERAS_DATASET_DIR


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_problem(path: Path, name: str) -> str | None:
    """How ``path`` differs from the official file ``name``, or None when it is that file."""
    size, checksum = FILES[name]
    if not path.is_file():
        return f"{name}: missing"
    if path.stat().st_size != size:
        return f"{name}: {path.stat().st_size} bytes, expected {size}"
    found = md5(path)
    if found != checksum:
        return f"{name}: MD5 {found}, expected {checksum}"
    return None


def problems(folder: Path) -> list[str]:
    """Every way ``folder`` differs from the official release; empty when it is complete."""
    return [p for p in (file_problem(folder / name, name) for name in FILES) if p]


def require_complete(folder: Path, headline: str, advice: str) -> Path:
    """``folder`` if it holds the official release, else a :class:`DataError` naming each bad file."""
    wrong = problems(folder)
    if wrong:
        raise DataError(f"{headline}:\n  " + "\n  ".join(wrong) + f"\n{advice}")
    return folder


def install(source: Path | str | None = None, cache: Path | None = None) -> Path:
    """Make ``load_data()`` work offline: verify ``source`` and copy it into the Keras cache.

    ``source`` defaults to ``$FASHION_MNIST_DIR``. With neither, a complete cache is accepted as
    is, and an empty one is left for Keras to download into. Returns the cache folder.
    """
    cache = cache or keras_cache_dir()
    if source is None and os.environ.get(ENV_VAR):
        source = os.environ[ENV_VAR]
    if source is None:
        return cache
    source = Path(source)
    if not source.is_dir():
        raise DataError(
            f"{ENV_VAR} points to {source}, which is not a folder. Expected a folder holding "
            f"{', '.join(FILES)} (the official Fashion-MNIST release)."
        )
    require_complete(
        source,
        f"The Fashion-MNIST files in {source} are not the official release",
        f"Put the four original .gz files there, or unset {ENV_VAR} to let Keras download them.",
    )
    cache.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = cache / name
        if file_problem(target, name) is None:
            continue
        # Copy under a temporary name of this process's own first, so a crash never leaves a
        # truncated file that Keras would then trust, and processes filling the same cache at once
        # (a class's gradings, test workers) never take each other's half-copied file.
        with tempfile.NamedTemporaryFile(dir=cache, prefix=f".{name}.", suffix=".partial", delete=False) as partial:
            with open(source / name, "rb") as original:
                shutil.copyfileobj(original, partial)
        os.replace(partial.name, target)
    return cache


def check_cache(cache: Path | None = None) -> Path:
    """Raise a :class:`DataError` naming each bad file if the Keras cache is not complete."""
    cache = cache or keras_cache_dir()
    return require_complete(
        cache,
        f"Fashion-MNIST is not ready in the Keras cache {cache}",
        f"With internet, run the notebook once and Keras downloads it. Offline, set {ENV_VAR} to a "
        "folder with the four official files and run `fashion-kit data`.",
    )


def ensure() -> Path:
    """Fashion-MNIST in the Keras cache, by whichever route this machine has.

    ``$FASHION_MNIST_DIR`` wins when set (offline machines, CI). Otherwise Keras downloads the files
    itself, exactly as a student's notebook would.
    """
    cache = install()
    if problems(cache) and not os.environ.get(ENV_VAR):
        import keras

        try:
            keras.datasets.fashion_mnist.load_data()
        except Exception as e:  # no network, a proxy, a full disk: say what to do instead
            raise DataError(
                f"Keras could not download Fashion-MNIST ({type(e).__name__}: {e}). Offline, set "
                f"{ENV_VAR} to a folder holding {', '.join(FILES)}."
            ) from e
    return check_cache(cache)
