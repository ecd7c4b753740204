"""Question 7's check: collect_q7_save_load turns the notebook's variables into plain values and
check_q7_save_load decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    MEASURED_BY_GRADER, other_weights_problem, same_weights)


def saved_file_problem(path, model):
    """Why the model file at ``path`` does not hold ``model``'s weights (a file left from an earlier
    run, saved before training), or None."""
    try:
        import keras

        if same_weights(model, keras.models.load_model(path, compile=False)):
            return None
    except Exception:
        # Keras's own reason names its internals; what a student can change is how the model is written.
        return (f"{path} 用 keras.models.load_model 讀不回來：請把 activation 寫成字串（例如 'relu'、'softmax'），"
                "再用 model.save(\"fashion_mnist_model.keras\") 存一次。 / "
                f"Expected {path} to load back with keras.models.load_model, found it could not: write each "
                "activation as a string (such as 'relu' or 'softmax') and save it again with "
                "model.save(\"fashion_mnist_model.keras\").")
    return other_weights_problem(path)


def collect_q7_save_load(env) -> dict:
    import os

    model, loaded = env.get("model"), env.get("loaded_model")
    files = [f for f in ("fashion_mnist_model.keras", "fashion_mnist_model.h5") if os.path.isfile(f)]
    same = None
    if loaded is not None and loaded is not model and hasattr(loaded, "weights") and hasattr(model, "weights"):
        try:
            same = same_weights(model, loaded)
        except Exception:
            same = False
    found = {"files": files, "loaded": {"type": type(loaded).__name__, "is_model": hasattr(loaded, "to_json"),
                                        "is_the_model_itself": loaded is model, "same_weights": same}}
    if files and hasattr(model, "weights") and not env.get(MEASURED_BY_GRADER):
        # The file the grader takes (the .keras one when both are there) must hold the trained model,
        # whichever file loaded_model was read from.
        found["saved"] = saved_file_problem(files[0], model) or True
    return found


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
