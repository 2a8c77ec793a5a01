"""A CTC phone model's outputs: logits and log-posteriors over a feature set, greedy transcripts, and the
phone error rate they score.

PER here: edit distance between greedy hypothesis and reference phones, silence tokens removed from both
(wav2vec-U scores with `post_process: silence`, which drops `<SIL>`), summed over utterances and divided by
the total number of reference phones.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.edits import edit_counts
from asr_gan.features.storage import FeatureSet
from asr_gan.models.ctc_model import CTCPhoneModel
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_data import LabelledSet, length_batches, pad_batch


def ctc_logits(model: CTCPhoneModel, x: torch.Tensor, padding_mask: torch.Tensor,
               upsample: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Model logits (B, T', P + 1) with each frame repeated `upsample` times, and output lengths (B,)."""
    logits, out_mask = model(x, padding_mask)
    if upsample > 1:
        logits = logits.repeat_interleave(upsample, dim=1)
        out_mask = out_mask.repeat_interleave(upsample, dim=1)
    return logits, (~out_mask).sum(dim=1)


def ctc_greedy_decode(logits: torch.Tensor, length: int, blank: int, blank_penalty: float = 0.0) -> list[int]:
    """Best path of one utterance: argmax per frame, merge repeats, drop blanks. logits (T', P + 1).

    `blank_penalty` is subtracted from the blank's logit first: a model trained on noisy labels spreads its
    phone mass over neighbouring frames and the blank wins everywhere, deleting phones (as icefall's
    `blank_penalty` counters).
    """
    logits = logits[:length]
    if blank_penalty:
        logits = logits.clone()
        logits[:, blank] -= blank_penalty
    best = logits.argmax(dim=-1).tolist()
    out, previous = [], None
    for index in best:
        if index != previous and index != blank:
            out.append(index)
        previous = index
    return out


@torch.no_grad()
def transcribe(model: CTCPhoneModel, features: Sequence[np.ndarray], rows: Sequence[int], device: torch.device,
               batch_frames: int = 20000, upsample: int = 1, progress: str | None = None,
               blank_penalty: float = 0.0) -> list[list[int]]:
    """Greedy phone indices for each row of `features`, in the order of `rows`."""
    model.eval()
    lengths = [int(np.shape(features[r])[0]) for r in rows]
    hyps: list[list[int]] = [[] for _ in rows]
    batches = length_batches(lengths, batch_frames, shuffle=False, rng=random.Random(0))
    for batch in tqdm(batches, desc=progress, disable=progress is None, leave=False):
        x, mask = pad_batch([np.asarray(features[rows[i]], dtype=np.float32) for i in batch])
        logits, out_lengths = ctc_logits(model, x.to(device), mask.to(device), upsample)
        logits = logits.float().cpu()
        for b, i in enumerate(batch):
            hyps[i] = ctc_greedy_decode(logits[b], int(out_lengths[b]), model.blank, blank_penalty)
    return hyps


def phone_error_rate(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]],
                     ignore: Sequence[str] = ("<SIL>",)) -> float:
    """Corpus PER: total edits / total reference phones, `ignore` tokens removed from both sides. The edits are
    those of asr_gan.scoring (one definition of an error for training, selection and the scored results)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    skip = set(ignore)
    errors = words = 0
    for ref, hyp in zip(refs, hyps):
        ref = [p for p in ref if p not in skip]
        hyp = [p for p in hyp if p not in skip]
        errors += sum(edit_counts(ref, hyp))
        words += len(ref)
    return errors / max(words, 1)


def per_on_common(references: dict[str, list[str]], hypotheses: dict[str, list[str]],
                  silence: str | None) -> tuple[float, int] | None:
    """PER over the utterances both dicts hold (`silence` ignored on both sides) and how many they are; None
    when they share none."""
    common = [u for u in hypotheses if u in references]
    if not common:
        return None
    ignore = [silence] if silence else []
    return phone_error_rate([references[u] for u in common], [hypotheses[u] for u in common], ignore), len(common)


def evaluate_per(model: CTCPhoneModel, data: LabelledSet, inventory: PhoneInventory, device: torch.device,
                 batch_frames: int = 20000, upsample: int = 1, blank_penalty: float = 0.0) -> float:
    hyps = transcribe(model, data.features, data.rows, device, batch_frames, upsample, blank_penalty=blank_penalty)
    ignore = [inventory.silence] if inventory.silence else []
    return phone_error_rate([inventory.decode(l) for l in data.labels], [inventory.decode(h) for h in hyps], ignore)


@torch.no_grad()
def log_posteriors(model: CTCPhoneModel, features: FeatureSet, batch_frames: int = 20000,
                   progress: bool = True, blank: bool = True) -> list[np.ndarray]:
    """(T', P + 1) float32 log-posteriors for every utterance of `features`, in its order; (T', P) without
    the blank, renormalised over the phones."""
    model.eval()
    device = next(model.parameters()).device
    lengths = [int(np.shape(features[i])[0]) for i in range(len(features))]
    outputs: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(features)
    batches = length_batches(lengths, batch_frames, shuffle=False, rng=random.Random(0))
    for batch in tqdm(batches, desc="[posteriors]", disable=not progress, leave=False):
        x, mask = pad_batch([np.asarray(features[i], dtype=np.float32) for i in batch])
        logits, out_mask = model(x.to(device), mask.to(device))
        logits = logits.float() if blank else logits.float()[..., :-1]  # the blank is the last output
        log_probs = torch.log_softmax(logits, dim=-1).cpu().numpy()
        out_lengths = (~out_mask).sum(dim=1).cpu().numpy()
        for row, i in enumerate(batch):
            outputs[i] = log_probs[row, :out_lengths[row]]
    return outputs
