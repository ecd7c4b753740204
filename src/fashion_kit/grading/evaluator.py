"""Phase 2's measurements: saved models read as data and measured, in a process of their own.

``python -I -m fashion_kit.grading.evaluator REQUEST CPU_SECONDS`` measures the model files the
request names and writes each one's facts to a file (see :func:`answer` and :func:`main`). The
process is limited in CPU seconds; it runs after the notebook's processes are dead, on copies of the
files they left, inside the same kind of sandbox, so even a file crafted to break a parser can
neither reach the grade's other inputs nor outlive the grading. The lesson's models share one
process; the challenge's model (trained by the grader: :mod:`trainer`), the heaviest, gets its own.
The facts are the ones the checks compare (:mod:`fashion_kit.checks`, reached through the question
registry), read as Keras reads the file.

A model file is read without Keras where it can be: a ``.keras`` file is a zip of ``config.json`` and
an HDF5 file of weights, an ``.h5`` file is HDF5 with the configuration in its attributes. The
lesson's layers (Flatten, Dense, Dropout, Reshape, Activation) are computed with NumPy, which
executes nothing from the file and needs neither TensorFlow's import (seconds) nor its memory (half a
gigabyte). Any other model (the challenge's CNN, a student's extra layer) is loaded with Keras,
``safe_mode=True`` (no Lambda code), only when it is needed.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from .. import questions


TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
# Far above any model of this lesson (~1.2 MB with Adam's state) or the challenge's (a few MB).
MAX_CONFIG_BYTES = 4 * 2**20
MAX_WEIGHTS_BYTES = 256 * 2**20
ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softmax": lambda z: _softmax(z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: np.logaddexp(0, z),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "swish": lambda z: z / (1 + np.exp(-z)),
}


class Unsupported(Exception):
    """The file is a model, but not one made of the layers computed here: Keras must load it."""


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@functools.lru_cache(maxsize=None)
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format) as a read-only array: magic 0x0000 08 <ndim>, big-endian sizes.
    Read once per process: one measurement reads the test set three times, a process measures many."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file (header {raw[:4].hex()}).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _snake(name: str) -> str:
    """Keras's file path for a layer class (keras.src.utils.naming.to_snake_case): Dense -> dense,
    MaxPooling2D -> max_pooling2d, Conv1D -> conv1d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# What a fact may look like: a name from a model file is cut to this length (it is the student's
# text); questions.layer_rows and questions.compile_facts cut them.
NAME_CHARS = 64


class ModelFile:
    """What a saved model holds, read as data: its layers, weights, compile settings and steps."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.iterations: int | None = None
        if zipfile.is_zipfile(self.path):
            self._read_keras()
        else:
            self._read_h5()

    # -- reading --------------------------------------------------------------------------------
    def _read_keras(self):
        import h5py

        with zipfile.ZipFile(self.path) as zf:
            sizes = {i.filename: i.file_size for i in zf.infolist()}
            if sizes.get("config.json", MAX_CONFIG_BYTES + 1) > MAX_CONFIG_BYTES:
                raise ValueError("config.json is missing or too large")
            if sizes.get("model.weights.h5", MAX_WEIGHTS_BYTES + 1) > MAX_WEIGHTS_BYTES:
                raise ValueError("model.weights.h5 is missing or too large")
            config = json.loads(zf.read("config.json"))
            weights = zf.read("model.weights.h5")
        self._set_config(config, config.get("compile_config") if isinstance(config, dict) else None)
        with h5py.File(io.BytesIO(weights), "r") as f:
            counters: dict[str, int] = {}
            self.weights = []
            for layer in self.layers_config:
                base = _snake(layer["class_name"])
                n = counters.get(base, 0)
                counters[base] = n + 1
                group = f.get(f"layers/{base if n == 0 else f'{base}_{n}'}/vars")
                arrays = [] if group is None else [np.array(group[k]) for k in sorted(group, key=int)]
                self.weights.append(arrays)
            steps = f.get("optimizer/vars/0")
            if steps is not None and steps.shape == () and np.issubdtype(steps.dtype, np.integer):
                self.iterations = int(steps[()])

    def _read_h5(self):
        import h5py

        with h5py.File(self.path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            training = f.attrs.get("training_config")
            training = json.loads(training) if training is not None else None
            compile_config = None
            if isinstance(training, dict):
                compile_config = {"optimizer": training.get("optimizer_config"), "loss": training.get("loss"),
                                  "metrics": training.get("metrics")}
            self._set_config(config, compile_config)
            group = f["model_weights"]
            self.weights = []
            for layer in self.layers_config:
                name = layer.get("config", {}).get("name", "")
                if name not in group:
                    self.weights.append([])
                    continue
                names = [n.decode() if isinstance(n, bytes) else n for n in group[name].attrs.get("weight_names", [])]
                self.weights.append([np.array(group[name][n]) for n in names])
            for key in ("optimizer_weights",):
                for opt in (f[key].values() if key in f else []):
                    if "iteration" in opt:
                        self.iterations = int(opt["iteration"][()])

    def _set_config(self, config, compile_config):
        if not isinstance(config, dict) or config.get("class_name") not in ("Sequential", "Functional", "Model"):
            raise Unsupported(f"a {config.get('class_name') if isinstance(config, dict) else 'non'} model")
        layers = config.get("config", {}).get("layers", [])
        if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
            raise ValueError("the model's configuration has no list of layers")
        if config["class_name"] == "Sequential":  # its file paths skip the input layer
            layers = [x for x in layers if x.get("class_name") != "InputLayer"]
        elif not _is_chain(layers):
            raise Unsupported("a functional model that is not a single chain of layers")
        self.config = config
        self.layers_config = layers
        self.compile_config = compile_config if isinstance(compile_config, dict) else None

    # -- facts ----------------------------------------------------------------------------------
    def layers(self) -> list[list]:
        """[class, units, activation] of each layer but the input, as the checks compare them."""
        return questions.layer_rows(self.config)

    def params(self) -> list[int]:
        return [int(sum(int(np.prod(w.shape)) for w in ws)) for ws, layer in zip(self.weights, self.layers_config)
                if layer.get("class_name") != "InputLayer"]

    def compile_facts(self) -> dict:
        return questions.compile_facts(self.compile_config)

    def weights_digest(self) -> str:
        return digest_of(w for ws in self.weights for w in ws)

    def check_weights(self) -> None:
        """Refuse what Keras would refuse to load: for each of the lesson's layers, weights of exactly
        the shapes its configuration gives them (a Dense layer's kernel (inputs, units) and, unless
        use_bias is false, its bias (units,)), from the model's input shape through the chain."""
        if not any(self.weights):
            return  # a model never built (no input shape given) holds no weights yet: its facts say so
        shape = tuple(_input_shape(self))
        if None in shape:
            raise Unsupported("an input of unknown size")
        for layer, weights in zip(self.layers_config, self.weights):
            kind, config = layer.get("class_name"), layer.get("config", {})
            if kind in ("InputLayer", "Dropout", "Activation"):
                expected = []
            elif kind == "Flatten":
                expected, shape = [], (int(np.prod(shape)),)
            elif kind == "Reshape":
                target = tuple(config.get("target_shape") or ())
                if int(np.prod(target)) != int(np.prod(shape)) or -1 in target:
                    raise ValueError(f"a Reshape to {target} does not fit its input {shape}")
                expected, shape = [], target
            elif kind == "Dense":
                units = config.get("units")
                if not isinstance(units, int) or isinstance(units, bool) or units <= 0 or len(shape) != 1:
                    raise ValueError(f"a Dense layer of {units!r} units on an input of shape {shape}")
                expected = [(shape[0], units)] + ([(units,)] if config.get("use_bias", True) else [])
                shape = (units,)
            else:
                raise Unsupported(f"the layer {kind}")
            found = [tuple(w.shape) for w in weights]
            if found != expected:
                raise ValueError(f"the {kind} layer {config.get('name', '')!r} holds weights of shapes {found}; "
                                 f"its configuration needs {expected}")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs for ``x``, computed layer by layer; Unsupported for other layers."""
        for layer, weights in zip(self.layers_config, self.weights):
            kind, config = layer.get("class_name"), layer.get("config", {})
            if kind in ("InputLayer", "Dropout"):
                continue
            if kind == "Flatten":
                x = x.reshape(len(x), -1)
            elif kind == "Reshape":
                x = x.reshape((len(x), *config["target_shape"]))
            elif kind in ("Dense", "Activation"):
                if kind == "Dense":
                    x = x @ weights[0] + (weights[1] if len(weights) == 2 else 0)
                activation = questions.function_name(config.get("activation") or "linear")
                if activation not in ACTIVATIONS:
                    raise Unsupported(f"the activation {activation!r}")
                x = ACTIVATIONS[activation](x)
            else:
                raise Unsupported(f"the layer {kind}")
        return x


def digest_of(arrays) -> str:
    """SHA-256 of weights as float32, in order: two files hold the same weights when it is the same,
    and the same digest as phase 1 records when a fit returns (questions.weights_digest)."""
    return questions.weights_digest(arrays)


def _is_chain(layers: list[dict]) -> bool:
    """Whether each layer of a functional model takes its input from the one listed before it."""
    for before, layer in zip(layers, layers[1:]):
        nodes = layer.get("inbound_nodes") or []
        found = json.dumps(nodes)
        name = before.get("config", {}).get("name")
        if len(nodes) != 1 or not isinstance(name, str) or json.dumps(name) not in found:
            return False
    return True


def fit_input(x: np.ndarray, input_shape) -> np.ndarray:
    """A model built for flattened images (784 values) gets them flattened."""
    wanted = tuple(input_shape)
    if wanted != x.shape[1:] and None not in wanted and int(np.prod(wanted)) == 28 * 28:
        return x.reshape((-1,) + wanted)
    return x


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    if outputs.shape != (len(labels), 10):
        raise ValueError(f"the model outputs shape {outputs.shape}; expected ({len(labels)}, 10), one score per class")
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


class Keras:
    """Keras's own loader, imported on first use only (it costs seconds and half a gigabyte)."""

    def __init__(self):
        self._loaded = {}

    def model(self, path: Path):
        if path not in self._loaded:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            import keras

            self._loaded[path] = keras.models.load_model(str(path), safe_mode=True, compile=False)
        return self._loaded[path]

    def predict(self, path: Path, x: np.ndarray) -> np.ndarray:
        model = self.model(path)
        return np.asarray(model.predict(fit_input(x, model.inputs[0].shape[1:]), batch_size=1000, verbose=0))

    def weights(self, path: Path) -> list[np.ndarray]:
        return [np.asarray(w) for w in self.model(path).weights]


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]


def answer(request: dict) -> dict:
    """Measure the one model ``request`` names. Every failure is reported as data, never raised.

    request: {"data": folder with the Fashion-MNIST files, "model": path, "accuracy": bool,
              "train_accuracy": bool (default true), "own_images": .npy path or null}
    answer:  the model's facts (layers, params, iterations, compile settings, weights' digest and,
             when asked, its accuracy on the test and the training set, and on the notebook's own
             test images) or {"error": ...}
    """
    data = Path(request["data"])
    path = Path(request["model"])
    keras = Keras()
    model: ModelFile | None = None
    try:
        model = ModelFile(path)
        model.check_weights()
        facts = {"layers": model.layers(), "input": questions.input_shape_of(model.config),
                 "params": model.params(), "iterations": model.iterations,
                 "weights": model.weights_digest(), **model.compile_facts()}
    except Unsupported as e:
        model = None
        try:
            loaded = keras.model(path)
            layers = [x for x in loaded.layers if type(x).__name__ != "InputLayer"]
            facts = {"layers": [[type(x).__name__, None, None] for x in layers],
                     "params": [int(x.count_params()) for x in layers], "iterations": None,
                     "weights": digest_of(keras.weights(path)), "compiled": False,
                     "note": f"read with Keras ({e})"}
        except Exception as e2:
            return {"error": _error(e2)}
    except Exception as e:
        return {"error": _error(e)}
    if not request.get("accuracy"):
        return facts

    def predict(x: np.ndarray) -> np.ndarray:
        if model is not None:
            try:
                return model.predict(fit_input(x, _input_shape(model)))
            except Unsupported:
                pass
        return keras.predict(path, x)

    splits = [("accuracy", (TEST_IMAGES, TEST_LABELS))]
    if request.get("train_accuracy", True):  # not for a model the grader trained itself
        splits.append(("train_accuracy", (TRAIN_IMAGES, TRAIN_LABELS)))
    for key, (images, labels) in splits:
        try:
            pixels, answers = read_idx(data / images), read_idx(data / labels)
            facts[key] = _accuracy(predict(pixels.astype(np.float32) / np.float32(255.0)), answers)
        except Exception as e:
            facts[f"{key}_error"] = _error(e)
    own = request.get("own_images")
    if own and "accuracy" in facts:
        try:
            images = read_idx(data / TEST_IMAGES)
            theirs = np.load(own, allow_pickle=False)
            if theirs.size != images.size or not np.issubdtype(theirs.dtype, np.number):
                raise ValueError(f"test_images holds {theirs.shape} {theirs.dtype}, not the 10000 test images")
            theirs = theirs.reshape(images.shape).astype(np.float64)
            scale = _affine(images.astype(np.float64), theirs)
            if scale is None:
                raise ValueError("test_images is not the test set scaled by one factor, in the original order")
            accuracy = _accuracy(predict(theirs.astype(np.float32)), read_idx(data / TEST_LABELS))
            facts["own_images"] = {"scale": scale, "accuracy": accuracy}
        except Exception as e:
            facts["own_images"] = {"error": _error(e)}
    return facts


def _input_shape(model: ModelFile):
    for layer in model.layers_config:
        build = layer.get("build_config", {}).get("input_shape") or layer.get("config", {}).get("batch_shape")
        if build:
            return build[1:]
    return (28, 28)


def _affine(raw: np.ndarray, theirs: np.ndarray) -> list[float] | None:
    """[a, b] with theirs == a * raw + b (a > 0) to float32 precision, else None."""
    x, y = raw.ravel(), theirs.ravel()
    if not np.all(np.isfinite(y)):
        return None
    a = float(np.cov(x, y, bias=True)[0, 1] / x.var())
    b = float(y.mean() - a * x.mean())
    if a <= 0:
        return None
    gap = float(np.max(np.abs(y - (a * x + b))))
    return [a, b] if gap <= 1e-5 * max(1.0, float(np.max(np.abs(y)))) else None


def main(argv: list[str] | None = None) -> int:
    """``evaluator REQUEST.json CPU_SECONDS``: limits its own CPU time, then measures the models
    REQUEST.json names ({"data": folder, "models": [{"answer": path, "model": ..., ...}]}), in order,
    each answer written to its file as soon as it is known, whole or not at all.

    CPU seconds, not wall time: on a loaded machine a measurement takes longer but no more CPU, so
    load changes no grade. The limit is set before any file is read. The answers go to files of
    their own, never to the output: what a model file makes Keras print (a layer's name in a warning,
    say) must not be taken for an answer. Whoever started the process learns which model it died on
    from the first answer missing."""
    import warnings

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1:
        limit_cpu(int(argv[1]))
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    for model in request["models"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = answer({"data": request["data"], **model})
        write_answer(Path(model["answer"]), found)
    return 0


def limit_cpu(seconds: int) -> None:
    """This process is killed after ``seconds`` of CPU time (SIGXCPU, then SIGKILL 5 s later)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))


def write_answer(target: Path, found: dict) -> None:
    """``found`` as JSON in ``target``, whole or not at all (whoever reads it never sees half)."""
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(found), encoding="utf-8")
    os.replace(partial, target)


if __name__ == "__main__":
    sys.exit(main())
