"""Phone inventory (`text/phones.txt`) and silence insertion for phonemised text.

`phones.txt`: one phone per line; line order = generator output index. Phones are sorted
alphabetically and the silence token comes last (as in wav2vec-U's `dict.phn.txt`, which appends
`<SIL>` after the counted phones), so the file does not change when corpus counts change.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

SILENCE = "<SIL>"
TIMIT_SILENCE = "sil"

# wav2vec-U's released text recipe inserts silence between words with probability 0.25 and always at
# both ends (fairseq examples/wav2vec/unsupervised/scripts/prepare_text.sh, commit 649af635:
# `phonemize_with_sil.py -s 0.25 --surround`). The script's own --sil-prob default is 0.
DEFAULT_SIL_PROB = 0.25


@dataclass
class PhoneInventory:
    """Ordered phone symbols; `silence` is one of them (or None when the inventory has none)."""

    symbols: list[str]
    silence: str | None = SILENCE
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"duplicate phones in inventory: {self.symbols}")
        if self.silence is not None and self.silence not in self.symbols:
            raise ValueError(f"silence token {self.silence!r} missing from inventory {self.symbols}")
        self._index = {p: i for i, p in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, phone: str) -> bool:
        return phone in self._index

    def index(self, phone: str) -> int:
        """Output index of `phone`; KeyError names the phone and the inventory size."""
        try:
            return self._index[phone]
        except KeyError:
            raise KeyError(f"phone {phone!r} not in the inventory of {len(self.symbols)} phones") from None

    def encode(self, phones: Sequence[str]) -> list[int]:
        return [self.index(p) for p in phones]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.symbols[i] for i in indices]

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(p + "\n" for p in self.symbols), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, silence: str | None = None) -> "PhoneInventory":
        """Read `phones.txt`; silence defaults to `<SIL>` if present, else TIMIT's `sil`, else none."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: phone inventory not found (build it with `python -m asr_gan.text`)")
        symbols = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for i, symbol in enumerate(symbols):
            if len(symbol.split()) != 1:
                raise ValueError(f"{path}:{i + 1}: one phone per line expected, got {symbol!r}")
        if silence is None:
            silence = next((s for s in (SILENCE, TIMIT_SILENCE) if s in symbols), None)
        return cls(symbols, silence)

    @classmethod
    def from_counts(cls, counts: Counter[str], min_count: int = 1, silence: str = SILENCE) -> "PhoneInventory":
        """Phones seen at least `min_count` times, sorted, then `silence` last (always kept)."""
        kept = sorted(p for p, c in counts.items() if c >= min_count and p != silence)
        return cls(kept + [silence], silence)


def count_phones(sentences: Iterable[Sequence[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for phones in sentences:
        counts.update(phones)
    return counts


def build_inventory(
    sentences: list[list[str]], min_count: int = 1, silence: str = SILENCE
) -> tuple[PhoneInventory, list[list[str]], dict[str, int], int]:
    """Inventory from phonemised sentences; drops phones rarer than `min_count` and their sentences.

    Returns:
        (inventory, kept sentences, {dropped phone: count}, number of sentences skipped).
    """
    counts = count_phones(sentences)
    inventory = PhoneInventory.from_counts(counts, min_count, silence)
    dropped = {p: c for p, c in counts.items() if p not in inventory}
    kept = [s for s in sentences if all(p in inventory for p in s)]
    return inventory, kept, dropped, len(sentences) - len(kept)


def add_silences(
    word_prons: Sequence[Sequence[str]],
    sil_prob: float = DEFAULT_SIL_PROB,
    rng: random.Random | None = None,
    silence: str = SILENCE,
    surround: bool = True,
    start_prob: float = 1.0,
    end_prob: float = 1.0,
) -> list[str]:
    """Join per-word phones into one sentence with silence tokens.

    `silence` goes after each word but the last with probability `sil_prob`, one independent draw per word
    gap (wav2vec-U `phonemize_with_sil.py`), and, when `surround`, at the start with probability `start_prob`
    and at the end with probability `end_prob` (1: always, wav2vec-U's `--surround`). An edge probability of 0 or
    1 draws nothing, so text made with the default edges is the same as before the edge options existed.

    Args:
        word_prons: phones of each word, e.g. `[["HH", "AH", "L", "OW"], ["W", "ER", "L", "D"]]`.
        rng: source of the draws; pass a seeded `random.Random` for reproducible text.
    """
    for name, value in (("sil_prob", sil_prob), ("start_prob", start_prob), ("end_prob", end_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    rng = rng or random.Random(0)

    def draw(prob: float) -> bool:
        return prob >= 1.0 or (prob > 0 and rng.random() < prob)

    phones: list[str] = [silence] if surround and draw(start_prob) else []
    for i, word in enumerate(word_prons):
        phones.extend(word)
        # one draw per gap whenever sil_prob > 0 (1.0 included), as before the edge options existed
        if i < len(word_prons) - 1 and sil_prob > 0 and rng.random() < sil_prob:
            phones.append(silence)
    if surround and draw(end_prob):
        phones.append(silence)
    return phones
