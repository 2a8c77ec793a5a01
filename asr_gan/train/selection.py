"""Label-free model selection: how LM-like the generator's greedy output is on unlabelled audio.

wav2vec-U (Baevski et al. 2021, §4.3): decode validation audio greedily, score the phone strings with a
phone n-gram LM trained on the unpaired text, and penalise a generator that uses few phones:

    weighted_lm_ppl = lm_ppl / vocab_usage ** 2

where vocab_usage is the share of the inventory's non-silence phones that appear in the output. A
collapsed generator emits a few frequent phones (low perplexity, low usage); a random one uses every phone
(high perplexity). No reference transcription is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asr_gan.models.generator import Generator
from asr_gan.text.lm import NgramLM
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.data import SequenceBank


@torch.no_grad()
def greedy_phone_ids(generator: Generator, bank: SequenceBank, batch_size: int = 256) -> list[list[int]]:
    """Greedy output of every sequence of `bank`: argmax per position, runs of one phone merged."""
    was_training = generator.training
    generator.eval()
    outputs: list[list[int]] = []
    for start in range(0, len(bank), batch_size):
        index = np.arange(start, min(start + batch_size, len(bank)))
        x, mask = bank.gather(index)
        logits, out_mask = generator(x, mask)
        best = logits.argmax(dim=-1).cpu().numpy()
        lengths = (~out_mask).sum(dim=1).cpu().numpy()
        for row, length in zip(best, lengths):
            row = row[:length]
            keep = np.ones(len(row), dtype=bool)
            keep[1:] = row[1:] != row[:-1]
            outputs.append(row[keep].tolist())
    generator.train(was_training)
    return outputs


@dataclass
class SelectionScore:
    lm_ppl: float
    vocab_usage: float
    weighted_lm_ppl: float
    mean_output_length: float


def weighted_lm_ppl(sequences: list[list[int]], inventory: PhoneInventory, lm: NgramLM) -> SelectionScore:
    """wav2vec-U's selection metric of merged greedy outputs (module docstring).

    The LM is trained on text with the silence token, so outputs are scored with their silences; usage
    counts non-silence phones only (silence is always emitted and says nothing about diversity).
    """
    phones = [inventory.decode(s) for s in sequences]
    lm_ppl = lm.perplexity(phones)
    speech = {p for p in inventory.symbols if p != inventory.silence}
    used = {p for sentence in phones for p in sentence if p in speech}
    usage = len(used) / max(len(speech), 1)
    weighted = lm_ppl / usage**2 if usage > 0 else float("inf")
    mean_length = float(np.mean([len(s) for s in sequences])) if sequences else 0.0
    return SelectionScore(lm_ppl, usage, weighted, mean_length)
