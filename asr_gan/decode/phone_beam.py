"""Phone decoding with a phone n-gram LM: a beam search over the generator's per-position distributions.

Paths are read like greedy decoding reads its best path (`asr_gan.decode.greedy`): a run of one symbol is
one token, silence runs separate tokens and are not output. A path's score is

    sum of acoustic log-probs (natural log, one per position)
    + lm_weight * ln(10) * KenLM log10 prob of the emitted phones      (natural log like the acoustic part)
    + insertion_bonus * number of emitted phones

With `lm_weight=0` and `insertion_bonus=0` the best path is the greedy one.

Silence and the LM (`silence` setting): the phone LM is trained on text with `<SIL>` at both edges and between
some words (asr_gan.text.phones.add_silences), so it has an opinion on silences.
- "score": silence runs go through the LM as `<SIL>` tokens, and both utterance edges count as silence
  (the search starts after `<s> <SIL>` and ends with `<SIL> </s>`), because training text always has them
  while VAD-trimmed audio often shows none. A silence run at an edge merges with the edge silence.
- "skip": the LM sees phones only; silence runs only separate tokens.

Hypotheses that reach the same (LM state, last symbol) are recombined, keeping the better: their futures score
the same, so the best path is never lost to the recombination, only to the beam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from asr_gan.decode.greedy import DecodedToken
from asr_gan.text.phones import PhoneInventory

SILENCE_MODES = ("score", "skip")
LN10 = math.log(10.0)  # KenLM answers in log10; the acoustic scores are natural logs


@dataclass
class PhoneBeamConfig:
    """Settings of the phone-LM beam search (see the module docstring for the score)."""

    lm_weight: float = 1.0
    insertion_bonus: float = 0.0
    silence: str = "score"  # "score" | "skip"
    beam_size: int = 16
    token_beam: int = 8  # most probable symbols tried at each position (plus continuing the current run)

    def validate(self) -> None:
        if self.silence not in SILENCE_MODES:
            raise ValueError(f"silence handling {self.silence!r}: choose one of {SILENCE_MODES}")
        if self.beam_size < 1 or self.token_beam < 1:
            raise ValueError(f"beam_size and token_beam must be >= 1, got {self.beam_size}, {self.token_beam}")


class PhoneLMScorer:
    """A KenLM phone LM read through its state API, with every (state, phone) answer cached.

    Scores are log10 probabilities, as KenLM gives them.
    """

    def __init__(self, path: str | Path) -> None:
        import kenlm

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: phone LM not found (build it with `python -m asr_gan.text`)")
        try:
            self.model = kenlm.Model(str(self.path))
        except Exception as err:  # kenlm raises OSError or its own errors for foreign files
            raise ValueError(f"{self.path}: not a KenLM ARPA or binary LM ({err})") from None
        self._cache: dict[tuple[object, str], tuple[float, object]] = {}

    def __contains__(self, token: str) -> bool:
        return token in self.model

    def begin(self) -> object:
        """The state after `<s>`."""
        import kenlm

        state = kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def advance(self, state: object, token: str) -> tuple[float, object]:
        """(log10 P(token | state), the state after it)."""
        key = (state, token)
        hit = self._cache.get(key)
        if hit is None:
            import kenlm

            out = kenlm.State()
            hit = (self.model.BaseScore(state, token, out), out)
            self._cache[key] = hit
        return hit

    def end(self, state: object) -> float:
        """log10 P(</s> | state)."""
        return self.advance(state, "</s>")[0]


class _Run(NamedTuple):
    """A linked list of the runs of a path, newest first: symbol index and first position."""

    parent: "_Run | None"
    index: int
    first: int


class _Hypothesis(NamedTuple):
    score: float
    runs: _Run | None
    last: int | None  # symbol of the current run (None before the first position)
    state: object  # LM state (None without an LM)
    after_silence: bool  # the LM's last token is the silence token


def phone_beam_search(log_probs: torch.Tensor | np.ndarray, inventory: PhoneInventory,
                      lm: PhoneLMScorer | None, config: PhoneBeamConfig = PhoneBeamConfig(),
                      length: int | None = None) -> list[DecodedToken]:
    """Best phone sequence of one utterance under acoustic + weighted LM + insertion scores.

    Args:
        log_probs: (T, P) log-softmax of the generator's logits.
        inventory: the generator's phones in output order (`silence` is not output).
        lm: the phone LM, or None (then only acoustic scores and the insertion bonus count).
        config: weights and beam sizes.
        length: valid positions; None = all T.

    Returns:
        Phones with the positions each covers, silence removed.
    """
    config.validate()
    scores = torch.as_tensor(log_probs, dtype=torch.float32)
    if scores.ndim != 2 or scores.shape[1] != len(inventory):
        raise ValueError(f"log-probs of shape {tuple(scores.shape)} do not match {len(inventory)} phones: "
                         "expected (T, P)")
    if length is not None:
        scores = scores[:length]
    total = scores.shape[0]
    if total == 0:
        return []
    silence = inventory.index(inventory.silence) if inventory.silence is not None else None
    use_lm = lm is not None and config.lm_weight != 0.0
    score_silence = use_lm and config.silence == "score" and silence is not None
    if score_silence and inventory.silence not in lm:
        raise ValueError(f"{lm.path}: the phone LM has no {inventory.silence!r} token, so silence cannot be scored; "
                         "decode with silence handling 'skip'")
    lm_scale = config.lm_weight * LN10

    state = lm.begin() if use_lm else None
    if score_silence:
        _, state = lm.advance(state, inventory.silence)
    beam = [_Hypothesis(0.0, None, None, state, score_silence)]
    values = scores.tolist()
    top = torch.topk(scores, min(config.token_beam, scores.shape[1]), dim=1).indices.tolist()

    for t in range(total):
        row = values[t]
        best: dict[tuple, _Hypothesis] = {}
        for hyp in beam:
            candidates = top[t] if hyp.last is None or hyp.last in top[t] else [*top[t], hyp.last]
            for k in candidates:
                score, runs, state, after_silence = hyp.score + row[k], hyp.runs, hyp.state, hyp.after_silence
                if k != hyp.last:
                    runs = _Run(runs, k, t)
                    if k == silence:
                        if score_silence and not after_silence:
                            lm_score, state = lm.advance(state, inventory.silence)
                            score += lm_scale * lm_score
                            after_silence = True
                    else:
                        if use_lm:
                            lm_score, state = lm.advance(state, inventory.symbols[k])
                            score += lm_scale * lm_score
                        score += config.insertion_bonus
                        after_silence = False
                key = (state, k, after_silence)
                kept = best.get(key)
                if kept is None or score > kept.score:
                    best[key] = _Hypothesis(score, runs, k, state, after_silence)
        beam = sorted(best.values(), key=lambda h: h.score, reverse=True)[: config.beam_size]

    def final_score(hyp: _Hypothesis) -> float:
        if not use_lm:
            return hyp.score
        state, score = hyp.state, hyp.score
        if score_silence and not hyp.after_silence:
            lm_score, state = lm.advance(state, inventory.silence)
            score += lm_scale * lm_score
        return score + lm_scale * lm.end(state)

    winner = max(beam, key=final_score)
    return _tokens_of(winner.runs, total, silence, inventory)


def _tokens_of(runs: _Run | None, total: int, silence: int | None, inventory: PhoneInventory) -> list[DecodedToken]:
    """Unroll the linked runs into tokens; each run ends where the next begins."""
    tokens: list[DecodedToken] = []
    end = total
    while runs is not None:
        if runs.index != silence:
            tokens.append(DecodedToken(inventory.symbols[runs.index], runs.first, end - 1))
        end = runs.first
        runs = runs.parent
    return tokens[::-1]
