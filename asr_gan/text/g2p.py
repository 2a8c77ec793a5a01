"""Grapheme-to-phoneme for words CMUdict lacks: espeak-ng (through `phonemizer`, en-us) -> IPA -> ARPAbet.

The output uses CMUdict's 39 stress-free ARPAbet phones, so G2P words and dictionary words share one
inventory. espeak-ng writes some phones as one multi-character token (`aɪɚ`, `ɑːɹ`, `əl`); the table maps
each token it emits for English onto one or more ARPAbet phones. Choices, where CMUdict has no direct
counterpart (checked against CMUdict's own entries for `little`, `button`, `fire`, `poor`, `near`, `car`):

- reduced vowels `ə ɐ ʌ` -> AH, `ᵻ ɪ` -> IH, final `i` (happy) -> IY: CMUdict writes AH0 / IH0 / IY0.
- r-coloured vowels split into vowel + R: `ɑːɹ` -> AA R, `ɔːɹ oːɹ` -> AO R, `ɛɹ` -> EH R, `ɪɹ` -> IH R,
  `ʊɹ` -> UH R; `ɚ ɜː` -> ER; an R right after ER or R (espeak writes `ʊɹ ɹ`, `ɜː ɹ`) is dropped.
- syllabic consonants `əl l̩` -> AH L, `n̩` -> AH N, `m̩` -> AH M (CMUdict: little = L IH T AH L).
- `aɪɚ` -> AY ER (fire), `aɪə` -> AY AH, `iə` -> IY AH; `oː` -> OW outside r-colouring.
- the flap `ɾ` has no ARPAbet phone (CMUdict writes the underlying T or D): D when the word is spelled
  with a `d` and no `t`, else T. The glottal stop `ʔ` (button) -> T.
- `x` (loch) -> K, `ç` -> HH, trilled `r` -> R.

A word whose espeak output holds a token not in the table gets no pronunciation (None), so the caller
reports it rather than guessing.
"""

from __future__ import annotations

import logging
import shutil

log = logging.getLogger(__name__)

IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "iː": ("IY",), "i": ("IY",), "ɪ": ("IH",), "ᵻ": ("IH",), "ɛ": ("EH",), "e": ("EH",), "æ": ("AE",),
    "a": ("AE",), "ɑː": ("AA",), "ɑ": ("AA",), "ɒ": ("AA",), "ɔː": ("AO",), "ɔ": ("AO",), "ʌ": ("AH",),
    "ə": ("AH",), "ɐ": ("AH",), "ʊ": ("UH",), "uː": ("UW",), "u": ("UW",), "oʊ": ("OW",), "oː": ("OW",),
    "o": ("OW",), "eɪ": ("EY",), "aɪ": ("AY",), "aʊ": ("AW",), "ɔɪ": ("OY",), "ɚ": ("ER",), "ɜː": ("ER",),
    "ɜ": ("ER",),
    # vowel sequences and r-coloured vowels written as one token
    "aɪɚ": ("AY", "ER"), "aɪə": ("AY", "AH"), "iə": ("IY", "AH"), "aʊɚ": ("AW", "ER"),
    "ɑːɹ": ("AA", "R"), "ɔːɹ": ("AO", "R"), "oːɹ": ("AO", "R"), "ɛɹ": ("EH", "R"), "ɪɹ": ("IH", "R"),
    "ʊɹ": ("UH", "R"), "əl": ("AH", "L"), "l̩": ("AH", "L"), "n̩": ("AH", "N"), "m̩": ("AH", "M"),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",),
    "f": ("F",), "v": ("V",), "θ": ("TH",), "ð": ("DH",), "s": ("S",), "z": ("Z",), "ʃ": ("SH",),
    "ʒ": ("ZH",), "h": ("HH",), "tʃ": ("CH",), "dʒ": ("JH",), "m": ("M",), "n": ("N",), "ŋ": ("NG",),
    "l": ("L",), "ɹ": ("R",), "r": ("R",), "w": ("W",), "j": ("Y",), "ʔ": ("T",), "x": ("K",),
    "ç": ("HH",),
}
FLAP = "ɾ"


def ipa_to_arpabet(ipa_tokens: list[str], word: str) -> list[str] | None:
    """Map espeak's IPA tokens of `word` to ARPAbet; None if a token is unknown or nothing is left."""
    phones: list[str] = []
    for token in ipa_tokens:
        if token == FLAP:
            mapped: tuple[str, ...] = ("D",) if "d" in word and "t" not in word else ("T",)
        elif token in IPA_TO_ARPABET:
            mapped = IPA_TO_ARPABET[token]
        else:
            return None
        for phone in mapped:
            # espeak repeats the r of an r-coloured vowel before a vowel (`ʊɹ ɹ ɪ`); CMUdict has one R.
            if phone == "R" and phones and phones[-1] in ("R", "ER"):
                continue
            phones.append(phone)
    return phones or None


class EspeakG2P:
    """espeak-ng G2P for English words, loaded once (starting espeak costs about a second).

    `pronounce(words)` returns `{word: [ARPAbet phones] or None}`; None = espeak gave nothing usable.
    """

    def __init__(self, language: str = "en-us") -> None:
        if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
            raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng) for G2P of OOV words")
        from phonemizer.backend import EspeakBackend
        from phonemizer.separator import Separator

        # remove-flags: espeak may switch language for a foreign-looking word; keep its phones, drop the tag.
        # phonemizer warns "words count mismatch" whenever no word separator is asked for; we phonemise one
        # word per line, so the warning says nothing: keep only its errors.
        quiet = logging.getLogger("asr_gan.text.g2p.phonemizer")
        quiet.setLevel(logging.ERROR)
        self._backend = EspeakBackend(language, with_stress=False, language_switch="remove-flags", logger=quiet)
        self._separator = Separator(phone=" ", word=None, syllable=None)

    def pronounce(self, words: list[str]) -> dict[str, list[str] | None]:
        """ARPAbet pronunciations of `words` (batched through one espeak call)."""
        words = list(dict.fromkeys(words))
        if not words:
            return {}
        # espeak reads an apostrophe as a pause in some words; the spoken form has none anyway.
        ipa = self._backend.phonemize([w.replace("'", "") or w for w in words], separator=self._separator, strip=True)
        result: dict[str, list[str] | None] = {}
        for word, ipa_text in zip(words, ipa):
            result[word] = ipa_to_arpabet(ipa_text.split(), word)
            if result[word] is None:
                log.debug("G2P: no ARPAbet for %r (espeak: %r)", word, ipa_text)
        return result
