"""Reading what a student hands in, one file at a time, defensively.

A file is read only up to a limit (a size that lies, as zip headers can, is caught by reading one
byte more), and a notebook is checked before anything parses it deeply: UTF-8, JSON no deeper than
people's notebooks are, nbformat 4 (or 3, converted). Whatever is wrong comes back as one
:class:`Refused` saying what was expected and what was found, in English and Traditional Chinese.
Both the grading of one notebook (:mod:`fashion_kit.run`) and the class's intake
(:mod:`fashion_kit.classroom.intake`) read uploads through here, so a notebook is accepted or refused
the same way whichever command grades it.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MAX_JSON_DEPTH = 100  # a notebook is about 6 deep; Python's parser overflows in the thousands
# Compression methods Python's zipfile reads; any other raises NotImplementedError.
READABLE_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def printable(text: str) -> str:
    """``text`` as any terminal, file or web page can show it: undecodable bytes and lone surrogates
    (a file name in another encoding) become U+FFFD instead of crashing the writer."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class Refused(Exception):
    """An upload cannot be graded: what was expected and what was found, in both languages."""

    def __init__(self, en: str, zh: str):
        super().__init__(en)
        self.en, self.zh = en, zh


@dataclass
class Entry:
    """A file in a folder or an archive: its path (POSIX, relative), its size and how to read it."""

    name: str
    size: int = 0
    open: Callable | None = None  # None: a link, a device or a folder marker
    mtime: float = 0.0
    info: zipfile.ZipInfo | None = None
    kind: str = "file"  # file, dir (a top-level folder), link, other

    @property
    def base(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def read_entry(entry: Entry, limit: int) -> bytes:
    """At most ``limit`` bytes of ``entry``; anything else (a lying size, a damaged, encrypted or
    oddly compressed member, a link) is refused with a message."""
    shown = printable(entry.name)
    if entry.kind == "link":
        raise Refused(f"{shown} is a link; expected a file.", f"{shown} 是連結；應為檔案。")
    if entry.open is None:
        raise Refused(f"{shown} is not a regular file.", f"{shown} 不是一般檔案。")
    if entry.size > limit:
        raise _too_large(shown, entry.size, limit)
    if entry.info is not None:
        if entry.info.flag_bits & 0x1:
            raise Refused(f"{shown} is encrypted; expected a zip without a password.",
                          f"{shown} 有加密；應為沒有密碼的 zip 檔。")
        if entry.info.compress_type not in READABLE_COMPRESSION:
            raise Refused(f"{shown} uses an unknown compression method ({entry.info.compress_type}); "
                          "expected a zip made by grader.export() or your computer's zip tool.",
                          f"{shown} 使用不明的壓縮方式（{entry.info.compress_type}）；"
                          "應為 grader.export() 或電腦內建壓縮工具產生的 zip 檔。")
    try:
        with entry.open() as f:
            payload = f.read(limit + 1)  # one byte more: a size that lies (zip headers can) is caught
    except Exception as e:  # BadZipFile (CRC), zlib.error, EOFError, OSError, ...: all mean damaged
        raise Refused(f"{shown} could not be read: the file is damaged ({type(e).__name__}: {e}).",
                      f"{shown} 無法讀取：檔案已損毀（{type(e).__name__}: {e}）。") from None
    if len(payload) > limit:
        raise _too_large(shown, len(payload), limit)
    return payload


def _too_large(shown: str, size: int, limit: int) -> Refused:
    return Refused(
        f"{shown} is {_mb(size)} or more, larger than the {_mb(limit)} limit (a notebook for this "
        "assignment is normally well under 1 MB); clear its outputs and save it again.",
        f"{shown} 有 {_mb(size)} 以上，超過 {_mb(limit)} 的上限（這份作業的筆記本通常遠小於 1 MB）；"
        "請清除輸出後重新儲存。",
    )


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests deeper than ``limit``, found without parsing it (strings skipped)."""
    stripped = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)
    depth = 0
    for bracket in re.sub(rb"[^\[\]{}]", b"", stripped):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


def check_notebook(raw: bytes, shown: str) -> tuple[bytes, int]:
    """The notebook's bytes to grade (nbformat 4; a version 3 notebook is converted) and its major
    version, or :class:`Refused` saying what was found."""
    import nbformat

    expected_en, expected_zh = "expected a Jupyter notebook (.ipynb)", "應為 Jupyter 筆記本（.ipynb）"
    if not raw.strip():
        raise Refused(f"{shown} is empty; {expected_en}.", f"{shown} 是空的；{expected_zh}。")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Refused(f"{shown} is not a Jupyter notebook: it is not UTF-8 text; {expected_en}.",
                      f"{shown} 不是 Jupyter 筆記本：不是 UTF-8 文字；{expected_zh}。") from None
    if json_depth_exceeds(raw):
        raise Refused(f"{shown} is not a Jupyter notebook: its JSON is nested more than {MAX_JSON_DEPTH} "
                      f"levels deep; {expected_en}.",
                      f"{shown} 不是 Jupyter 筆記本：JSON 巢狀超過 {MAX_JSON_DEPTH} 層；{expected_zh}。")
    try:
        content = json.loads(text)
    except (ValueError, RecursionError) as e:
        detail = printable(str(e))[:200]
        raise Refused(f"{shown} is not a Jupyter notebook: it is not valid JSON ({detail}).",
                      f"{shown} 不是 Jupyter 筆記本：不是有效的 JSON（{detail}）。") from None
    if not isinstance(content, dict) or not ("cells" in content or "worksheets" in content):
        raise Refused(f"{shown} is JSON but not a Jupyter notebook: it has no 'cells'.",
                      f"{shown} 是 JSON 但不是 Jupyter 筆記本：沒有 'cells'。")
    major = content.get("nbformat")
    if major not in (3, 4):
        raise Refused(f"{shown} is a notebook of format version {printable(repr(major))[:40]}; "
                      "expected version 4 (or 3). Save it again with Jupyter.",
                      f"{shown} 的筆記本格式版本為 {printable(repr(major))[:40]}；"
                      "應為第 4 版（或第 3 版）。請用 Jupyter 重新儲存。")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several unrelated types for malformed notebooks
        detail = printable(f"{type(e).__name__}: {e}")[:300]
        raise Refused(f"{shown} is not a valid Jupyter notebook: {detail}",
                      f"{shown} 不是有效的 Jupyter 筆記本：{detail}") from None
    if major == 4:
        return raw, 4
    return (nbformat.writes(nb) + "\n").encode("utf-8"), 3


def read_notebook_file(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """A notebook on disk, checked as an upload is (size first, then content)."""
    shown = printable(path.name)
    if path.is_dir():
        raise Refused(f"{printable(str(path))} is a folder; expected a notebook (.ipynb). To grade "
                      "a folder of notebooks, use `fashion-kit grade`.",
                      f"{printable(str(path))} 是資料夾；應為筆記本（.ipynb）。"
                      "要批改整個資料夾，請用 `fashion-kit grade`。")
    if not path.exists():
        raise Refused(f"{printable(str(path))} does not exist.", f"{printable(str(path))} 不存在。")
    st = path.stat()
    entry = Entry(path.name, st.st_size, lambda: open(path, "rb"))
    return check_notebook(read_entry(entry, max_bytes), shown)
