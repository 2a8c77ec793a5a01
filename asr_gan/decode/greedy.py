"""Greedy (best-path) decoding of generator output: argmax per position, merge repeats, drop silence.

The generator gives one phone distribution per segment (or per frame group); neighbouring segments of one
phone often agree, so runs of the same argmax are one phone (wav2vec-U decodes its GAN output the same way:
`w2vu_generate.py` merges repeats and removes `<SIL>` with `post_process: silence`). A silence between two
equal phones keeps them apart, like a CTC blank.

Every decoder of this package returns `DecodedToken`s, which remember the output positions they cover, so
the caller can turn positions into seconds (`asr_gan.decode.timeline.Timeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from asr_gan.text.phones import PhoneInventory


@dataclass(frozen=True)
class DecodedToken:
    """One output symbol (a phone or a word) and the generator output positions it covers, `first..last`."""

    symbol: str
    first: int
    last: int


def merge_path(path: Sequence[int], silence: int | None) -> list[tuple[int, int, int]]:
    """Collapse a best path of indices into runs: [(index, first position, last position)], silence runs removed.

    Example: path [3, 3, 5, 5, 5, 3] with silence 5 -> [(3, 0, 1), (3, 5, 5)].
    """
    runs: list[tuple[int, int, int]] = []
    start = 0
    for t in range(1, len(path) + 1):
        if t == len(path) or path[t] != path[start]:
            if path[start] != silence:
                runs.append((int(path[start]), start, t - 1))
            start = t
    return runs


def greedy_decode(logits: torch.Tensor | np.ndarray, inventory: PhoneInventory,
                  length: int | None = None) -> list[DecodedToken]:
    """Best-path phones of one utterance.

    Args:
        logits: (T, P) generator logits or log-probabilities (the argmax is the same).
        inventory: the generator's phones, in output order; its `silence` is dropped from the output.
        length: valid positions (the rest is padding); None = all T.

    Returns:
        Phones with the positions each covers, silence removed.
    """
    scores = torch.as_tensor(logits)
    if scores.ndim != 2 or scores.shape[1] != len(inventory):
        raise ValueError(f"logits of shape {tuple(scores.shape)} do not match {len(inventory)} phones: expected (T, P)")
    if length is not None:
        scores = scores[:length]
    path = scores.argmax(dim=-1).tolist()
    silence = inventory.index(inventory.silence) if inventory.silence is not None else None
    return [DecodedToken(inventory.symbols[i], first, last) for i, first, last in merge_path(path, silence)]


def symbols(tokens: Sequence[DecodedToken]) -> list[str]:
    """Just the symbols of decoded tokens."""
    return [token.symbol for token in tokens]
