"""TIMIT phone folding to the 39-phone scoring set, and silence removal for PER.

TIMIT results are reported on 39 phones (the folding commonly attributed to Lee and Hon, 1989). The table is
Kaldi's `egs/timit/s5/conf/phones.60-48-39.map`, kept once in the repository at
`data_prep/timit_phones.60-48-39.map` (columns: TIMIT-61 symbol, 48-phone set, 39-phone set; the `q` row has no
columns and `q` is deleted). It is read from there, not copied here, so the two stages cannot disagree.

What folds where (read off that file):
  - vowels: ao -> aa; ax, ax-h -> ah; axr -> er; ix -> ih; ux -> uw
  - consonants: el -> l; em -> m; en, nx -> n; eng -> ng; hv -> hh; zh -> sh
  - silence: the closures bcl dcl gcl kcl pcl tcl, h#, pau, epi -> sil (also the 48-set's vcl, cl, epi, sil)
  - q (glottal stop): deleted

Silence: the generator's silence token is `<SIL>` (TIMIT keeps its own `sil`, DESIGN.md); PER is reported with
silence removed from both reference and hypothesis, as wav2vec-U does (`post_process: silence`).
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import Iterable

from asr_gan.text.phones import SILENCE, TIMIT_SILENCE

# Both silence spellings the project produces: `<SIL>` (phones.txt) and TIMIT's 39-set `sil`.
SILENCE_TOKENS: tuple[str, ...] = (SILENCE, TIMIT_SILENCE)

_MAP_PACKAGE = "data_prep"
_MAP_NAME = "timit_phones.60-48-39.map"


def timit_map_path() -> Path:
    """Where the TIMIT 60-48-39 table is read from (`data_prep/timit_phones.60-48-39.map`)."""
    return Path(str(importlib.resources.files(_MAP_PACKAGE).joinpath(_MAP_NAME)))


@functools.cache
def _load_timit39_map() -> dict[str, str | None]:
    path = timit_map_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FileNotFoundError(f"{path}: TIMIT phone map not readable ({err.strerror or err}); "
                                "it ships with the repository, reinstall with `pip install -e .`") from None
    table: dict[str, str | None] = {}

    def add(symbol: str, target: str | None, line_number: int) -> None:
        # A symbol of the 48 set (e.g. `ax`) is also a TIMIT-61 symbol; both rows must agree on its 39 phone.
        if symbol in table and table[symbol] != target:
            raise ValueError(f"{path}:{line_number}: {symbol!r} folds to both {table[symbol]!r} and {target!r}")
        table[symbol] = target

    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split()
        if len(columns) == 1:
            add(columns[0], None, line_number)  # `q`: deleted
        elif len(columns) == 3:
            timit61, set48, set39 = columns
            add(timit61, set39, line_number)
            add(set48, set39, line_number)
            add(set39, set39, line_number)  # already folded transcripts pass through unchanged
        else:
            raise ValueError(f"{path}:{line_number}: expected 1 or 3 tab-separated columns, got {len(columns)}")
    return table


def timit39_map() -> dict[str, str | None]:
    """{phone: 39-set phone or None (deleted)} for every TIMIT-61, 48-set and 39-set symbol.

    The dict is a fresh copy, safe to modify; pass it as `score(..., fold=timit39_map())`.
    """
    return dict(_load_timit39_map())


def fold_to_39(phones: list[str]) -> list[str]:
    """Fold TIMIT-61 or 48-set phones to the 39-phone set; `q` is deleted, so the result may be shorter.

    Example: ["h#", "q", "ix", "bcl", "b", "ao", "pau"] -> ["sil", "ih", "sil", "b", "aa", "sil"].

    Raises:
        ValueError: a symbol not in the table (named), e.g. the project's `<SIL>`: remove silence first.
    """
    table = _load_timit39_map()
    folded = []
    for phone in phones:
        if phone not in table:
            raise ValueError(f"unknown TIMIT phone {phone!r} (not in {timit_map_path()})")
        target = table[phone]
        if target is not None:
            folded.append(target)
    return folded


def remove_silence(phones: list[str], silence: Iterable[str] = SILENCE_TOKENS) -> list[str]:
    """The phones without silence tokens (by default `<SIL>` and `sil`), order kept."""
    drop = frozenset(silence)
    return [phone for phone in phones if phone not in drop]
