"""IPA phones (the phone encoder's shared inventory) -> ARPAbet, the phone set of CMUdict and TIMIT's 39.

The table is phonetic knowledge, read off the symbols' definitions (CMUdict documents each ARPAbet phone by its
IPA): no transcribed English audio went into it. Where English lacks a sound, it takes the nearest English phone
(front rounded vowels to their unrounded or back neighbours, the trill and uvular r to R, x to HH); affricates
English lacks become two phones (ts -> T S); the glottal stop is dropped. English diphthongs are written by
espeak-ng's other languages as two vowels, so a mapped vowel pair that spells one (AA IH, AA UH, AO IH, EH IH,
OW UH, AH UH) becomes that diphthong (AY, AW, OY, EY, OW).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "a": ("AA",), "ɑ": ("AA",), "æ": ("AE",), "ɐ": ("AH",), "ə": ("AH",), "ʌ": ("AH",), "ɔ": ("AO",), "o": ("OW",),
    "e": ("EH",), "ɛ": ("EH",), "ɜ": ("ER",), "ɚ": ("ER",), "i": ("IY",), "ɪ": ("IH",), "u": ("UW",), "ʊ": ("UH",),
    "y": ("UW",), "ʏ": ("UH",), "ø": ("ER",), "œ": ("ER",), "ɨ": ("IH",), "ɵ": ("UH",), "ʉ": ("UW",), "ɒ": ("AA",),
    # consonants
    "b": ("B",), "β": ("B",), "d": ("D",), "ð": ("DH",), "f": ("F",), "ɡ": ("G",), "ɣ": ("G",), "h": ("HH",),
    "x": ("HH",), "j": ("Y",), "ʝ": ("Y",), "k": ("K",), "c": ("K",), "l": ("L",), "ʎ": ("L",), "ɫ": ("L",),
    "m": ("M",), "n": ("N",), "ɲ": ("N",), "ŋ": ("NG",), "p": ("P",), "r": ("R",), "ɾ": ("R",), "ʁ": ("R",),
    "ɹ": ("R",), "s": ("S",), "ʃ": ("SH",), "ʂ": ("SH",), "ɕ": ("SH",), "t": ("T",), "θ": ("TH",), "v": ("V",),
    "ʋ": ("V",), "w": ("W",), "z": ("Z",), "ʒ": ("ZH",), "ʑ": ("ZH",), "ʐ": ("ZH",),
    # affricates
    "tʃ": ("CH",), "tɕ": ("CH",), "tʂ": ("CH",), "ʈʂ": ("CH",), "dʒ": ("JH",), "dʑ": ("JH",), "dʐ": ("JH",),
    "ɖʐ": ("JH",), "ts": ("T", "S"), "dz": ("D", "Z"), "pf": ("P", "F"),
    "ʔ": (),
}
DIPHTHONGS = {("AA", "IH"): "AY", ("AA", "UH"): "AW", ("AO", "IH"): "OY", ("EH", "IH"): "EY", ("OW", "UH"): "OW",
              ("AH", "UH"): "OW"}
# TIMIT's 39-phone set folds these ARPAbet phones into others (Lee & Hon 1989).
FOLD_39 = {"AO": "AA", "ZH": "SH"}


def ipa_to_arpabet(phones: Iterable[str], inventory: Sequence[str]) -> list[str]:
    """IPA phones -> phones of `inventory` (ARPAbet, upper or lower case, e.g. text/phones.txt).

    Unknown IPA symbols are dropped; an ARPAbet phone the inventory lacks is folded as TIMIT's 39 set does, and a
    phone that still is not there raises ValueError naming it."""
    lower = all(p == p.lower() for p in inventory)
    known = set(inventory)
    out: list[str] = []
    for phone in phones:
        for arpa in IPA_TO_ARPABET.get(phone, ()):
            if out and (out[-1], arpa) in DIPHTHONGS:
                out[-1] = DIPHTHONGS[(out[-1], arpa)]
            else:
                out.append(arpa)
    mapped = []
    for arpa in out:
        name = target_name(arpa, known, lower)
        if name is None:
            raise ValueError(f"ARPAbet phone {arpa} is not in the target inventory ({' '.join(inventory)})")
        mapped.append(name)
    return mapped


def target_name(arpa: str, known: set[str] | dict[str, int], lower: bool) -> str | None:
    """`arpa` as the inventory spells it (its case; folded as TIMIT's 39 set when absent), or None."""
    for candidate in (arpa, FOLD_39.get(arpa, arpa)):
        name = candidate.lower() if lower else candidate
        if name in known:
            return name
    return None


def arpabet_weights(ipa_phones: Sequence[str], inventory: Sequence[str], silence: str) -> np.ndarray:
    """How much of each IPA output's probability goes to each target phone: a (1 + len(ipa_phones), len(inventory))
    matrix whose row 0 is the CTC blank (all to `silence`) and row i + 1 is `ipa_phones[i]`.

    A frame carries one IPA phone, so a sequence of them cannot be rewritten as `ipa_to_arpabet` rewrites text: an
    IPA phone gives its full weight to its first ARPAbet phone, half to the second of a split affricate (ts -> T S),
    and half to each English diphthong it can begin or end (a -> AY, AW), so the lexicon, not the table, decides
    whether `a ɪ` is AA IH or AY. A phone the table drops (the glottal stop) or does not know goes to silence."""
    lower = all(p == p.lower() for p in inventory if p != silence)
    index = {p: i for i, p in enumerate(inventory)}
    speech = {p: i for p, i in index.items() if p != silence}

    def column(arpa: str) -> int | None:
        name = target_name(arpa, speech, lower)
        return None if name is None else speech[name]

    weights = np.zeros((1 + len(ipa_phones), len(inventory)), dtype=np.float32)
    weights[0, index[silence]] = 1.0
    for row, phone in enumerate(ipa_phones, 1):
        targets = [c for c in (column(a) for a in IPA_TO_ARPABET.get(phone, ())) if c is not None]
        if not targets:
            weights[row, index[silence]] = 1.0
            continue
        for k, col in enumerate(targets):
            weights[row, col] += 1.0 if k == 0 else 0.5
        first = IPA_TO_ARPABET[phone][0]
        for pair, diphthong in DIPHTHONGS.items():
            col = column(diphthong)
            if first in pair and col is not None and col not in targets:
                weights[row, col] += 0.5
    return weights
