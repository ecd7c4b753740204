"""The data module: offline install into the Keras cache, and clear errors for bad files."""

import os
import shutil
import subprocess
import sys

import pytest

from fashion_kit import data


def test_shared_files_are_the_official_release(data_dir):
    assert data.problems(data_dir) == []


def test_install_copies_into_the_keras_cache(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cache = data.install(data_dir)
    assert cache == tmp_path / "keras" / "datasets" / "fashion-mnist"
    assert data.check_cache() == cache
    assert not list(cache.glob("*.partial"))


def test_load_data_works_offline_after_install(data_dir, tmp_path):
    # Keras reads KERAS_HOME when it is first imported, so load in a fresh interpreter.
    data.install(data_dir, cache=tmp_path / "keras" / "datasets" / "fashion-mnist")
    code = (
        "import keras; (x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data();"
        "print(x.shape, int(y[0]), xt.shape)"
    )
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    # The first training image is an ankle boot (label 9).
    assert out.stdout.strip().splitlines()[-1] == "(60000, 28, 28) 9 (10000, 28, 28)"


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(data.DataError, match="not a folder"):
        data.install(tmp_path / "nowhere")


def test_corrupt_and_missing_files_are_named(data_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(data_dir / "t10k-labels-idx1-ubyte.gz", broken)
    with open(broken / "t10k-labels-idx1-ubyte.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(data.DataError) as err:
        data.install(broken, cache=tmp_path / "cache")
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz: missing" in message
    assert "t10k-labels-idx1-ubyte.gz: MD5" in message
    assert not (tmp_path / "cache").exists(), "nothing may be copied from a bad source"


def test_empty_cache_names_every_file(tmp_path):
    with pytest.raises(data.DataError) as err:
        data.check_cache(tmp_path)
    for name in data.FILES:
        assert f"{name}: missing" in str(err.value)
