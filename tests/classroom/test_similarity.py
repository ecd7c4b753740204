"""Near-identical answers between students are flagged in the report, with the cells side by side; the
starter code and the reference answers are nobody's own. Fast: the tests' fake grader."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from fashion_kit import paths
from fashion_kit.classroom import batch, report, similarity

from .classroom_fakes import FakeGrader, fake_autograder

TEMPLATE = paths.STUDENTS / "en" / similarity.NOTEBOOK

# The answer cells, by the question whose check follows them; the others stay as handed out.
ANNA = {
    "q3_normalize": 'def scale_pixels(images, top=255.0):\n    scaled = images.astype("float32") / top\n'
                    "    assert scaled.max() <= 1.0 and scaled.min() >= 0.0\n    return scaled\n\n"
                    "training_images = scale_pixels(training_images)\ntest_images = scale_pixels(test_images)",
    "q4_model": "layers_wanted = [tf.keras.layers.Flatten(input_shape=(28, 28)), tf.keras.layers.Dense(128, activation=\"relu\")]\n"
                "layers_wanted.append(tf.keras.layers.Dense(10, activation=\"softmax\"))\n"
                "model = tf.keras.models.Sequential(layers_wanted)",
    "q10_param_count": "hidden_params = 28 * 28 * 128 + 128\noutput_params = 128 * 10 + 10\n"
                       "total_params = hidden_params + output_params\nif total_params < 10**6:\n"
                       "    print(hidden_params, output_params, total_params)",
}
# Anna's answers with every name changed and comments added: the same code.
BEN = {q: code.replace("scale_pixels", "normalise").replace("images", "imgs").replace("scaled", "out")
       .replace("layers_wanted", "stack").replace("training_imgs", "training_images").replace("test_imgs", "test_images")
       + "\n# my own work" for q, code in ANNA.items()}
CARL = {
    "q3_normalize": "import numpy\ntraining_images = numpy.divide(training_images, 255.0)\n"
                    "test_images = numpy.divide(test_images, 255.0)",
    "q4_model": "model = tf.keras.Sequential()\nmodel.add(tf.keras.layers.Flatten(input_shape=(28, 28)))\n"
                "model.add(tf.keras.layers.Dense(128, activation=tf.nn.relu))\n"
                "model.add(tf.keras.layers.Dense(10, activation=tf.nn.softmax))",
    "q10_param_count": "hidden_params, output_params = 784 * 128 + 128, 1290\n"
                       "total_params = sum([hidden_params, output_params])\nprint(hidden_params, output_params, total_params)",
}


def answered(path: Path, answers: dict[str, str]) -> Path:
    """The student notebook with ``answers`` in the answer cells of those questions."""
    nb = nbformat.read(TEMPLATE, as_version=4)
    cells = nb.cells
    for i, cell in enumerate(cells):
        if similarity.ANSWER_TAG in cell.metadata.get("tags", []):
            check = next((c.source for c in cells[i + 1:] if c.source.startswith("grader.check(")), "")
            question = check.split('"')[1] if '"' in check else ""
            if question in answers:
                cell.source = answers[question]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def grade(tmp_path, notebooks: dict[str, dict[str, str]]):
    source = tmp_path / "class"
    for name, answers in notebooks.items():
        answered(source / f"{name}.ipynb", answers)
    out = tmp_path / "graded"
    result = batch.grade_class(source, out, fake_autograder(tmp_path / "autograder.zip"), grade_fn=FakeGrader(),
                               jobs=1, use_watchdog=False)
    return result, out


def test_shared_answers_with_renamed_variables_are_the_one_pair_flagged(tmp_path):
    result, out = grade(tmp_path, {"anna_lee": ANNA, "ben_wu": BEN, "carl_diaz": CARL})
    assert [(p.a, p.b) for p in result.similar] == [("anna_lee", "ben_wu")]
    # A run that grades nothing again still finds the pair: the report is written anew each time.
    again = batch.grade_class(tmp_path / "class", out, tmp_path / "autograder.zip", grade_fn=FakeGrader(),
                              jobs=1, use_watchdog=False)
    assert again.skipped == 3 and [(p.a, p.b) for p in again.similar] == [("anna_lee", "ben_wu")]
    pair = result.similar[0]
    assert pair.similarity >= similarity.THRESHOLD
    assert [c.label for c in pair.cells] == ["q3_normalize", "q4_model", "q10_param_count"]
    assert pair.cells[2].code_a == ANNA["q10_param_count"] and pair.cells[2].code_b == BEN["q10_param_count"]

    page = report.html_report(result)
    assert page.count("<h3>") == 1 and "Similar submissions (1 pair(s))" in page
    assert "anna_lee and ben_wu" in page  # the students, as the gradebook names them without a roster
    # Both cells side by side, escaped.
    assert "if total_params &lt; 10**6:" in page and "if total_params < 10**6" not in page
    assert "def normalise(imgs, top=255.0):" in page and "def scale_pixels(images, top=255.0):" in page


def test_the_pair_names_the_students_of_the_roster(tmp_path):
    from fashion_kit import settings as settings_module
    from fashion_kit.classroom import outputs

    result, out = grade(tmp_path, {"anna_lee": ANNA, "ben_wu": BEN, "carl_diaz": CARL})
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("Student ID,Name,Email Address\nB1,Anna Lee,anna@example.edu\nB2,Ben Wu,ben@example.edu\n"
                           "B3,Carl Diaz,carl@example.edu\n", encoding="utf-8")
    written = outputs.for_batch(out, result, tmp_path / "autograder.zip", settings_module.Settings(), roster_file)
    page = report.html_report(result, roster=written)
    assert "<h3>Anna Lee (B1) and Ben Wu (B2): 100%</h3>" in page
    assert "<th>anna_lee: Anna Lee (B1)</th>" in page and "Carl Diaz (B3) and" not in page


def test_the_honest_notebook_scores_under_the_threshold_against_both(tmp_path):
    notebooks = {name: answered(tmp_path / f"{name}.ipynb", answers)
                 for name, answers in {"anna": ANNA, "ben": BEN, "carl": CARL}.items()}
    everyone = similarity.similar_pairs(notebooks, threshold=0.0)
    shares = {(p.a, p.b): p.similarity for p in everyone}
    assert shares[("anna", "ben")] == 1.0
    assert shares.get(("anna", "carl"), 0.0) < similarity.THRESHOLD
    assert shares.get(("ben", "carl"), 0.0) < similarity.THRESHOLD


def test_blank_notebooks_and_the_reference_answers_are_never_flagged(tmp_path):
    """Every blank notebook is the template; two students who wrote the reference answers share
    nothing of their own either."""
    source = tmp_path / "class"
    source.mkdir()
    for name in ("blank_one", "blank_two", "blank_three"):
        (source / f"{name}.ipynb").write_bytes(TEMPLATE.read_bytes())
    for name in ("right_one", "right_two"):
        (source / f"{name}.ipynb").write_bytes((paths.SOLUTIONS / "en" / similarity.NOTEBOOK).read_bytes())
    result = batch.grade_class(source, tmp_path / "graded", fake_autograder(tmp_path / "autograder.zip"),
                               grade_fn=FakeGrader(), jobs=1, use_watchdog=False)
    assert len(result.records) == 5 and result.similar == []
    reference = similarity.answer_cells(paths.SOLUTIONS / "en" / similarity.NOTEBOOK)
    assert len(reference) == 9 and all("..." not in code for _, code in reference), "the reference was compared"
    assert "Similar submissions" not in report.html_report(result)


def test_without_a_template_nothing_is_compared(tmp_path):
    notebooks = {n: answered(tmp_path / f"{n}.ipynb", ANNA) for n in ("a", "b")}
    assert [(p.a, p.b) for p in similarity.similar_pairs(notebooks)] == [("a", "b")]
    assert similarity.similar_pairs(notebooks, template_notebooks=[]) == []


def test_answer_cells_are_the_tagged_cells_labelled_by_the_check_after_them():
    cells = similarity.answer_cells(TEMPLATE)
    labels = [label for label, _ in cells]
    assert labels[:3] == ["q1_load_data", "q2_class_names", "q3_normalize"]
    tagged = [c for c in json.loads(TEMPLATE.read_text(encoding="utf-8"))["cells"]
              if similarity.ANSWER_TAG in c["metadata"].get("tags", [])]
    assert len(cells) == len(tagged)
    # The reference answers carry no tags: the cell before each check is the answer.
    reference = similarity.answer_cells(paths.SOLUTIONS / "en" / similarity.NOTEBOOK)
    assert [label for label, _ in reference] == labels[:9]
