"""TIMIT's label files and tables: the 61 -> 48 -> 39 phone map (Kaldi's), the speaker lists of the standard sets,
and the `.PHN` / `.WRD` / `.TXT` readers with their sample times (data_prep.timit scans and prepares the corpus).
"""

from __future__ import annotations

import functools
from pathlib import Path

from asr_gan.audio.io import SAMPLE_RATE

PACKAGE_DIR = Path(__file__).resolve().parent
PHONE_MAP_PATH = PACKAGE_DIR / "timit_phones.60-48-39.map"
DEV_SPEAKERS_PATH = PACKAGE_DIR / "timit_dev_speakers.txt"
CORE_TEST_SPEAKERS_PATH = PACKAGE_DIR / "timit_core_test_speakers.txt"


class TimitFormatError(ValueError):
    """A TIMIT label file that cannot be used; the message starts with its path."""


# ---------------------------------------------------------------------------------------------- phone folding


@functools.cache
def load_phone_map() -> dict[str, tuple[str, str] | None]:
    """TIMIT-61 symbol -> (48-set, 39-set) from Kaldi's table; `q` -> None (deleted)."""
    table: dict[str, tuple[str, str] | None] = {}
    for line in PHONE_MAP_PATH.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        table[columns[0]] = (columns[1], columns[2]) if len(columns) == 3 else None
    return table


@functools.cache
def _fold_48_to_39() -> dict[str, str]:
    return {pair[0]: pair[1] for pair in load_phone_map().values() if pair is not None}


def fold_timit_phones(phones: list[str], to: int = 39) -> list[str]:
    """Fold TIMIT phones to the 48- or 39-phone set (Kaldi's map); `q` is deleted.

    Accepts the 61 TIMIT symbols, and for `to=39` also 48-set symbols (`vcl`, `cl`), so already folded
    Kaldi-style transcripts can be brought to the scoring set.

    Raises:
        ValueError: an unknown symbol (named) or `to` not 39/48.
    """
    if to not in (39, 48):
        raise ValueError(f"fold_timit_phones: to={to}, expected 39 or 48")
    table = load_phone_map()
    column = 1 if to == 39 else 0
    folded = []
    for phone in phones:
        if phone in table:
            pair = table[phone]
            if pair is not None:
                folded.append(pair[column])
        elif to == 39 and phone in _fold_48_to_39():
            folded.append(_fold_48_to_39()[phone])
        else:
            raise ValueError(f"unknown TIMIT phone {phone!r} (not in {PHONE_MAP_PATH.name})")
    return folded


def read_speaker_list(path: Path) -> list[str]:
    """Lower-case speaker ids, one per line ('#' comments skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip().lower() for line in lines if line.strip() and not line.startswith("#")]


# -------------------------------------------------------------------------------------------- label files


def read_label_file(path: Path) -> list[tuple[int, int, str]]:
    """`<begin> <end> <label>` lines of a .PHN/.WRD/.TXT file (sample numbers at 16 kHz).

    Raises:
        TimitFormatError: not UTF-8, empty, or a line without two sample numbers and a label.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TimitFormatError(
            f"{path}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "fix the byte or convert the file with iconv"
        ) from None
    entries = []
    for lineno, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        try:
            begin, end, label = int(parts[0]), int(parts[1]), parts[2].strip()
        except (IndexError, ValueError):
            raise TimitFormatError(f"{path}:{lineno}: expected '<begin> <end> <label>', got {line!r}") from None
        entries.append((begin, end, label))
    if not entries:
        raise TimitFormatError(f"{path}: empty label file")
    return entries


def timed_phones(path: Path) -> list[tuple[str, float, float]]:
    """A .PHN file folded to the 39-set with times: [(phone, start s, end s)]; `q` is dropped (its time left empty).

    Raises:
        TimitFormatError / ValueError: as `read_label_file` / `fold_timit_phones`.
    """
    timed = []
    for begin, end, label in read_label_file(path):
        folded = fold_timit_phones([label], to=39)
        if folded:
            timed.append((folded[0], begin / SAMPLE_RATE, end / SAMPLE_RATE))
    return timed
