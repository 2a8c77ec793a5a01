"""What one round of the label-free chain makes of its log-probs (asr_gan.decode.refine).

The encoder's input for every readable utterance, a segment student's log-probs on the word decoder's symbols, the
greedy and the word-decoded phones, the round's label-free score (wav2vec-U's `weighted_lm_ppl`), how much the labels
moved since the last round, and, only where reference files are given, PER and WER to judge the chain by.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.decode.cross_lingual import CrossLingualTranscriber, readable_waves
from asr_gan.decode.greedy import greedy_decode, symbols
from asr_gan.decode.words import WordDecoder
from asr_gan.manifest import read_manifest
from asr_gan.text.lm import NgramLM
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_data import length_batches, load_feature_set, pad_batch, read_phone_labels
from asr_gan.train.ctc_outputs import ctc_logits, phone_error_rate
from asr_gan.train.selection import weighted_lm_ppl

LogProbs = dict[str, torch.Tensor]


def read_mels(manifest: str | Path, transcriber: CrossLingualTranscriber, progress: bool = True, desc: str = ""
              ) -> tuple[dict[str, np.ndarray], list[str]]:
    """The encoder's input (standardised log-mel) of every readable utterance, and the skipped ones."""
    skipped: list[str] = []
    out = {utt.utt_id: transcriber.standardised_mel(wave)
           for utt, wave in readable_waves(read_manifest(manifest), skipped, f"[refine] log-mel {desc}", progress)}
    return out, skipped


@torch.no_grad()
def student_log_probs(model: torch.nn.Module, features_dir: str | Path, inventory: PhoneInventory,
                      device: torch.device, batch_frames: int) -> LogProbs:
    """A CTC student's log-probs over the inventory, its blank's mass moved onto silence (the word decoder's blank)."""
    features = load_feature_set(features_dir)
    silence = inventory.index(inventory.silence)
    rows = list(range(len(features.utt_ids)))
    lengths = [int(np.shape(features[r])[0]) for r in rows]
    out: LogProbs = {}
    model.eval()
    for batch in length_batches(lengths, batch_frames, shuffle=False, rng=random.Random(0)):
        x, mask = pad_batch([np.asarray(features[rows[i]], dtype=np.float32) for i in batch])
        logits, out_lengths = ctc_logits(model, x.to(device), mask.to(device))
        log_probs = logits.float().log_softmax(-1).cpu()
        for b, i in enumerate(batch):
            lp = log_probs[b, : int(out_lengths[b])]
            phones = lp[:, : len(inventory)].clone()
            phones[:, silence] = torch.logaddexp(phones[:, silence], lp[:, model.blank])
            out[features.utt_ids[rows[i]]] = phones
    return out


def greedy_phones(log_probs: LogProbs, inventory: PhoneInventory) -> dict[str, list[str]]:
    return {utt: symbols(greedy_decode(lp, inventory)) for utt, lp in log_probs.items()}


def label_free_score(log_probs: LogProbs, inventory: PhoneInventory, phone_lm: NgramLM) -> dict[str, float]:
    """wav2vec-U's selection metric of the greedy phones (silence left out, as the student's labels have none)."""
    sequences = [inventory.encode(p) for p in greedy_phones(log_probs, inventory).values()]
    score = weighted_lm_ppl(sequences, inventory, phone_lm)
    return {"weighted_lm_ppl": score.weighted_lm_ppl, "lm_ppl": score.lm_ppl, "vocab_usage": score.vocab_usage}


def decode_words(log_probs: LogProbs, decoder: WordDecoder, progress: bool = False, desc: str = ""
                 ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Words and their lexicon phones for every utterance."""
    words, phones = {}, {}
    for utt, lp in tqdm(log_probs.items(), desc=f"[refine] words {desc}", unit="utt", disable=not progress,
                        dynamic_ncols=True):
        hyp = decoder.decode(lp)
        words[utt], phones[utt] = symbols(hyp.words), symbols(hyp.phones)
    return words, phones


def label_change(previous: dict[str, list[str]], current: dict[str, list[str]]) -> float:
    """Edits between two rounds' labels over the previous round's phones."""
    common = [u for u in current if u in previous]
    return phone_error_rate([previous[u] for u in common], [current[u] for u in common], ())


def score_against(references: Path | None, split: str, phones: dict[str, list[str]], words: dict[str, list[str]],
                  silence: str | None) -> dict[str, float]:
    """PER of the phones and WER of the words against text/<split>.{phn,wrd}, where those files exist."""
    if references is None:
        return {}
    scores: dict[str, float] = {}
    for name, hyps, suffix, ignore in (("per", phones, "phn", [silence] if silence else []),
                                       ("wer", words, "wrd", [])):
        path = references / f"{split}.{suffix}"
        if path.is_file():
            refs = read_phone_labels(path)
            common = [u for u in refs if u in hyps]
            scores[name] = phone_error_rate([refs[u] for u in common], [hyps[u] for u in common], ignore)
    return scores
