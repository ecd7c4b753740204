"""The challenge's entry, read by the trusted core: the recipe of ``build_challenge_model()`` as data.

Phase 1 calls the notebook's ``build_challenge_model()`` and leaves what Keras says of the model it
returns (``model.to_json()``: the layers, their settings, the compile settings) with the notebook's
``CHALLENGE_EPOCHS`` and ``CHALLENGE_BATCH_SIZE`` in the evidence folder. The student's kernel wrote
that file, so it is read here as hostile JSON: size-limited, checked against :data:`SCHEMA`, then
walked for anything that is not one of Keras's own objects. A recipe that passes is built and trained
by the grader's trainer (:mod:`trainer`), which runs none of the student's code: Keras builds the
model from this configuration with fresh random weights.

What is refused, each with one message in both languages: a model that is not a Sequential or
Functional model (a subclassed one), a Lambda layer (code), a custom object (a layer, function,
initialiser or loss of the notebook's own), a constant initialiser or any list of values long enough
to carry data (a lookup of the test set could hide in it), a model that is not compiled, and a file
that is not a recipe at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from .. import contract as c
from . import layout

# An honest recipe is a few kilobytes (the reference CNN's: 6 kB); a few hundred layers still fit.
MAX_RECIPE_BYTES = 256 * 2**10
# No honest configuration holds a list of more values than this (a shape, a kernel size, a stride):
# more would be data, and data is how a lookup of the test set would ride in on a recipe.
MAX_LIST_VALUES = 64
MAX_EPOCHS = 1000
MODEL_CLASSES = ("Sequential", "Functional")
# Objects of Keras's serialization format that are not classes: a tensor's place in a graph, a tuple.
PLAIN_MARKERS = ("__keras_tensor__", "__tuple__")
# Keras layers that run code or hold data rather than learn it.
CODE_LAYERS = ("Lambda", "__lambda__")
FOREIGN_LAYERS = ("TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper")
CONSTANT_INITIALISERS = ("Constant",)

SCHEMA = {
    "type": "object",
    "oneOf": [
        {"required": ["error"], "additionalProperties": False, "properties": {"error": {"type": "string"}}},
        {"required": ["model", "epochs", "batch_size"], "additionalProperties": False, "properties": {
            "model": {"type": "object", "required": ["class_name", "config"],
                      "properties": {"class_name": {"type": "string"}, "config": {"type": "object"}}},
            "epochs": {"type": "integer", "minimum": 1, "maximum": MAX_EPOCHS},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 60000},
        }},
    ],
}

# One message for each kind of refusal: what was expected, what was found.
REFUSALS = {
    "garbage": ("評分程式讀不到 build_challenge_model() 的模型設定（{found}）。 / Expected the recipe of "
                "build_challenge_model() (its model's settings, CHALLENGE_EPOCHS and CHALLENGE_BATCH_SIZE), "
                "found something the grader cannot read ({found})."),
    "failed": ("評分時執行 build_challenge_model() 出錯了（{found}）。 / Expected build_challenge_model() to "
               "return a compiled Keras model, found that it failed during grading ({found})."),
    "subclassed": ("挑戰模型要用 Sequential 或 Functional（keras.Model(inputs, outputs)）建立，不能是自訂的 "
                   "Model 子類別（{found}）。 / Expected a Sequential or Functional model (keras.Model(inputs, "
                   "outputs)), found a subclassed model ({found}): the grader rebuilds your model from its "
                   "settings, which a subclass does not carry."),
    "lambda": ("挑戰模型不能用 Lambda 層（{found}）：評分程式不執行你的程式碼。請改用 Keras 內建的層。 / "
               "Expected Keras's built-in layers only, found a Lambda layer ({found}): the grader runs none of "
               "your code. Use a built-in layer instead."),
    "custom": ("挑戰模型只能用 Keras 內建的層、函式、初始化方法、最佳化器和損失函數，但找到自訂的 {found}。 / "
               "Expected Keras's built-in layers, functions, initialisers, optimizers and losses only, found "
               "your own {found}: the grader builds your model with Keras alone."),
    "constant": ("挑戰模型的權重要從亂數開始，由評分程式訓練，不能用固定的初始值（{found}）。 / Expected "
                 "weights that start random and are trained by the grader, found fixed starting values "
                 "({found}). Use Keras's default initialisers (or another random one)."),
    "unbuildable": ("Keras 沒辦法只用它內建的東西，從你的模型設定建立模型（{found}）。 / Expected a recipe Keras "
                    "builds from its own layers alone, found one it cannot build ({found})."),
    "not_compiled": ("build_challenge_model() 傳回的模型還沒有 compile：請在 return 之前呼叫 model.compile(...)。 / "
                     "Expected build_challenge_model() to return a compiled model, found one without "
                     "model.compile(...): compile it before returning it."),
}


class Refused(ValueError):
    """The recipe is not one the grader trains; ``str()`` is the message for the student."""

    def __init__(self, kind: str, found: str = ""):
        self.kind = kind
        super().__init__(REFUSALS[kind].format(found=_shown(found)))


def _shown(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read(evidence: Path, scratch: Path) -> dict | None:
    """The recipe phase 1 left in ``evidence``, checked: {"model": Keras's JSON of the model,
    "epochs": n, "batch_size": n}; None when the notebook did not take the challenge. Raises
    :class:`Refused` with the student's message for anything else."""
    target = scratch / ".challenge-recipe.json"
    problem = layout.copy_untrusted(evidence, c.CHALLENGE_RECIPE_FILE, target, MAX_RECIPE_BYTES)
    if problem == "missing":
        return None
    if problem is not None:
        raise Refused("garbage", problem)
    try:
        recipe = json.loads(target.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise Refused("garbage", f"not JSON: {type(e).__name__}") from None
    finally:
        target.unlink(missing_ok=True)
    return check(recipe)


def check(recipe) -> dict:
    """``recipe`` if the grader trains it; else :class:`Refused`."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(recipe))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "the file"
        raise Refused("garbage", f"{where}: {error.message}")
    if "error" in recipe:
        raise Refused("failed", recipe["error"])
    model = recipe["model"]
    if model.get("class_name") not in MODEL_CLASSES or not _keras_module(model.get("module")):
        raise Refused("subclassed", f"{model.get('class_name')} from {model.get('module')}")
    for found in _objects(model):
        _check_object(found)
    compiled = model.get("compile_config")
    if not isinstance(compiled, dict) or not compiled.get("optimizer") or not compiled.get("loss"):
        raise Refused("not_compiled")
    return recipe


def _keras_module(module) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _objects(value):
    """Every serialized object (a dict with a class_name) in ``value``; refuses long lists of values
    on the way. Iterative: the file's nesting is the student's, Python's stack is not."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            values = _values_in(item)
            if values > MAX_LIST_VALUES:
                raise Refused("constant", f"a list of {values} values")
            stack.extend(x for x in item if isinstance(x, (dict, list)))


def _values_in(items: list) -> int:
    """How many plain values a list holds, through nested lists (a matrix counts all its numbers)."""
    count, stack = 0, [items]
    while stack:
        for x in stack.pop():
            if isinstance(x, list):
                stack.append(x)
            elif not isinstance(x, dict):
                count += 1
    return count


def _check_object(found: dict) -> None:
    name = found.get("class_name")
    shown = name if isinstance(name, str) else repr(name)
    if name == "function":  # a function of the notebook's, saved by its name
        shown = f"function {found.get('config')!r}"
    if name in CODE_LAYERS:
        raise Refused("lambda", shown)
    if "module" not in found and name in PLAIN_MARKERS:
        return
    module, registered = found.get("module"), found.get("registered_name")
    if name in FOREIGN_LAYERS or not _keras_module(module) or registered not in (None, name):
        raise Refused("custom", f"{shown} ({registered or module})")
    if name in CONSTANT_INITIALISERS:
        raise Refused("constant", shown)
