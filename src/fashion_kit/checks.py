"""The assignment's checks: one implementation of each question's check, on plain values.

Every question is decided by a pair of functions here:

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
are copied into the notebook's tests; :mod:`fashion_kit.check_code` does the copying.
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
            times = part * np.float64(255.0)
            rounded = np.rint(times)
            exact = bool(np.abs(np.subtract(times, rounded, out=times), out=times).max() <= 1e-3)
            if exact:
                scaled.update(rounded.astype(np.float32))
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

def collect_q1_load_data(env) -> dict:
    return {name: describe_array(env.get(name)) for name in SHAPES}


def collect_q2_class_names(env) -> dict:
    names = env.get("class_names")
    found = plain_list(names)
    if isinstance(found, dict) and isinstance(names, (list, tuple)) and any(x is Ellipsis for x in names):
        found["unfilled"] = True
    return {"class_names": found}


def collect_q3_normalize(env) -> dict:
    return {name: describe_array(env.get(name)) for name in ("training_images", "test_images")}


def _model_of(env):
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


def _measured_model(env):
    """The model's facts with its accuracy on the notebook's own test and training arrays: in the
    notebook, the check measures what the grader measures on its own copies of the data."""
    facts = _model_of(env)
    if "error" not in facts:
        for key, images, labels in (("accuracy", "test_images", "test_labels"),
                                    ("train_accuracy", "training_images", "training_labels")):
            value = accuracy_of(env.get("model"), env.get(images), env.get(labels))
            if value is not None:
                facts[key] = value
    return facts


def _same_weights(a, b) -> bool:
    mine, theirs = [w.numpy() for w in a.weights], [w.numpy() for w in b.weights]
    return len(mine) == len(theirs) > 0 and all(
        x.shape == y.shape and float(abs(x - y).max(initial=0)) <= 1e-6 for x, y in zip(mine, theirs))


def saved_file_problem(path, model):
    """Why the model file at ``path`` does not hold ``model``'s weights (a file left from an earlier
    run, saved before training), or None."""
    try:
        import keras

        if _same_weights(model, keras.models.load_model(path, compile=False)):
            return None
    except Exception:
        # Keras's own reason names its internals; what a student can change is how the model is written.
        return (f"{path} 用 keras.models.load_model 讀不回來：請把 activation 寫成字串（例如 'relu'、'softmax'），"
                "再用 model.save(\"fashion_mnist_model.keras\") 存一次。 / "
                f"Expected {path} to load back with keras.models.load_model, found it could not: write each "
                "activation as a string (such as 'relu' or 'softmax') and save it again with "
                "model.save(\"fashion_mnist_model.keras\").")
    return other_weights_problem(path)


def other_weights_problem(name):
    """The message for a model file that does not hold the trained model's weights."""
    return (f"{name} 裡的權重和現在訓練好的 model 不一樣（可能是以前留下的舊檔，或是在訓練之前存的）：請在訓練之後用 "
            f"model.save(\"fashion_mnist_model.keras\") 存檔，再讀回來。 / Expected {name} to hold the weights of "
            "your trained model, found other ones (a file left from an earlier run, or saved before training): save "
            "with model.save(\"fashion_mnist_model.keras\") after training, then load it back.")


def collect_q4_model(env) -> dict:
    return {"model": _model_of(env)}


def collect_q5_compile(env) -> dict:
    return {"model": _model_of(env)}


def collect_q6_fit(env) -> dict:
    fits = env.get("__fashion_kit_fits__")
    return {"model": _measured_model(env), "history": describe_history(env.get("history")),
            "fits": fits if isinstance(fits, list) else None}


def collect_q7_save_load(env) -> dict:
    import os

    model, loaded = env.get("model"), env.get("loaded_model")
    files = [f for f in ("fashion_mnist_model.keras", "fashion_mnist_model.h5") if os.path.isfile(f)]
    same = None
    if loaded is not None and loaded is not model and hasattr(loaded, "weights") and hasattr(model, "weights"):
        try:
            same = _same_weights(model, loaded)
        except Exception:
            same = False
    found = {"files": files, "loaded": {"type": type(loaded).__name__, "is_model": hasattr(loaded, "to_json"),
                                        "is_the_model_itself": loaded is model, "same_weights": same}}
    if files and hasattr(model, "weights"):
        # The file the grader takes (the .keras one when both are there) must hold the trained model,
        # whichever file loaded_model was read from.
        found["saved"] = saved_file_problem(files[0], model) or True
    return found


def collect_q8_evaluate(env) -> dict:
    found = {"test_loss": plain_number(env.get("test_loss")), "test_acc": plain_number(env.get("test_acc"))}
    measured = accuracy_of(env.get("model"), env.get("test_images"), env.get("test_labels"))
    found["measured"] = [] if measured is None else [measured]
    return found


def collect_q9_accuracy(env) -> dict:
    return {"model": _measured_model(env), "threshold": MIN_TEST_ACCURACY}


def collect_q10_param_count(env) -> dict:
    return {name: plain_number(env.get(name)) for name in ("hidden_params", "output_params", "total_params")}


# -- the checks ------------------------------------------------------------------------------------

def _verdict(parts) -> tuple:
    """(fraction, messages) from [(weight, message or None)]: a part earns its weight when its
    message is None."""
    total = sum(w for w, _ in parts)
    earned = sum(w for w, m in parts if m is None)
    return (earned / total if total else 0.0), [m for _, m in parts if m]


def _array(values, name):
    found = values.get(name) if isinstance(values, dict) else None
    return found if isinstance(found, dict) else {"type": "nothing"}


def _unset(name, found, question):
    """The message for a variable that has no value yet (None) or is still the blank (...), or None."""
    if found.get("type") in ("NoneType", "nothing"):
        return (f"{name} 還沒有值：請執行上面第 {question} 題的儲存格，讓它順利跑完（沒有錯誤）。 / "
                f"{name} has no value yet: run question {question}'s cell above and let it finish without an error.")
    if found.get("type") == "ellipsis":
        return f"{name} 還是 ...：請把 ... 換成你的答案。 / {name} is still ...: replace the ... with your answer."
    return None


def _shape_problem(name, found, shape):
    unset = _unset(name, found, 1)
    if unset:
        return unset
    if found.get("type") != "ndarray":
        return (f"{name} 應該是 NumPy 陣列，但現在是 {found.get('type')}。請檢查 load_data() 那一行。 / "
                f"Expected {name} to be a NumPy array, found {found.get('type')}. Check the load_data() line.")
    if found.get("shape") != list(shape):
        shown = tuple(found.get("shape") or ())
        return f"{name} 的形狀應該是 {shape}，但現在是 {shown}。 / Expected {name}.shape == {shape}, found {shown}."
    return None


def check_q1_load_data(values, public=False) -> tuple:
    problems = []
    for name, shape in SHAPES.items():
        problems.append(_shape_problem(name, _array(values, name), shape))
    for name in ("training_labels", "test_labels"):
        found = _array(values, name)
        if found.get("type") == "ndarray" and not (found.get("kind") in "iu" and found.get("min") == 0
                                                    and found.get("max") == 9):
            low, high = found.get("min", found.get("dtype")), found.get("max", found.get("dtype"))
            problems.append(f"{name} 應該是 0 到 9 的整數，但現在是 {low} 到 {high}。 / "
                            f"Expected {name} to hold the classes 0 to 9, found {low} to {high}.")
    if not public and not any(problems):
        wrong = [n for n in SHAPES if _array(values, n).get("digest") != OFFICIAL_DIGESTS[n]]
        if wrong:
            problems.append(f"{', '.join(wrong)} 和 load_data() 讀到的資料不一樣。 / Expected the arrays "
                            f"load_data() returns, found other values in {', '.join(wrong)}.")
    return _verdict([(1, next((p for p in problems if p), None))])


def check_q2_class_names(values, public=False) -> tuple:
    names = values.get("class_names") if isinstance(values, dict) else None
    if isinstance(names, dict) and names.get("type") == "list" and names.get("unfilled"):
        return _verdict([(1, "class_names 裡還是 ...：請把 ... 換成上表的 10 個英文名稱，每個都用引號括起來，例如 "
                             "\"T-shirt/top\"。 / class_names still holds ...: replace the ... with the 10 names from "
                             "the table, each in quotes, such as \"T-shirt/top\".")])
    if not isinstance(names, list) or len(names) != 10:
        found = f" of length {len(names)}" if isinstance(names, list) else ""
        kind = "list" if isinstance(names, list) else (names or {}).get("type", "nothing") if isinstance(names, dict) else "nothing"
        return _verdict([(1, "class_names 應該是有 10 個名稱的串列。 / Expected class_names to be a list of 10 "
                             f"names, found {kind}{found}.")])
    if names[9] != "Ankle boot":
        return _verdict([(1, f'class_names[9] 應該是 "Ankle boot"，但現在是 {names[9]!r}。 / '
                             f'Expected class_names[9] == "Ankle boot", found {names[9]!r}.')])
    wrong = [i for i, (got, want) in enumerate(zip(names, CLASS_NAMES)) if got.strip().lower() != want.lower()]
    if wrong:  # the public check and the grade compare the same: the table is above the question
        return _verdict([(1, f"標籤 {wrong} 的名稱和表格不一樣：例如標籤 {wrong[0]} 現在是 {names[wrong[0]]!r}，表格寫的是 "
                             f"{CLASS_NAMES[wrong[0]]!r}。請對照表格檢查拼字和順序。 / Expected the table's names in "
                             f"label order; labels {wrong} differ (label {wrong[0]} is {names[wrong[0]]!r}, the table "
                             f"says {CLASS_NAMES[wrong[0]]!r}). Check the spelling and order.")])
    return _verdict([(1, None)])


def check_q3_normalize(values, public=False) -> tuple:
    parts = []
    for name in ("training_images", "test_images"):
        found, shape = _array(values, name), SHAPES[name]
        problem = _unset(name, found, 3)
        if problem:
            pass
        elif found.get("type") != "ndarray" or found.get("shape") != list(shape):
            shown = found.get("shape") or found.get("type")
            problem = (f"{name} 應該仍是形狀 {shape} 的陣列。 / Expected {name} to still be an array of shape "
                       f"{shape}, found {tuple(shown) if isinstance(shown, list) else shown}.")
        elif found.get("kind") != "f":
            problem = (f"{name} 應該是小數（float），但現在是 {found.get('dtype')}：請在第 3 題的儲存格寫 "
                       f"{name} = {name} / 255.0。 / Expected {name} to hold decimals (float), found "
                       f"{found.get('dtype')}: write {name} = {name} / 255.0 in question 3's cell.")
        elif found.get("min") == 0.0 and abs((found.get("max") or 0) - 1 / 255) < 1e-6:
            high = found.get("max")
            problem = (f"{name} 的最大值是 {high:g}（= 1/255）：除了兩次 255，正規化的儲存格大概執行了兩次。"
                       "請從第 1 題的儲存格重新往下執行（或重新啟動並全部執行），這個儲存格只執行一次。 / "
                       f"{name} runs up to {high:g} (= 1/255): it was divided by 255 twice, probably because this "
                       "cell ran twice. Run the cells again from question 1 on (or restart and run all), this cell once.")
        elif not (found.get("min") == 0.0 and abs((found.get("max") or 0) - 1.0) < 1e-6):
            low, high = found.get("min"), found.get("max")
            problem = (f"{name} 的數值應該在 0 到 1 之間（最小 0，最大 1），但現在是 {low:g} 到 {high:g}。 / "
                       f"Expected {name} to run from 0 to 1, found {low:g} to {high:g}.")
        elif not public and found.get("digest_times_255") != OFFICIAL_DIGESTS[name]:
            problem = (f"{name} 應該等於原始畫素除以 255，且圖片順序不變。 / Expected {name} to equal the "
                       "original pixels divided by 255, in the original order; found other values. Divide the "
                       "loaded images by 255.0 exactly once.")
        parts.append((1, problem))
    problems = [p for _, p in parts if p]
    return (1.0 if not problems else 0.0), problems


def _model_facts(values) -> dict:
    model = values.get("model") if isinstance(values, dict) else None
    return model if isinstance(model, dict) else {"error": "no model"}


def _no_model(model) -> str:
    # The grader's reason is English (a file name, the evaluator's words): it stays in the English half.
    return ("評分程式讀不到你的 model：請確認上面建立、訓練 model 的儲存格都順利執行完，沒有錯誤。 / Expected a Keras "
            f"model named `model`, found none the grader could read ({model.get('error')}).")


def structure_problem(model):
    """Why a model's facts are not the lesson's model, or None. The messages never print the
    parameter counts: they are question 10's answers."""
    if "error" in model:
        return _no_model(model)
    layers = model.get("layers") if isinstance(model.get("layers"), list) else []
    params = model.get("params") if isinstance(model.get("params"), list) else []
    dense = [p for row, p in zip(layers, params) if isinstance(row, list) and row[:1] == ["Dense"]]
    shape = model.get("input")
    if layers != EXPECTED_LAYERS:
        shown = ", ".join(f"{row[0]}" + (f"({row[1]}, {row[2]})" if row[1] else "") for row in layers
                          if isinstance(row, list) and len(row) == 3) or "nothing"
        return (f"model 的層應該依序是 Flatten、Dense(128, relu)、Dense(10, softmax)；現在是 {shown}。請檢查第 4 題的儲存格。 / "
                f"Expected model's layers to be Flatten, Dense(128, relu), Dense(10, softmax); found {shown}. "
                "Check question 4's cell.")
    if shape is None or not any(dense):
        return ("model 還不知道輸入圖片的大小（模型還沒有建好，所以還沒有參數）：第一層請寫 "
                "Flatten(input_shape=(28, 28))。 / model does not know the size of its input yet (it is not built, so "
                "it has no parameters): write the first layer as Flatten(input_shape=(28, 28)).")
    if shape != IMAGE_SHAPE:
        shown = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        return (f"model 的輸入形狀是 {shown}，但每張圖片是 28×28：第一層請寫 Flatten(input_shape=(28, 28))。 / "
                f"Expected model to take the 28×28 images, found the input shape {shown}: write the first layer "
                "as Flatten(input_shape=(28, 28)).")
    if dense != EXPECTED_PARAMS:
        return ("Dense 層的參數數量和課程的模型不一樣：每一層只要設定神經元數和 activation。 / Expected the Dense "
                "layers of the lesson, found other numbers of parameters: give each layer only its units and "
                "activation.")
    return None


def check_q4_model(values, public=False) -> tuple:
    model = _model_facts(values)
    # No model at all (the notebook's variable is unset, the grader found no snapshot): question 4's cell
    # did not finish, most often because its ... is still there (Keras refuses Sequential([...])).
    if model.get("error") == "model is NoneType" or str(model.get("error")).startswith("no model"):
        return _verdict([(1, "model 還沒有值：第 4 題的儲存格沒有順利跑完。請把儲存格裡的 ... 換成上面說明的三層，再執行一次，"
                             "直到沒有錯誤。 / model has no value yet: question 4's cell did not finish. Replace the ... "
                             "in it with the three layers described above and run it again until it finishes without "
                             "an error.")])
    return _verdict([(1, structure_problem(model))])


def check_q5_compile(values, public=False) -> tuple:
    model = _model_facts(values)
    if "error" in model:
        return _verdict([(1, _no_model(model))])
    if not model.get("compiled"):
        return _verdict([(1, "model 還沒有 compile：請執行第 5 題的 model.compile(...)，括號裡的 ... 要換成 optimizer、"
                             "loss 和 metrics 三個設定。 / Expected a compiled model, found one that was never compiled: "
                             "run question 5's model.compile(...), with the ... replaced by the optimizer, loss and "
                             "metrics settings.")])
    optimizer, loss = model.get("optimizer"), model.get("loss")
    given = model.get("loss_given") if isinstance(model.get("loss_given"), str) else loss
    metrics = model.get("metrics") if isinstance(model.get("metrics"), list) else []
    if optimizer != "adam":
        return _verdict([(1, f"optimizer 應該是 adam，但現在是 {optimizer}。 / Expected optimizer adam, found {optimizer}.")])
    if loss != "sparsecategoricalcrossentropy":
        return _verdict([(1, f"loss 應該是 sparse_categorical_crossentropy（標籤是整數），但現在是 {given}。 / "
                             f"Expected loss sparse_categorical_crossentropy (the labels are integers), found {given}.")])
    if not any(m in ACCURACY_NAMES for m in metrics):
        return _verdict([(1, f"metrics 應該包含 accuracy，但現在是 {metrics}：請寫 metrics=[\"accuracy\"]（用名字寫，"
                             "不要只照順序放）。 / Expected metrics to include accuracy, found "
                             f"{metrics}: write metrics=[\"accuracy\"] (by name, not by position).")])
    return _verdict([(1, None)])


def five_epochs_of(fits, iterations):
    """Why the recorded fit() calls are not five epochs over the training images, or None. Each fit
    records the examples handed to it, whether they are the training images, its batch size, its
    validation split and the epochs and steps per epoch it did; the steps must be what that batch
    size takes over the examples actually fitted (after the split), and the optimizer's steps must be
    what the fits took."""
    unreadable = "fit 的紀錄看不懂。 / Expected a record of model.fit(...), found something else."
    if not isinstance(fits, list) or not fits:
        return "沒有看到 model.fit(...)。 / Expected a call of model.fit(...), found none."
    steps = epochs = 0
    for fit in fits:
        if not isinstance(fit, dict):
            return unreadable
        examples, batch, done, per_epoch = (fit.get(k) for k in ("examples", "batch_size", "epochs_done", "steps"))
        split = fit.get("validation_split") or 0.0
        if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (examples, batch, per_epoch)) \
                or not isinstance(done, int) or isinstance(done, bool) or done < 0 \
                or not isinstance(split, (int, float)) or not 0 <= split < 1:
            return unreadable
        if fit.get("images") != "training_images" or examples != TRAINING_EXAMPLES:
            return ("model.fit(...) 應該用全部的 training_images 和 training_labels 訓練。 / Expected model.fit(...) "
                    f"to train on the {TRAINING_EXAMPLES} training images, found {examples} other ones."
                    if fit.get("images") != "training_images" else
                    f"model.fit(...) 訓練了 {examples} 張圖片，不是全部的訓練資料。 / Expected model.fit(...) to "
                    f"train on the {TRAINING_EXAMPLES} training images, found {examples}.")
        # Keras keeps ceil(n × (1 − split)) examples for training; other rounding is accepted too.
        kept = {math.ceil(examples * (1 - split)), int(examples * (1 - split)), examples - int(examples * split)}
        if per_epoch not in {math.ceil(k / batch) for k in kept}:
            return (f"fit 每個 epoch 走了 {per_epoch} 步，和批次大小 {batch} 對不上。 / Expected "
                    f"{math.ceil(max(kept) / batch)} steps per epoch at batch size {batch}, found {per_epoch}.")
        steps += per_epoch * done
        epochs += done
    if len(fits) > 1 and epochs != EXPECTED_EPOCHS:
        return refit_problem(len(fits), epochs)
    if epochs != EXPECTED_EPOCHS:
        return (f"應該訓練 5 個 epoch，但 model.fit(...) 訓練了 {epochs} 個。 / Expected 5 epochs of training, "
                f"found {epochs}.")
    if iterations != steps:
        return (f"模型的最佳化器更新了 {iterations} 次，和 fit 的 {steps} 次不一樣。 / Expected the optimizer to have "
                f"taken the {steps} steps of those fits (9375 for 5 epochs at the default batch size), found "
                f"{iterations}.")
    return None


def refit_problem(runs, epochs):
    """The message for a model trained by more than one run of fit: each run continues training."""
    runs_zh = f"執行了 {runs} 次" if runs else "執行了不只一次"
    runs_en = f"ran {runs} times" if runs else "ran more than once"
    total_zh = f"，一共 {epochs} 個 epoch" if epochs else ""
    total_en = f" ({epochs} epochs in all)" if epochs else ""
    return (f"model.fit(...) {runs_zh}：每執行一次，都會接著訓練同一個模型{total_zh}，不會重新開始。要重新開始，"
            "請再執行第 4 題的儲存格（建立新的模型），然後執行第 5 題和第 6 題各一次。 / "
            f"model.fit(...) {runs_en}: each run continues training the same model{total_en}, it does not start "
            "over. To start over, run question 4's cell again (a new model), then questions 5 and 6 once each.")


def check_q6_fit(values, public=False) -> tuple:
    history = values.get("history") if isinstance(values, dict) else None
    history = history if isinstance(history, dict) else {}
    epochs = history.get("epochs")
    if history.get("type") == "NoneType":
        return _verdict([(1, "history 還沒有值：model.fit(...) 沒有順利跑完（請看它的錯誤訊息），或是結果沒有存到 history"
                             "（history = model.fit(...)）。 / history has no value: model.fit(...) did not finish (read "
                             "its error message) or its result was not stored (history = model.fit(...)).")])
    if history.get("type") != "History":
        return _verdict([(1, f"history 應該是 model.fit(...) 的傳回值，但現在是 {history.get('type')}。 / "
                             f"Expected history to be what model.fit(...) returns, found {history.get('type')}.")])
    if epochs != EXPECTED_EPOCHS:
        return _verdict([(1, f"應該訓練 5 個 epoch，但 history 裡有 {epochs} 個。 / Expected 5 epochs in history, "
                             f"found {epochs}.")])
    model = _model_facts(values)
    if "error" in model:
        return _verdict([(1, _no_model(model))])
    if public:
        # The notebook has no record of each fit: the optimizer's steps show a model trained by more
        # fits than history's, and its accuracies show a model trained on the test set.
        steps = (history.get("params") or {}).get("steps")
        if isinstance(steps, int) and isinstance(model.get("iterations"), int) \
                and model["iterations"] > steps * EXPECTED_EPOCHS:
            return _verdict([(1, refit_problem(None, None))])
        if "accuracy" in model and "train_accuracy" in model:
            return _verdict([(1, trained_problem(model))])
        return _verdict([(1, None)])
    return _verdict([(1, five_epochs_of(values.get("fits"), model.get("iterations")))])


def check_q7_save_load(values, public=False) -> tuple:
    """Half for the file (fashion_mnist_model.keras or .h5, with the trained weights), half for
    loading it back into loaded_model; nothing without the file."""
    values = values if isinstance(values, dict) else {}
    files = values.get("files") if isinstance(values.get("files"), list) else []
    # The grader's: the file loads and holds the snapshot's weights; in the notebook, the check's own
    # loading of each model file against the live model.
    saved = values.get("saved")
    if not files:
        return 0.0, ["找不到 fashion_mnist_model.keras。請用 model.save(...) 存檔。 / Expected the file "
                     "fashion_mnist_model.keras, found none. Save it with model.save(...)."]
    if (not public or "saved" in values) and saved is not True:
        return 0.0, [saved if isinstance(saved, str) else
                     "你存的模型檔和訓練好的 model 權重不一樣：請在訓練之後才存檔。 / Expected your saved file to "
                     "hold the weights of your trained model, found different ones: save after training."]
    loaded = values.get("loaded") if isinstance(values.get("loaded"), dict) else {}
    if not loaded.get("is_model"):
        return 0.5, [f"loaded_model 應該是讀回來的 Keras 模型，但現在是 {loaded.get('type')}。 / Expected "
                     f"loaded_model to be the Keras model you loaded, found {loaded.get('type')}."]
    if loaded.get("is_the_model_itself"):
        return 0.5, ["loaded_model 就是 model 本身，不是從檔案讀回來的：請寫 loaded_model = "
                     "tf.keras.models.load_model(\"fashion_mnist_model.keras\")。 / Expected loaded_model to be read "
                     "back from the file, found model itself: write loaded_model = "
                     "tf.keras.models.load_model(\"fashion_mnist_model.keras\")."]
    if loaded.get("same_weights") is not True:
        return 0.5, ["loaded_model 應該是用 load_model 從檔案讀回來的模型，權重和訓練好的 model 一樣。 / Expected "
                     "loaded_model to be the model read back from the file with load_model, with the weights of "
                     "your trained model."]
    return 1.0, []


def check_q8_evaluate(values, public=False) -> tuple:
    """The reported test_acc must be the evaluated model's accuracy on the test set: measured by the
    grader on the standard scaling or on the notebook's own test_images; half the points when it is
    not, nothing when there is no model to measure."""
    values = values if isinstance(values, dict) else {}
    for name in ("test_acc", "test_loss"):
        found = values.get(name) if isinstance(values.get(name), dict) else {}
        if found.get("type") in ("list", "tuple") and found.get("length") == 2:
            return 0.0, [f"{name} 現在是兩個數字的串列（損失和準確率）：model.evaluate(...) 會傳回兩個值，請把它們分開存："
                         "test_loss, test_acc = model.evaluate(test_images, test_labels)。 / "
                         f"{name} holds a list of two numbers (the loss and the accuracy): model.evaluate(...) returns "
                         "both, so unpack them: test_loss, test_acc = model.evaluate(test_images, test_labels)."]
        if found.get("kind") not in ("integer", "real") or found.get("value") is None:
            return 0.0, [f"{name} 應該是一個數字，但現在是 {found.get('type')}。 / Expected {name} to be a number, "
                         f"found {found.get('type')}."]
    reported = values["test_acc"]["value"]
    if not 0.0 <= reported <= 1.0:
        return 0.0, [f"test_acc 應該在 0 到 1 之間，但現在是 {reported}。 / Expected 0 <= test_acc <= 1, found {reported}."]
    measured = [x for x in (values.get("measured") or []) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not measured:
        model = _model_facts(values)
        return 0.0, [_no_model(model if "error" in model else {"error": "no accuracy"})]
    if any(abs(reported - x) <= AGREEMENT_TOLERANCE for x in measured):
        return 1.0, []
    return 0.5, [f"你回報的 test_acc 是 {reported:.4f}，但這個模型在測試資料上的準確率是 {measured[0]:.4f}。"
                 "請用 model.evaluate(test_images, test_labels) 算 test_acc，不要改動測試資料。 / Expected test_acc "
                 f"to match your model's accuracy on the test set, {measured[0]:.4f}, found {reported:.4f}. Compute "
                 "it with model.evaluate(test_images, test_labels) on the test data."]


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


def check_q9_accuracy(values, public=False) -> tuple:
    """The evaluated model (question 8's) is the one built at question 4 and trained at question 6
    (saved at question 7), trained on the training set, and reaches the threshold on the grader's
    test set."""
    values = values if isinstance(values, dict) else {}
    model = _model_facts(values)
    if "error" in model:
        return 0.0, [_no_model(model)]
    if public and not isinstance(model.get("accuracy"), (int, float)):
        return 0.0, ["model 沒辦法判斷 test_images 的類別：請先讓上面的題目都順利執行完，沒有錯誤。 / Expected model "
                     "to classify test_images, found it could not: run the questions above until they finish "
                     "without an error."]
    if not public and values.get("same_model") is not True:
        return 0.0, [values.get("same_model") if isinstance(values.get("same_model"), str) else
                     "評分的模型應該是第 4 題建立、第 6 題訓練、第 8 題評估的同一個 model。 / Expected the model "
                     "evaluated at question 8 to be the one built at question 4 and trained at question 6."]
    problem = trained_problem(model)
    if problem:
        return 0.0, [problem]
    threshold, value = values.get("threshold"), model.get("accuracy")
    if not isinstance(threshold, (int, float)):
        return 0.0, ["沒有門檻。 / Expected a threshold, found none."]
    if public:  # measured on the notebook's own test arrays, against the default threshold
        if value >= threshold:
            return 1.0, []
        return 0.0, [f"你的模型在測試資料上的準確率是 {value:.4f}，需要至少 {threshold:.2f}（老師可能另外設定門檻）。請檢查"
                     f"正規化、模型結構和訓練的 epoch 數。 / Expected a test accuracy of at least {threshold:.2f} (unless "
                     f"your instructor set another threshold), found {value:.4f} on your test_images. Check the "
                     "normalisation, the layers and the number of epochs."]
    if value >= threshold:
        return 1.0, [f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}（門檻 {threshold:.2f}）。 / The grader "
                     f"measured your model at {value:.4f} test accuracy on its own copy of the test set (needed "
                     f"{threshold:.2f})."]
    return 0.0, [f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}，需要至少 {threshold:.2f}。請檢查正規化、"
                 f"模型結構和訓練的 epoch 數。 / Expected a test accuracy of at least {threshold:.2f}, found "
                 f"{value:.4f} on the grader's own copy of the test set. Check the normalisation, the layers and "
                 "the number of epochs."]


def check_q10_param_count(values, public=False) -> tuple:
    values = values if isinstance(values, dict) else {}
    found = {}
    for name in ("hidden_params", "output_params", "total_params"):
        number = values.get(name) if isinstance(values.get(name), dict) else {}
        if number.get("kind") != "integer":
            kind = number.get("type") or number.get("kind")
            return 0.0, [f"{name} 應該是整數，但現在是 {kind}。 / Expected {name} to be a whole number, found {kind}."]
        found[name] = number["value"]
    hidden, output, total = found["hidden_params"], found["output_params"], found["total_params"]
    # Inputs × neurons weights plus one bias per neuron, as the text above the question says.
    for name, value, inputs, neurons in (("hidden_params", hidden, 784, 128), ("output_params", output, 128, 10)):
        if value == inputs * neurons:
            return 0.0, [f"{name} 是 {value} = {inputs} × {neurons}：這只算了權重，還要加上每個神經元一個 bias（{neurons} 個）。 / "
                         f"{name} is {value} = {inputs} × {neurons}, the weights only: add one bias per neuron ({neurons})."]
        if value != inputs * neurons + neurons:
            return 0.0, [f"{name} 現在是 {value}，不對。這一層有 {inputs} 個輸入和 {neurons} 個神經元："
                         "參數 = 輸入數 × 神經元數 + 神經元數。 / "
                         f"{name} is {value}, which is off. This layer has {inputs} inputs and {neurons} neurons: "
                         "parameters = inputs × neurons + neurons."]
    if total != hidden + output:
        return 0.0, [f"total_params 應該等於 hidden_params + output_params，但現在是 {total} ≠ {hidden} + {output}。 / "
                     f"Expected total_params == hidden_params + output_params, found {total} != {hidden} + {output}."]
    return 1.0, []
