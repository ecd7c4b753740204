"""Both languages, one source: every narrative cell exists in Traditional Chinese and English, the
Chinese is already in Taiwan's standard form (OpenCC's s2twp conversion leaves it unchanged), and the
zh-TW notebook is Chinese throughout: Otter's own cells, the code comments and the pictures' words."""

import io
import re
import tokenize
import types

import pytest

from fashion_kit import assign, notebooks, paths, settings

opencc = pytest.importorskip("opencc", reason="the language checks need OpenCC (the dev extra)")

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# OpenCC's Taiwan phrase table turns 參數 (a model's parameters) into 引數 (the arguments of a function
# call), a different idea, and 損失函數 into 損失函式, where Taiwan's machine-learning courses write
# 損失函數 (a mathematical function, not a program's): these words are masked before the comparison.
KEEP = ("參數", "損失函數")
# Mainland terms with a different Taiwan word; s2twp catches most, this list names them clearly.
MAINLAND = {"數據": "資料", "網絡": "網路", "程序": "程式", "信息": "資訊", "軟件": "軟體", "默認": "預設",
            "文件": "檔案", "代碼": "程式碼", "變量": "變數", "打印": "印出", "加載": "載入", "調用": "呼叫",
            "內存": "記憶體", "對象": "物件", "數組": "陣列", "字符串": "字串", "視頻": "影片", "屏幕": "螢幕",
            "隨機數": "亂數", "損失函式": "損失函數"}


@pytest.fixture(scope="module")
def master():
    return notebooks.read(paths.MASTER)


@pytest.fixture(scope="module")
def converter():
    return opencc.OpenCC("s2twp")


def chinese_texts(nb):
    """(where, text) for every piece of Chinese the students read: the zh-TW narrative, and the
    code cells' strings and comments (test messages, picture labels)."""
    for i, cell in enumerate(nb.cells):
        lang = notebooks.cell_language(cell)
        if lang == "en" or not CJK.search(cell.source):
            continue
        yield f"cell {i} ({cell.cell_type}, {lang or 'shared'})", cell.source


def differences(converter, text):
    masked = text
    for word in KEEP:
        masked = masked.replace(word, "\ue000" * len(word))
    converted = converter.convert(masked)
    if len(converted) != len(masked):  # s2twp swaps phrases of equal length; fall back to a whole-text diff
        return [(masked, converted)] if converted != masked else []
    found, i = [], 0
    while i < len(masked):
        if masked[i] != converted[i]:
            j = i
            while j < len(masked) and masked[j] != converted[j]:
                j += 1
            found.append((text[max(0, i - 6):j + 6], converted[max(0, i - 6):j + 6]))
            i = j
        i += 1
    return found


def test_narrative_cells_come_in_language_pairs(master):
    tagged = [(i, notebooks.cell_language(c)) for i, c in enumerate(master.cells) if notebooks.cell_language(c)]
    problems = []
    for (i, lang), nxt in zip(tagged[::2], tagged[1::2] + [(None, None)]):
        j, next_lang = nxt
        if lang != "zh-TW" or next_lang != "en" or j != i + 1:
            problems.append(f"cell {i} ({lang}) should be followed by its lang:en twin, found "
                            f"{'nothing' if j is None else f'cell {j} ({next_lang})'}")
    assert not problems, "\n".join(problems)
    for i, cell in enumerate(master.cells):
        if cell.cell_type == "markdown":
            assert notebooks.cell_language(cell) in notebooks.LANGUAGES, (
                f"markdown cell {i} has no lang:zh-TW / lang:en tag: every narrative cell is written "
                f"in both languages. It starts {cell.source[:60]!r}"
            )


def test_pairs_are_in_the_right_language(master):
    for i, cell in enumerate(master.cells):
        lang = notebooks.cell_language(cell)
        if lang == "zh-TW" and cell.cell_type == "markdown":
            assert CJK.search(cell.source), f"cell {i} is tagged lang:zh-TW but has no Chinese: {cell.source[:60]!r}"
        if lang == "en":
            assert not CJK.search(cell.source), (
                f"cell {i} is tagged lang:en but contains Chinese: {CJK.search(cell.source).group()!r}"
            )


def test_pairs_match_in_kind(master):
    cells = master.cells
    for i, cell in enumerate(cells[:-1]):
        if notebooks.cell_language(cell) == "zh-TW":
            twin = cells[i + 1]
            assert twin.cell_type == cell.cell_type, f"cells {i} and {i + 1} are a pair of different kinds"
            if cell.source.startswith("#"):
                level = len(cell.source) - len(cell.source.lstrip("#"))
                twin_level = len(twin.source) - len(twin.source.lstrip("#"))
                assert level == twin_level, f"cells {i} and {i + 1}: headings of different levels"


def test_chinese_is_taiwan_standard_form(master, converter):
    found = []
    for where, text in chinese_texts(master):
        for original, converted in differences(converter, text):
            found.append(f"{where}: {original!r} → s2twp: {converted!r}")
    assert not found, "Text OpenCC's s2twp would change (use the Taiwan form):\n" + "\n".join(found)


def test_no_mainland_terms(master):
    found = [f"{where}: {term} (Taiwan: {taiwan})"
             for where, text in chinese_texts(master)
             for term, taiwan in MAINLAND.items() if term in text]
    assert not found, "Mainland terms in the Traditional Chinese text:\n" + "\n".join(found)


def test_the_check_catches_mainland_wording(converter):
    assert differences(converter, "用數據訓練網絡程序")
    assert not differences(converter, "用資料訓練網路程式，算一算模型的參數和損失函數")


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_student_notebook_carries_its_languages_narrative(master, lang):
    student = notebooks.read(paths.ROOT / "student" / lang / "fashion_mnist.ipynb")
    text = "\n".join(c.source for c in student.cells)
    rendered = assign.with_settings(master, settings.load(paths.OTTER_CONFIG))  # its settings' sentences filled in
    missing = [c.source[:60] for c in rendered.cells
               if notebooks.cell_language(c) == lang and c.source.strip() not in text]
    assert not missing, f"student/{lang} lacks these {lang} cells (rebuild with fashion-kit assign): {missing}"


def comments(source: str) -> list[str]:
    """The comments of a code cell (IPython's %magic lines read as plain Python first)."""
    python = "\n".join("pass" if line.lstrip().startswith("%") else line for line in source.split("\n"))
    return [tok.string for tok in tokenize.generate_tokens(io.StringIO(python).readline)
            if tok.type == tokenize.COMMENT]


@pytest.mark.parametrize("kind", ["student", "solutions"])
def test_code_comments_are_in_the_notebooks_language(kind):
    found = []
    for lang in notebooks.LANGUAGES:
        nb = notebooks.read(paths.ROOT / kind / lang / "fashion_mnist.ipynb")
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            for comment in comments(cell.source):
                chinese = bool(CJK.search(comment))
                if chinese != (lang == "zh-TW"):
                    found.append(f"{kind}/{lang} cell {i}: {comment}")
    assert not found, "Comments in the other language (write them as '# [zh-TW] ...' / '# [en] ...'):\n" + "\n".join(found)


def test_comment_markers_pick_one_language():
    source = "x = 1\n# [zh-TW] 中文\n    # [en] English\n# BEGIN zh-TW\nfont()\n# END zh-TW\ny = 2"
    assert notebooks.code_for_language(source, "zh-TW") == "x = 1\n# 中文\nfont()\ny = 2"
    assert notebooks.code_for_language(source, "en") == "x = 1\n    # English\ny = 2"
    with pytest.raises(ValueError, match="END zh-TW"):
        notebooks.code_for_language("# BEGIN zh-TW\nx = 1", "en")


def test_zh_tw_student_notebook_has_no_english_narrative():
    """Otter's own cells (check all, export) are translated by the build, like every other cell."""
    nb = notebooks.read(paths.ROOT / "student" / "zh-TW" / "fashion_mnist.ipynb")
    english = [c.source[:80] for c in nb.cells if c.cell_type == "markdown"
               and re.sub(r"<!--.*?-->", "", c.source, flags=re.S).strip() and not CJK.search(c.source)]
    assert not english, f"English-only cells in the zh-TW notebook: {english}"
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "zip" in cell.source:
            assert "Please save" not in cell.source and "See section" not in cell.source, cell.source


# Code identifiers may appear in the pictures of either language: layer classes and activations.
IDENTIFIERS = {"Flatten", "Dense", "relu", "softmax", "InputLayer"}
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


def picture_words(lang: str) -> list[str]:
    """Every text drawn by the picture cells of ``lang``'s student notebook, run on small stand-ins
    for the answers (random images, an untrained model of the right shape, a five-epoch history)."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.text import Text

    from .test_notebooks import helpers_environment

    matplotlib.use("Agg")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    images = rng.random((100, 28, 28))
    labels = rng.integers(0, 10, 100)
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    words = []

    def collect_and_close():
        for number in plt.get_fignums():
            figure = plt.figure(number)
            words.extend(t.get_text() for t in figure.findobj(Text) if t.get_text().strip())
        plt.close("all")

    env = helpers_environment(lang)
    env.update(training_images=images, training_labels=labels, test_images=images, test_labels=labels,
               class_names=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                            "Sneaker", "Bag", "Ankle boot"],
               history=types.SimpleNamespace(history={"loss": [0.5, 0.4, 0.35, 0.32, 0.3],
                                                      "accuracy": [0.8, 0.85, 0.86, 0.87, 0.88]}),
               model=model, keras=keras)
    nb = notebooks.read(paths.ROOT / "student" / lang / "fashion_mnist.ipynb")
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "with picture():" in c.source]
    assert len(cells) >= 6
    original_show = plt.show
    plt.show = collect_and_close
    try:
        for source in cells:
            exec(source, env)
    finally:
        plt.show = original_show
        plt.close("all")
    return words


def test_zh_tw_pictures_speak_chinese():
    pytest.importorskip("noto_cjk_sans_otc", reason="the Chinese pictures need the CJK font (the dev extra)")
    words = picture_words("zh-TW")
    assert any(CJK.search(w) for w in words)
    english = sorted({w for text in words for w in ENGLISH_WORD.findall(text)} - IDENTIFIERS)
    assert not english, f"English words in the zh-TW pictures: {english}"


def test_en_pictures_have_no_chinese():
    words = picture_words("en")
    assert words and not [w for w in words if CJK.search(w)]


TABLE = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Otter's own English words in what its checks and its export show.
OTTER_WORDS = re.compile(r"passed!|results:|Test case|All test cases|failed|exported|Click|download the zip")


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_otters_output_speaks_the_notebooks_language(lang, tmp_path, monkeypatch):
    """What grader.check, grader.check_all and grader.export show, for right answers and typical
    mistakes, as the student's kernel displays it: Chinese (with the test's English after it) in
    the zh-TW notebook, English only in the en notebook; never Otter's English words in zh-TW."""
    from .test_notebooks import first_cell_environment, shown

    env = first_cell_environment(lang, tmp_path, monkeypatch)
    displayed = []
    env["display"] = lambda value: displayed.append(value.data)
    outputs = {}

    def check(name, question="q2_class_names", **values):
        env.update(values)
        exec(f'result = grader.check("{question}")', env)
        outputs[name] = [shown(env, env["result"], mime) for mime in ("text/plain", "text/html")]
        return env["result"]

    assert check("right", class_names=TABLE).passed_all
    assert not check("swapped", class_names=[TABLE[1], TABLE[0]] + TABLE[2:]).passed_all
    assert not check("blank", class_names=[...]).passed_all
    assert not check("no biases", "q10_param_count", hidden_params=784 * 128, output_params=128 * 10,
                     total_params=784 * 128 + 128 * 10).passed_all
    assert not check("missing", "q1_load_data").passed_all
    exec("results = grader.check_all()", env)
    outputs["check_all"] = [shown(env, env["results"], mime) for mime in ("text/plain", "text/html")]
    exec("grader.export(pdf=False)", env)
    assert list(tmp_path.glob("fashion_mnist_*.zip")), "the export cell made no zip"
    outputs["export"] = displayed

    cjk = re.compile(r"[\u3400-\u9fff]")
    for name, texts in outputs.items():
        for text in texts:
            if lang == "zh-TW":
                assert cjk.search(text), f"{name}: no Chinese in {text!r}"
                found = OTTER_WORDS.search(text)
                assert not found, f"{name}: Otter's English {found.group()!r} in the zh-TW notebook: {text!r}"
            else:
                assert not cjk.search(text), f"{name}: Chinese in the en notebook: {text!r}"
    assert "通過了" in outputs["right"][0] if lang == "zh-TW" else "passed!" in outputs["right"][0]
    swapped, no_biases, missing = outputs["swapped"][0], outputs["no biases"][0], outputs["missing"][0]
    if lang == "zh-TW":
        assert "還沒通過" in swapped and "表格" in swapped
        assert swapped.index("表格") < swapped.index("Expected"), "Chinese first, the test's English after it"
        assert "bias" in no_biases and "100352" in no_biases
        assert "還沒有值" in missing and "一字不差" in missing
    else:
        assert "did not pass" in swapped and "the table says 'T-shirt/top'" in swapped
        assert "add one bias per neuron" in no_biases
        assert "has no value yet: store the result under exactly this name" in missing
