"""English text normalisation: raw text lines -> lower-case words separated by single spaces.

Choices (one place to read them):
- Lower case; accents folded to ASCII (`café` -> `cafe`); letters outside a-z after folding are dropped.
- Punctuation becomes a word break, except an apostrophe between two letters (`don't`, `jacob's`);
  leading/trailing apostrophes are dropped (`'tis` -> `tis`, `jesus'` -> `jesus`). Hyphens split words.
- Numbers are SPELLED OUT, not dropped, so a sentence keeps every word a speaker would say:
  `42` -> `forty two`, `1,000` -> `one thousand`, `3.5` -> `three point five`, `21st` -> `twenty first`.
  Years are read as plain cardinals (`1984` -> `one thousand nine hundred eighty four`).
- `&` -> `and`, `%` -> `percent`; whitespace collapsed.

Reading files: `read_text_lines` decodes each line as UTF-8 on its own; a line with undecodable bytes is
SKIPPED and reported as `file:line` (we do not guess latin-1, so no garbled words enter the lexicon).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}


def number_to_words(number: int) -> str:
    """Spell a non-negative integer in English words (`105` -> `one hundred five`)."""
    if number < 0:
        return "minus " + number_to_words(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")  # every number >= 1000 meets a scale above


def ordinal_to_words(number: int) -> str:
    """Spell an ordinal (`21` -> `twenty first`, `40` -> `fortieth`)."""
    words = number_to_words(number).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_INTEGER = re.compile(r"\d+")
_NOT_WORD_CHAR = re.compile(r"[^a-z' ]+")
_STRAY_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})


def _spell_numbers(text: str) -> str:
    text = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _ORDINAL.sub(lambda m: " " + ordinal_to_words(int(m.group(1))) + " ", text)
    text = _DECIMAL.sub(
        lambda m: f" {number_to_words(int(m.group(1)))} point {' '.join(_ONES[int(d)] for d in m.group(2))} ",
        text,
    )
    # Digits glued to letters (`covid19`) are split off and spelled too.
    return _INTEGER.sub(lambda m: " " + number_to_words(int(m.group(0))) + " ", text)


def normalize_sentence(text: str) -> str:
    """Normalise one sentence (see the module docstring); returns '' when no word is left."""
    text = text.translate(_APOSTROPHES)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("&", " and ").replace("%", " percent ")
    text = _spell_numbers(text)
    text = _NOT_WORD_CHAR.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def read_text_lines(path: str | Path, problems: list[str] | None = None) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, text)` for each line of `path` that decodes as UTF-8 (BOM and CR stripped).

    A line with undecodable bytes is skipped; the message `file:line: ...` is logged as a warning and
    appended to `problems` when given. Line numbers start at 1.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: text file not found")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                message = (
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                    "line skipped (convert the file with iconv to keep it)"
                )
                log.warning(message)
                if problems is not None:
                    problems.append(message)
                continue
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")


def read_normalized_sentences(path: str | Path, problems: list[str] | None = None) -> list[str]:
    """Normalised, non-empty sentences of a text file, one per input line, in file order."""
    sentences = []
    for _, line in read_text_lines(path, problems):
        sentence = normalize_sentence(line)
        if sentence:
            sentences.append(sentence)
    return sentences
