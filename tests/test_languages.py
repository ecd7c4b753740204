"""Both languages, one source: every narrative cell exists in Traditional Chinese and English, and
the Chinese is already in Taiwan's standard form (OpenCC's s2twp conversion leaves it unchanged)."""

import re

import pytest

from fashion_kit import notebooks, paths

opencc = pytest.importorskip("opencc", reason="the language checks need OpenCC (the dev extra)")

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# OpenCC's Taiwan phrase table turns 參數 (a model's parameters) into 引數 (the arguments of a function
# call), a different idea: the word is masked before the comparison.
KEEP = ("參數",)
# Mainland terms with a different Taiwan word; s2twp catches most, this list names them clearly.
MAINLAND = {"數據": "資料", "網絡": "網路", "程序": "程式", "信息": "資訊", "軟件": "軟體", "默認": "預設",
            "文件": "檔案", "代碼": "程式碼", "變量": "變數", "打印": "印出", "加載": "載入", "調用": "呼叫",
            "內存": "記憶體", "對象": "物件", "數組": "陣列", "字符串": "字串", "視頻": "影片", "屏幕": "螢幕"}


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
    assert not differences(converter, "用資料訓練網路程式，算一算模型的參數")


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_student_notebook_carries_its_languages_narrative(master, lang):
    student = notebooks.read(paths.ROOT / "student" / lang / "fashion_mnist.ipynb")
    text = "\n".join(c.source for c in student.cells)
    missing = [c.source[:60] for c in master.cells
               if notebooks.cell_language(c) == lang and c.source.strip() not in text]
    assert not missing, f"student/{lang} lacks these {lang} cells (rebuild with fashion-kit assign): {missing}"
