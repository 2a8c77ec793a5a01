"""espeak-ng's IPA output -> phones of one inventory shared by every training language.

`espeak-ng --ipa --sep=_` writes words separated by spaces and phonemes by `_`, each phoneme in IPA with its
stress, length and diacritics. The encoder needs one inventory across languages, so a phoneme keeps only its
base letters: stress and length marks, tie bars, liaison dashes, modifier letters (aspiration, palatalisation)
and combining diacritics (nasality, syllabicity) are dropped. Affricates stay one phone; any other phoneme of
several letters (a diphthong such as `aʊ`) becomes one phone per letter, so `aʊ` of German and `a` + `ʊ` of
Portuguese share their phones.
"""

from __future__ import annotations

import unicodedata

AFFRICATES = frozenset({"ts", "dz", "tʃ", "dʒ", "tɕ", "dʑ", "ʈʂ", "ɖʐ", "pf", "tʂ", "dʐ"})
# ʰ ʲ ʷ ˠ ˤ are modifier letters (Unicode category Lm) and go with the category test; these are the rest.
DROPPED = frozenset("ˈˌːˑ‿͜͡-'")
# espeak-ng writes the ASCII g in some languages and the IPA ɡ in others: one phone.
SAME_PHONE = {"g": "ɡ", "ʀ": "ʁ", "?": "ʔ"}  # espeak-ng writes German's glottal stop as `?`


class LanguageSwitch(ValueError):
    """espeak-ng spoke part of a sentence with another language's rules (it writes `(en)` ... `(fr)`)."""


def base_letters(phoneme: str) -> str:
    """A phoneme with its stress, length, diacritics and modifier letters removed (`ˈaː` -> `a`)."""
    kept = []
    for char in unicodedata.normalize("NFD", phoneme):
        if char in DROPPED or unicodedata.combining(char) or unicodedata.category(char) == "Lm":
            continue
        kept.append(SAME_PHONE.get(char, char))
    return "".join(kept)


def split_phoneme(phoneme: str) -> list[str]:
    """One espeak-ng phoneme -> shared phones (an affricate whole, any other letters one by one)."""
    letters = base_letters(phoneme)
    if not letters:
        return []
    if letters in AFFRICATES:
        return [letters]
    return list(letters)


def ipa_to_phones(ipa: str) -> list[str]:
    """A line of `espeak-ng --ipa --sep=_` output -> its phone sequence (word boundaries are not phones).

    Raises LanguageSwitch where espeak-ng read a word as another language (English, mostly): that audio must not
    train an encoder that is meant never to hear English."""
    if "(" in ipa:
        raise LanguageSwitch(f"espeak-ng switched language: {ipa.strip()}")
    phones: list[str] = []
    for word in ipa.split():
        for phoneme in word.split("_"):
            phones.extend(split_phoneme(phoneme))
    return phones
