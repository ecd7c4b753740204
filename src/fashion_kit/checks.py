"""What the questions' checks share: the helpers each one imports, and the form every check takes.

Every question is decided by a pair of functions in its folder's check.py
(``fashion_kit/questions/<question>/check.py``), which imports what it shares with the others from here:

* ``collect_<question>(env)`` turns the notebook's variables (``env``: name -> value) into plain
  values (numbers, strings, lists, dicts: JSON), for instance an array's shape, statistics and
  digest, or a model's layers and compile settings;
* ``check_<question>(values, public=False)`` decides from those values alone and returns
  ``(fraction, messages)``: the share of the question's points earned and, for what is missing,
  one message for the student (Traditional Chinese / English).

The same code runs in three places, so they can never disagree: the notebook's ``grader.check``
(the build copies the functions a question needs into its public test, with ``public=True``, so a
student's computer needs no kit); the grader's own cells in phase 1 (the evidence plugin writes
each question's collected values next to the model snapshots); and phase 2, the only judge, which
decides every question with ``public=False`` from those values, the values it measured itself taking
the place of the notebook's (``values["model"]`` is the model the grader read from its snapshot).

This module is self-contained (the standard library, NumPy inside functions) because its functions
are copied into the notebook's tests with each question's; :mod:`fashion_kit.questions.check_code`
does the copying.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers

# The official Fashion-MNIST arrays: SHA-256 of their values as float32, C order (load_data()'s
# uint8 pixels and labels cast to float32; /255 or /255.0 of the pixels is checked in question 3 by
# the digest of the values times 255, rounded).
OFFICIAL_DIGESTS = {
    "training_images": "f6dbbc68019e1afed449c7e2130a3c1080565792ee36a6e205901fae1ff56d3b",
    "training_labels": "36755cee07da757e0675fdcd7786eefe816d664c06feaed2ba5c163e5310a0f5",
    "test_images": "0169a6f9509eaf39785478798039e49921dcb7db2d1596bc6e6287522b43337e",
    "test_labels": "a9ade1f188a24e380c7744d8dfdddf3eddd4a8b386fa0fca46783c0285cd1c22",
}
SHAPES = {"training_images": (60000, 28, 28), "training_labels": (60000,),
          "test_images": (10000, 28, 28), "test_labels": (10000,)}
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# The lesson's model: (layer, units, activation) after the input, and each Dense layer's parameters.
EXPECTED_LAYERS = [["Flatten", None, None], ["Dense", 128, "relu"], ["Dense", 10, "softmax"]]
EXPECTED_PARAMS = [100480, 1290]
EXPECTED_EPOCHS = 5
# The shape of one image: the model's input.
IMAGE_SHAPE = [28, 28]
# The test accuracy question 9 requires unless the course's settings say otherwise (the notebook's
# own check has no settings: it uses this; the grade uses the course's min_test_accuracy).
MIN_TEST_ACCURACY = 0.85
TRAINING_EXAMPLES = 60000
# test_acc from evaluate() and the argmax accuracy of the same weights agree to float rounding; a
# model evaluated on other data (the training set, an easy subset) misses by a percent or more.
AGREEMENT_TOLERANCE = 0.005
# A model trained on the training set is at least about as accurate there as on the test set; one
# fitted to the test set (or set from it) is far more accurate on the test set. Calibrated on honest
# runs: docs/training-evidence-calibration.md.
TRAINING_MARGIN = 0.01
ACCURACY_NAMES = ("accuracy", "acc", "sparsecategoricalaccuracy")
SLICE = 5000
PIXELS = 28 * 28
# What fit() trains on, seen batch by batch (a tf.data pipeline, a PyDataset, a generator): each
# image becomes one number (its pixels 0-255 times fixed whole weights below 2**35, summed: exact in
# float64 whatever the order, so the same image always gives the same key), and the set of keys a
# fit saw has one digest. This is the digest of the 60,000 training images' keys (example_keys,
# examples_digest).
TRAINING_EXAMPLES_DIGEST = "2820f6f6857f21ee0b3688e8e05500a40c967e82296cd5b4d6ba71207d2d1264"
# Set (true) in the collectors' env by the grader's evidence cell: phase 2 measures the saved models
# itself (their accuracies, the saved file's weights), so while grading the kernel does not measure
# them too; the notebook's own check, run by a student, still does.
MEASURED_BY_GRADER = "__fashion_kit_measured_by_grader__"


# -- plain values from the notebook's variables ----------------------------------------------------

def describe_array(value) -> dict:
    """What the grader needs to know of an array: type, shape, dtype, min, max, mean, and two
    SHA-256 digests (of its values as float32, and of its values times 255, rounded, when they are
    that close to whole numbers), computed slice by slice so no big copy is made."""
    import numpy as np

    if type(value) is not np.ndarray:
        return {"type": type(value).__name__}
    found = {"type": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype), "kind": value.dtype.kind}
    if value.dtype.kind not in "biuf" or value.size == 0:
        return found
    plain, scaled, exact = hashlib.sha256(), hashlib.sha256(), value.dtype.kind == "f"
    low, high, total = math.inf, -math.inf, 0.0
    rows = value.reshape(len(value), -1) if value.ndim else value.reshape(1, 1)
    for start in range(0, len(rows), SLICE):
        part = np.ascontiguousarray(rows[start:start + SLICE], dtype=np.float32)
        plain.update(part)
        low, high = min(low, float(part.min())), max(high, float(part.max()))
        total += float(part.sum(dtype=np.float64))
        if exact:  # once one value is not a whole number of 1/255ths, the second digest is dropped
            # In float32, as the values are: float32 holds 0-255 times 255 with an error far below
            # the 1e-3 allowed, and the whole numbers exactly.
            times = part * np.float32(255.0)
            rounded = np.rint(times)
            exact = bool(np.abs(np.subtract(times, rounded, out=times), out=times).max() <= 1e-3)
            if exact:
                scaled.update(rounded)
    found.update(min=low, max=high, mean=total / value.size, digest=plain.hexdigest(),
                 digest_times_255=scaled.hexdigest() if exact else None)
    return found


def key_weights():
    """The fixed weights of example_keys: 784 whole numbers below 2**35, from SHAKE-256."""
    import numpy as np

    raw = np.frombuffer(hashlib.shake_256(b"fashion-kit example keys").digest(8 * PIXELS), dtype="<u8")
    return (raw >> np.uint64(29)).astype(np.float64)


def example_keys(batch, weights):
    """One key per image of a batch of 28x28 images, or None when the batch holds no such images. The
    pixels count as 0-255: images scaled to 0-1 (/ 255, float32 or float64) are scaled back and
    rounded first, so both give the training images' keys; other values give keys of their own.
    255 × 784 × 2**35 < 2**53: the sums are exact, whatever the order BLAS adds them in."""
    import numpy as np

    values = np.asarray(batch)
    if values.ndim < 2 or len(values) == 0 or values.size != len(values) * PIXELS or values.dtype.kind not in "biuf":
        return None
    values = values.reshape(len(values), PIXELS)
    if values.dtype.kind == "f" and values.max() <= 1.0:
        values = np.rint(values * values.dtype.type(255))
    return values.astype(np.float64) @ weights


def examples_digest(keys) -> str:
    """SHA-256 of a set of example keys (order and repetitions do not matter)."""
    import numpy as np

    return hashlib.sha256(np.unique(np.asarray(keys, dtype=np.float64)).astype("<u8").tobytes()).hexdigest()


def weights_digest(arrays) -> str:
    """SHA-256 of a model's weights as float32, in order (each array's shape, then its values): two
    models hold the same weights when it is the same. The grader's evaluator computes it the same way."""
    import numpy as np

    digest = hashlib.sha256()
    for w in arrays:
        w = np.ascontiguousarray(w, dtype=np.float32)
        digest.update(repr(w.shape).encode() + w.tobytes())
    return digest.hexdigest()


def plain_list(value):
    """A list or tuple of strings as a list; anything else as its type's name."""
    if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
        return list(value)
    return {"type": type(value).__name__}


def plain_number(value):
    """A number as {"kind": "integer"|"real", "value": ...}; anything else as its type's name."""
    if isinstance(value, (list, tuple)):
        return {"type": type(value).__name__, "length": len(value)}
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return {"type": type(value).__name__}
    kind = "integer" if isinstance(value, numbers.Integral) else "real"
    number = int(value) if kind == "integer" else float(value)
    return {"kind": kind, "value": number if kind == "integer" or math.isfinite(number) else None}


def function_name(item) -> str:
    """An activation, optimizer, loss or metric as Keras serialises it (a name, a registered
    object, or a function such as tf.nn.relu or keras.losses.sparse_categorical_crossentropy), as
    one lower-case name: TensorFlow's versioned names (softmax_v2) lose their suffix."""
    if isinstance(item, str):
        name = item
    elif isinstance(item, dict):
        config = item.get("config")
        if item.get("class_name") == "function" and isinstance(config, str):
            name = config
        else:
            name = str(item.get("class_name") or (config.get("name") if isinstance(config, dict) else "") or "")
    elif item is None:
        return "none"
    else:
        name = getattr(item, "__name__", type(item).__name__)
    name = name.lower()
    for suffix in ("_v2", "_v1"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def layer_rows(model_config) -> list:
    """[class, units, activation] of each layer of a saved model configuration (Keras's
    ``to_json()`` / config.json), the input layer left out: it is not a layer of the lesson."""
    config = model_config.get("config", {}) if isinstance(model_config, dict) else {}
    layers = config.get("layers", []) if isinstance(config, dict) else []
    rows = []
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            continue
        settings = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        units = settings.get("units")
        activation = settings.get("activation")
        rows.append([str(layer.get("class_name"))[:64],
                     units if isinstance(units, int) and not isinstance(units, bool) else None,
                     None if activation is None else function_name(activation)[:64]])
    return rows


def input_shape_of(model_config):
    """The shape of one input of a saved model configuration (without the batch), as a list, or
    None when the model does not know it yet (built without an input shape and never called)."""
    config = model_config.get("config", {}) if isinstance(model_config, dict) else {}
    layers = config.get("layers", []) if isinstance(config, dict) else []
    found = None
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict):
            continue
        settings = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        build = layer.get("build_config") if isinstance(layer.get("build_config"), dict) else {}
        found = settings.get("batch_shape") or settings.get("batch_input_shape") or build.get("input_shape")
        break
    if not found and isinstance(config, dict):
        found = config.get("build_input_shape")
    if not isinstance(found, list) or not found:
        return None
    return [x if isinstance(x, int) and not isinstance(x, bool) else None for x in found[1:9]]


def compile_facts(compile_config) -> dict:
    """Whether a model was compiled and with what, from Keras's compile config."""
    if not isinstance(compile_config, dict) or not compile_config:
        return {"compiled": False}
    metrics = compile_config.get("metrics") or []
    metrics = metrics if isinstance(metrics, list) else [metrics]
    flat = []
    for m in metrics[:16]:
        flat.extend(m[:16] if isinstance(m, list) else [m])
    # "loss" and "metrics" are compared without underscores; "loss_given" is the loss as the student
    # wrote it, for the messages.
    return {"compiled": True, "optimizer": function_name(compile_config.get("optimizer"))[:64],
            "loss": function_name(compile_config.get("loss")).replace("_", "")[:64],
            "loss_given": function_name(compile_config.get("loss"))[:64],
            "metrics": [function_name(m).replace("_", "")[:64] for m in flat]}


def describe_model(model) -> dict:
    """A live Keras model as the grader reads a saved one: its layers, parameters per layer, compile
    settings and optimizer steps."""
    try:
        config = json.loads(model.to_json())
    except Exception as e:
        return {"error": f"{type(model).__name__}: {type(e).__name__}"}
    layers = [x for x in model.layers if type(x).__name__ != "InputLayer"]
    facts = {"layers": layer_rows(config), "input": input_shape_of(config),
             "params": [int(sum(math.prod(w.shape) for w in layer.weights)) for layer in layers]}
    try:
        compiled = model.get_compile_config() if model.compiled else None
        if isinstance(compiled, dict) and compiled.get("optimizer") is None and model.optimizer is not None:
            # Saving in the legacy .h5 format removes the optimizer from the live model's compile
            # config; the optimizer itself is still the one the student compiled with.
            compiled = {**compiled, "optimizer": type(model.optimizer).__name__}
        facts.update(compile_facts(compiled))
    except Exception:
        facts["compiled"] = False
    try:
        facts["iterations"] = int(model.optimizer.iterations.numpy())
    except Exception:
        facts["iterations"] = None
    return facts


def describe_history(history) -> dict:
    """What fit() returned: how many epochs it recorded and the steps per epoch it reported."""
    record = getattr(history, "history", None)
    params = getattr(history, "params", None)
    if not isinstance(record, dict):
        return {"type": type(history).__name__}
    loss = record.get("loss")
    return {"type": type(history).__name__, "epochs": len(loss) if isinstance(loss, list) else 0,
            "params": {k: v for k, v in (params or {}).items() if isinstance(v, int) and not isinstance(v, bool)}}


# -- collecting each question's values in the notebook's kernel ------------------------------------

def model_of(env):
    """The facts of the notebook's ``model`` (:func:`describe_model`), or {"error": ...} without one."""
    model = env.get("model")
    if model is None or not hasattr(model, "to_json"):
        return {"error": f"model is {type(model).__name__}"}
    return describe_model(model)


def accuracy_of(model, images, labels):
    """The share of ``images`` a live model classifies as ``labels`` say, or None when it cannot be
    measured (no arrays, one-hot labels, a model that does not take them)."""
    import numpy as np

    try:
        x, y = np.asarray(images), np.asarray(labels)
        if x.dtype.kind not in "biuf" or y.ndim != 1 or len(x) != len(y) or not len(x):
            return None
        guesses = np.argmax(np.asarray(model.predict(x, batch_size=1000, verbose=0)), axis=-1)
        return float(np.mean(guesses == y))
    except Exception:
        return None


def measured_model(env):
    """The model's facts with its accuracy on the notebook's own test and training arrays: in the
    notebook, the check measures what the grader measures on its own copies of the data."""
    facts = model_of(env)
    if "error" not in facts and not env.get(MEASURED_BY_GRADER):
        for key, images, labels in (("accuracy", "test_images", "test_labels"),
                                    ("train_accuracy", "training_images", "training_labels")):
            value = accuracy_of(env.get("model"), env.get(images), env.get(labels))
            if value is not None:
                facts[key] = value
    return facts


def same_weights(a, b) -> bool:
    """True when two live models hold the same weights (within 1e-6), and at least one."""
    mine, theirs = [w.numpy() for w in a.weights], [w.numpy() for w in b.weights]
    return len(mine) == len(theirs) > 0 and all(
        x.shape == y.shape and float(abs(x - y).max(initial=0)) <= 1e-6 for x, y in zip(mine, theirs))


def other_weights_problem(name):
    """The message for a model file that does not hold the trained model's weights."""
    return (f"{name} 裡的權重和現在訓練好的 model 不一樣（可能是以前留下的舊檔，或是在訓練之前存的）：請在訓練之後用 "
            f"model.save(\"fashion_mnist_model.keras\") 存檔，再讀回來。 / Expected {name} to hold the weights of "
            "your trained model, found other ones (a file left from an earlier run, or saved before training): save "
            "with model.save(\"fashion_mnist_model.keras\") after training, then load it back.")


# -- the checks ------------------------------------------------------------------------------------

def verdict(parts) -> tuple:
    """(fraction, messages) from [(weight, message or None)]: a part earns its weight when its
    message is None."""
    total = sum(w for w, _ in parts)
    earned = sum(w for w, m in parts if m is None)
    return (earned / total if total else 0.0), [m for _, m in parts if m]


def array(values, name):
    """The collected facts of the array ``name`` in ``values``, or {"type": "nothing"}."""
    found = values.get(name) if isinstance(values, dict) else None
    return found if isinstance(found, dict) else {"type": "nothing"}


def unset(name, found, question):
    """The message for a variable that has no value yet (None) or is still the blank (...), or None."""
    if found.get("type") in ("NoneType", "nothing"):
        return (f"{name} 還沒有值：請執行上面第 {question} 題的儲存格，讓它順利跑完（沒有錯誤）。 / "
                f"{name} has no value yet: run question {question}'s cell above and let it finish without an error.")
    if found.get("type") == "ellipsis":
        return f"{name} 還是 ...：請把 ... 換成你的答案。 / {name} is still ...: replace the ... with your answer."
    return None


def model_facts(values) -> dict:
    """The model's facts in a question's ``values``, or {"error": "no model"}."""
    model = values.get("model") if isinstance(values, dict) else None
    return model if isinstance(model, dict) else {"error": "no model"}


def no_model(model) -> str:
    """The message for a question whose model (``model``: its facts, with their error) is missing."""
    # The grader's reason is English (a file name, the evaluator's words): it stays in the English half.
    return ("評分程式讀不到你的 model：請確認上面建立、訓練 model 的儲存格都順利執行完，沒有錯誤。 / Expected a Keras "
            f"model named `model`, found none the grader could read ({model.get('error')}).")


def trained_problem(model):
    """Why a measured model does not look trained on the training set, or None: an honest model's
    training accuracy is at least its test accuracy (within TRAINING_MARGIN)."""
    test, train = model.get("accuracy"), model.get("train_accuracy")
    if not isinstance(test, (int, float)) or not isinstance(train, (int, float)):
        return ("評分程式沒辦法在訓練資料和測試資料上量這個模型。 / Expected a model the grader can measure on "
                "the training and the test set, found one it could not.")
    if train + TRAINING_MARGIN < test:
        return (f"這個模型在測試資料上（{test:.4f}）比在訓練資料上（{train:.4f}）準很多：它不是用訓練資料訓練的。"
                "請用 training_images 和 training_labels 訓練。 / Expected a model trained on the training set, found "
                f"one far more accurate on the test set ({test:.4f}) than on the training set ({train:.4f}). Train "
                "it on training_images and training_labels.")
    return None
