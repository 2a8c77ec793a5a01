"""`python -m asr_gan.decode.cross_lingual`: phone transcripts of any speech from the phone encoder's own head.

The shipped phone encoder (asr_gan.features.encoder) recognises the phones of eight other languages. Its CTC head,
read greedily, writes IPA phones for English speech too; `asr_gan.text.ipa_arpabet` turns them into the target
inventory's ARPAbet phones. Neither step sees a transcription of the target language: it is a label-free first
transcript, which self-training (`asr_gan.decode.self_train --pseudo-labels`) then refines on the target audio.

Writes OUT/hyp.phn (`utt_id ph1 ph2 ...`, the decoders' format); an utterance whose audio cannot be read is
reported with its file and skipped (OUT/skipped.txt), and the rest are written.

CLI: python -m asr_gan.decode.cross_lingual --manifest exp/demo/data/train.jsonl --phones exp/demo/text/phones.txt \\
        --out exp/demo/cross_lingual/train
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.audio.io import AudioError, load_audio
from asr_gan.features.encoder.checkpoint import load_encoder
from asr_gan.features.encoder.corpus import MEL_CONFIG
from asr_gan.features.frontends import SAMPLE_RATE, LogMelFrontend
from asr_gan.features.normalization import normalize_utterance
from asr_gan.manifest import Utterance, read_manifest
from asr_gan.text.ipa_arpabet import arpabet_weights, ipa_to_arpabet
from asr_gan.text.phones import PhoneInventory


class CrossLingualTranscriber:
    """Waveform -> target-inventory phones, through the encoder's greedy CTC phones and the IPA table."""

    def __init__(self, inventory: list[str], checkpoint: str | Path | None = None, silence: str = "<SIL>") -> None:
        self.loaded = load_encoder(checkpoint)
        self.mel = LogMelFrontend(MEL_CONFIG)
        self.inventory = inventory
        self.silence = silence
        self._weights: torch.Tensor | None = None

    def standardised_mel(self, wave: np.ndarray) -> np.ndarray:
        """(T, 80) log-mel at 100 Hz, standardised per utterance: the encoder's input."""
        mel = self.mel(wave)
        return normalize_utterance(mel) if len(mel) else mel.astype(np.float32)

    @torch.no_grad()
    def logits(self, wave: np.ndarray | None = None, mel: np.ndarray | None = None) -> torch.Tensor:
        """The encoder head's (T, 1 + encoder phones) logits at 50 Hz of a waveform (or of its `standardised_mel`);
        output 0 is the CTC blank."""
        mel = self.standardised_mel(wave) if mel is None else mel
        if len(mel) == 0:
            return torch.zeros(0, 1 + len(self.loaded.phones))
        logits, _ = self.loaded.model(torch.from_numpy(mel)[None], torch.tensor([len(mel)]))
        return logits[0]

    def ipa(self, wave: np.ndarray) -> list[str]:
        path = torch.unique_consecutive(self.logits(wave).argmax(-1)).tolist()
        return [self.loaded.phones[i - 1] for i in path if i > 0]

    def log_probs(self, wave: np.ndarray | None = None, mel: np.ndarray | None = None,
                  floor: float = 1e-4) -> torch.Tensor:
        """(T, len(inventory)) frame log-probs over the target phones, the blank's mass on `silence`: the form the
        word decoder reads (asr_gan.decode.words, silence as blank). `floor` keeps every phone reachable."""
        if self._weights is None:
            if self.silence not in self.inventory:
                raise ValueError(f"the target inventory has no silence token {self.silence!r} to carry the blank")
            self._weights = torch.from_numpy(arpabet_weights(self.loaded.phones, self.inventory, self.silence))
        mass = self.logits(wave, mel).softmax(-1) @ self._weights
        return torch.log_softmax(torch.log(mass + floor), dim=-1)

    def __call__(self, wave: np.ndarray) -> list[str]:
        return ipa_to_arpabet(self.ipa(wave), self.inventory)


def readable_waves(utterances: Iterable[Utterance], skipped: list[str], desc: str, progress: bool = True
                   ) -> Iterator[tuple[Utterance, np.ndarray]]:
    """Each utterance with its 16 kHz waveform; one whose audio cannot be read is appended to `skipped` as
    `utt_id: error` (the error names the file) and passed over."""
    for utt in tqdm(utterances, desc=desc, unit="utt", disable=not progress, dynamic_ncols=True):
        try:
            wave = load_audio(utt.audio, SAMPLE_RATE, utt.start, utt.end)
        except AudioError as err:
            skipped.append(f"{utt.utt_id}: {err}")
            continue
        yield utt, wave


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr_gan.decode.cross_lingual", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="JSONL manifest of the audio (data_prep)")
    p.add_argument("--phones", required=True, help="the target inventory, text/phones.txt (ARPAbet)")
    p.add_argument("--out", required=True, type=Path, help="folder for hyp.phn")
    p.add_argument("--encoder-checkpoint", help="a phone encoder checkpoint (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        inventory = PhoneInventory.load(args.phones)
        transcriber = CrossLingualTranscriber(list(inventory.symbols), args.encoder_checkpoint,
                                              inventory.silence or "<SIL>")
        utterances = read_manifest(args.manifest)
    except (OSError, ValueError) as err:
        print(f"[cross_lingual] error: {err}", file=sys.stderr)
        return 1
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    lines = [f"{utt.utt_id} {' '.join(transcriber(wave))}".rstrip() + "\n"
             for utt, wave in readable_waves(utterances, skipped, "[cross_lingual] transcribe", not args.no_progress)]
    (args.out / "hyp.phn").write_text("".join(lines), encoding="utf-8")
    (args.out / "skipped.txt").write_text("".join(f"{line}\n" for line in skipped), encoding="utf-8")
    for line in skipped:
        print(f"[cross_lingual] skipped {line}", file=sys.stderr)
    print(f"[cross_lingual] {len(lines)} transcripts in {args.out / 'hyp.phn'}, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
