"""Words from generator output: a lexicon + word n-gram LM beam search with torchaudio's flashlight CTC decoder.

The generator's silence token `<SIL>` plays both the CTC blank and the silence (`blank_token=sil_token='<SIL>'`):
the generator has no separate blank, and what separates two equal phones in its output is a silence position.

Run merging (`merge_runs`, on by default): flashlight's lexicon decoder emits a word on the first position of the
word's last phone and then returns to the lexicon root, where only silence may repeat; so a word-final phone that
the generator spreads over two positions (common with segment-level output) would need a silence in between or a
substitution. Positions are therefore merged the way greedy decoding reads them: each run of the same argmax becomes
one position whose log-probs are the run's mean log-probs (renormalised). The decoder still chooses the symbols;
the merge only fixes how many positions a run counts as.

The flashlight lexicon is written from our `lexicon.txt` (`word<TAB>ph1 ph2 ...`); words with a phone outside the
generator's inventory are skipped and counted.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr_gan.decode.greedy import DecodedToken, merge_path
from asr_gan.text.lexicon import Lexicon
from asr_gan.text.phones import PhoneInventory

log = logging.getLogger(__name__)


@dataclass
class WordDecoderConfig:
    """Flashlight lexicon decoder settings. Defaults are torchaudio's (lm_weight 2, word_score 0)."""

    lm_weight: float = 2.0
    word_score: float = 0.0  # added per word: positive favours more words
    sil_score: float = 0.0  # added per silence position
    beam_size: int = 50
    beam_size_token: int | None = None  # symbols tried per position; None = all
    beam_threshold: float = 25.0  # drop hypotheses this far below the best
    merge_runs: bool = True  # see the module docstring


@dataclass
class WordHypothesis:
    """Best word sequence of one utterance, its phones (the lexicon spellings on the decoded path) and score.

    Token positions are generator output positions (before run merging).
    """

    words: list[DecodedToken]
    phones: list[DecodedToken]
    score: float


class DecoderLexicon:
    """Our lexicon restricted to words spelled with the generator's phones (silence excluded)."""

    def __init__(self, path: str | Path, inventory: PhoneInventory) -> None:
        self.path = Path(path)
        lexicon = Lexicon.load(self.path)
        usable = {p for p in inventory.symbols if p != inventory.silence}
        self.prons = {w: phones for w, phones in lexicon.prons.items() if all(p in usable for p in phones)}
        self.skipped = len(lexicon) - len(self.prons)
        if self.skipped:
            log.warning("%s: skipped %d of %d words with phones outside the %d-phone inventory",
                        self.path, self.skipped, len(lexicon), len(inventory))
        if not self.prons:
            raise ValueError(f"{self.path}: no word is spelled with the generator's phones ({len(lexicon)} words "
                             "checked); is it the lexicon of this model's phone set?")

    def __len__(self) -> int:
        return len(self.prons)

    def write_flashlight(self, path: str | Path) -> None:
        """flashlight's lexicon format: a word, then its spelling, whitespace-separated, one line per pronunciation."""
        with open(path, "w", encoding="utf-8") as f:
            for word, phones in self.prons.items():
                f.write(f"{word}\t{' '.join(phones)}\n")


def merge_runs(log_probs: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Merge runs of equal argmax into one position each.

    Args:
        log_probs: (T, P) log-softmax.

    Returns:
        (merged log-probs (R, P), first (R,), last (R,)) where run r covers positions first[r]..last[r].
    """
    path = log_probs.argmax(dim=-1).tolist()
    runs = merge_path(path, silence=None)
    first = np.array([r[1] for r in runs], dtype=np.int64)
    last = np.array([r[2] for r in runs], dtype=np.int64)
    merged = torch.stack([log_probs[a : b + 1].mean(dim=0) for a, b in zip(first, last)]) if runs else log_probs
    return torch.log_softmax(merged, dim=-1), first, last


class WordDecoder:
    """Lexicon + word LM beam search over generator log-probs (torchaudio.models.decoder.ctc_decoder)."""

    def __init__(self, lexicon: DecoderLexicon | str | Path, word_lm: str | Path, inventory: PhoneInventory,
                 config: WordDecoderConfig = WordDecoderConfig()) -> None:
        from torchaudio.models.decoder import ctc_decoder

        if inventory.silence is None:
            raise ValueError("word decoding needs a silence token in the inventory (it is the CTC blank)")
        word_lm = Path(word_lm)
        if not word_lm.is_file():
            raise FileNotFoundError(f"{word_lm}: word LM not found (build it with `python -m asr_gan.text`)")
        self.lexicon = lexicon if isinstance(lexicon, DecoderLexicon) else DecoderLexicon(lexicon, inventory)
        self.inventory = inventory
        self.config = config
        self.silence = inventory.index(inventory.silence)
        with tempfile.TemporaryDirectory(prefix="asr_gan_lexicon.") as tmp:
            lexicon_file = Path(tmp) / "lexicon.txt"
            self.lexicon.write_flashlight(lexicon_file)
            try:
                self._decoder = ctc_decoder(
                    lexicon=str(lexicon_file), tokens=list(inventory.symbols), lm=str(word_lm),
                    nbest=1, beam_size=config.beam_size, beam_size_token=config.beam_size_token,
                    beam_threshold=config.beam_threshold, lm_weight=config.lm_weight, word_score=config.word_score,
                    sil_score=config.sil_score, blank_token=inventory.silence, sil_token=inventory.silence,
                    unk_word="<unk>",
                )
            except Exception as err:  # flashlight raises RuntimeError for unreadable LMs
                raise ValueError(f"{word_lm}: cannot build the word decoder ({err})") from None

    def decode(self, log_probs: torch.Tensor, length: int | None = None) -> WordHypothesis:
        """Best words of one utterance.

        Args:
            log_probs: (T, P) log-softmax of the generator's logits.
            length: valid positions; None = all T.
        """
        scores = torch.as_tensor(log_probs, dtype=torch.float32)
        if scores.ndim != 2 or scores.shape[1] != len(self.inventory):
            raise ValueError(f"log-probs of shape {tuple(scores.shape)} do not match {len(self.inventory)} phones")
        if length is not None:
            scores = scores[:length]
        total = scores.shape[0]
        if total == 0:
            return WordHypothesis([], [], 0.0)
        if self.config.merge_runs:
            emissions, first, last = merge_runs(scores)
        else:
            emissions = scores
            first = last = np.arange(total)
        # flashlight reads the buffer directly: float32, CPU, contiguous (B, T, P).
        emissions = emissions.float().cpu().contiguous().unsqueeze(0)
        best = self._decoder(emissions)[0][0]
        tokens = [int(i) for i in best.tokens]
        # torchaudio's timesteps count flashlight's start state as step 0, so position = timestep - 1.
        starts = [max(int(s) - 1, 0) for s in best.timesteps]
        path = emissions[0].argmax(dim=-1).tolist()
        phones = []
        for n, (token, start) in enumerate(zip(tokens, starts)):
            end = starts[n + 1] - 1 if n + 1 < len(starts) else len(path) - 1
            # The span runs to the next phone; trailing positions the generator calls silence are not part of it.
            while end > start and path[end] == self.silence:
                end -= 1
            phones.append(DecodedToken(self.inventory.symbols[token], int(first[start]), int(last[end])))
        words = self._word_spans(list(best.words), phones)
        return WordHypothesis(words, phones, float(best.score))

    def _word_spans(self, words: list[str], phones: list[DecodedToken]) -> list[DecodedToken]:
        """Give each word the positions of its spelled phones (the path's phones are the spellings in order)."""
        spans, at = [], 0
        for word in words:
            count = len(self.lexicon.prons[word])
            piece = phones[at : at + count]
            if len(piece) != count or [p.symbol for p in piece] != self.lexicon.prons[word]:
                # Not expected from the lexicon decoder; keep the words, without trustworthy times.
                log.warning("word path and phone path disagree at %r; word times left out", word)
                return [DecodedToken(w, -1, -1) for w in words]
            spans.append(DecodedToken(word, piece[0].first, piece[-1].last))
            at += count
        return spans


def word_phones(words: list[str], lexicon: DecoderLexicon | Lexicon) -> list[str]:
    """Spell words with the lexicon (words it lacks are left out): the phones of a word hypothesis."""
    phones: list[str] = []
    for word in words:
        phones.extend(lexicon.prons.get(word, []))
    return phones
