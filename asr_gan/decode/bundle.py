"""The model bundle: one folder with everything needed to transcribe new audio, and nothing outside it.

Layout (`exp/<name>/bundle/`):

    bundle.json        format, versions (asr_gan, torch, torchaudio, python), creation time, the training command,
                       the files below, the silence token, the frame rate, the decoder settings and which were tuned
    transform/         the fitted FeaturePipeline (pipeline.json, cmvn.npz, pca.npz, centroids.npy): frontend, VAD,
                       normalisation, PCA, k-means, pooling -- exactly what training used
    ssl/<name>         only for SSL frontends: the wav2vec 2.0 / HuBERT checkpoint the transform's frontend reads
    generator.pt       a GAN checkpoint (asr_gan.train.checkpoint format) holding only the generator: weights,
                       constructor kwargs, phones, silence, config, step (no discriminator, optimiser or RNG state)
    phones.txt         the phone inventory in generator output order
    lexicon.txt        optional: `word<TAB>ph1 ph2 ...` (for word decoding)
    phone_lm.{bin,arpa}  optional: the phone n-gram LM (for the phone-LM beam search)
    word_lm.{bin,arpa}   optional: the word n-gram LM (for word decoding)

`Bundle.log_probs(wave)` runs audio -> frames -> segments -> generator -> log-probs and gives each output position its
span in seconds of the original audio (`Timeline`), through VAD removal, segment lengths and the generator stride.
`asr_gan.decode.write_bundle` writes one (its CLI: `python -m asr_gan.decode.make_bundle`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_gan.audio.io import load_audio
from asr_gan.decode.timeline import Timeline, position_frames, speech_to_original
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.vad import speech_spans
from asr_gan.manifest import Utterance
from asr_gan.models.generator import Generator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import load_generator

BUNDLE_FORMAT = "asr_gan.bundle/1"
DECODERS = ("greedy", "phone_lm", "words")


@dataclass
class DecoderSettings:
    """Decoder settings a bundle remembers; `tuned` names the ones chosen without labels (asr_gan.decode.tune).

    Word decoding (flashlight, asr_gan.decode.words): `lm_weight`, `word_score`, `sil_score`, `beam_size`.
    Phone decoding with the phone LM (asr_gan.decode.phone_beam): `phone_lm_weight`, `insertion_bonus`, `silence`.
    Defaults are torchaudio's ctc_decoder defaults (lm_weight 2, word_score 0) until tuned.
    """

    decoder: str | None = None  # preferred decoder; None = words if possible, else phone_lm if possible, else greedy
    lm_weight: float = 2.0
    word_score: float = 0.0
    sil_score: float = 0.0
    beam_size: int = 50
    phone_lm_weight: float = 1.0
    insertion_bonus: float = 0.0
    silence: str = "score"  # phone LM silence handling: "score" or "skip"
    tuned: list[str] = field(default_factory=list)
    tuning: dict[str, Any] = field(default_factory=dict)  # the tuner's choice and scores, for the record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "DecoderSettings":
        data = data or {}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown decoder settings {sorted(unknown)}")
        return cls(**data)


class BundleError(ValueError):
    """A bundle that cannot be written or read; the message names the folder or file."""


# ------------------------------------------------------------------------------------------------------- bundle


@dataclass
class Bundle:
    """A loaded bundle. Build with `Bundle.load(dir)`; see the module docstring for the layout."""

    directory: Path
    pipeline: FeaturePipeline
    generator: Generator
    inventory: PhoneInventory
    settings: DecoderSettings
    lexicon_path: Path | None
    phone_lm_path: Path | None
    word_lm_path: Path | None
    meta: dict[str, Any]

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "Bundle":
        """Read a bundle folder; every path is taken relative to it, so the folder can be moved or copied.

        `device` (cpu, cuda) overrides the device an SSL frontend was configured with.
        """
        directory = Path(directory)
        meta_path = directory / "bundle.json"
        if not meta_path.is_file():
            raise BundleError(f"{directory}: no bundle.json; not a model bundle "
                              "(write one with asr_gan.decode.make_bundle)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise BundleError(f"{meta_path}: not JSON ({err.msg})") from None
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{meta_path}: format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
        files = meta["files"]

        def optional(name: str) -> Path | None:
            if not files.get(name):
                return None
            path = directory / files[name]
            if not path.exists():
                raise BundleError(f"{path}: listed in {meta_path} but missing; the bundle is incomplete")
            return path

        pipeline = FeaturePipeline.load(directory / files["transform"])
        if files.get("ssl"):
            pipeline.frontend_config.ssl_checkpoint = str(directory / files["ssl"])
        if device is not None:
            pipeline.frontend_config.device = device
        generator, checkpoint_phones = load_generator(directory / files["generator"])
        inventory = PhoneInventory.load(directory / files["phones"], silence=meta.get("silence"))
        if inventory.symbols != checkpoint_phones.symbols:
            raise BundleError(f"{directory}: phones.txt and generator.pt disagree on the phone inventory")
        try:
            settings = DecoderSettings.from_dict(meta.get("decoder_settings"))
        except (TypeError, ValueError) as err:
            raise BundleError(f"{meta_path}: decoder_settings unreadable ({err})") from None
        return cls(
            directory=directory,
            pipeline=pipeline,
            generator=generator,
            inventory=inventory,
            settings=settings,
            lexicon_path=optional("lexicon"),
            phone_lm_path=optional("phone_lm"),
            word_lm_path=optional("word_lm"),
            meta=meta,
        )

    @property
    def can_decode_words(self) -> bool:
        return self.lexicon_path is not None and self.word_lm_path is not None

    def default_decoder(self) -> str:
        """The decoder to use when none is asked for: the tuned preference, else the richest the files allow."""
        if self.settings.decoder:
            return self.settings.decoder
        if self.can_decode_words:
            return "words"
        return "phone_lm" if self.phone_lm_path is not None else "greedy"

    @torch.no_grad()
    def log_probs_of_segments(self, segments: np.ndarray) -> torch.Tensor:
        """Generator log-probabilities of one utterance. segments: (S, D) -> (T', P) float32 CPU, T' as the generator
        gives it (ceil(S / stride), one more with wav2vec-U's padding of an even kernel)."""
        segments = np.array(segments, dtype=np.float32)  # a copy: stored features are read-only memory maps
        if segments.ndim != 2 or segments.shape[1] != self.generator.input_dim:
            raise ValueError(f"segments of shape {segments.shape} do not fit the generator's input_dim "
                             f"{self.generator.input_dim}")
        if len(segments) == 0:
            return torch.zeros(0, len(self.inventory))
        x = torch.from_numpy(segments).unsqueeze(0)
        logits, _ = self.generator(x, torch.zeros(1, len(segments), dtype=torch.bool))
        return torch.log_softmax(logits[0].float(), dim=-1).cpu().contiguous()

    def segments(self, wave: np.ndarray, speaker: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Audio (samples,) at 16 kHz -> the generator's input segments (S, D) and the frames each covers (S,)."""
        frames = self.pipeline.frames(wave, speaker)
        return self.pipeline.segments_with_lengths(frames)

    def timeline(self, wave: np.ndarray, segment_frames: np.ndarray, stride: int, parts: int = 1,
                 positions: int | None = None) -> Timeline:
        """Seconds in `wave` of each output position of a model with `stride` over its segments (`positions` of them,
        default one per `stride` segments; position_frames); with `parts` > 1 each position is cut into that many
        equal pieces (a CTC model whose outputs are repeated `parts` times)."""
        first, end = position_frames(segment_frames, stride, positions)
        if parts > 1:
            share = np.arange(parts + 1) / parts
            bounds = first[:, None] + (end - first)[:, None] * share[None, :]
            first, end = bounds[:, :-1].reshape(-1), bounds[:, 1:].reshape(-1)
        # The VAD is deterministic, so running it again here finds the spans `frames` kept.
        spans = speech_spans(wave, self.pipeline.vad) if self.pipeline.vad is not None else [(0, len(wave))]
        rate = self.pipeline.frontend.frame_rate  # built by `frames` already; exact for any SSL conv stack
        return Timeline(speech_to_original(first / rate, spans, is_end=False),
                        speech_to_original(end / rate, spans, is_end=True))

    def log_probs(self, wave: np.ndarray, speaker: str | None = None) -> tuple[torch.Tensor, Timeline]:
        """Audio (samples,) at 16 kHz -> generator log-probs (T', P) and the time span of each position."""
        segments, segment_frames = self.segments(wave, speaker)
        log_probs = self.log_probs_of_segments(segments)
        return log_probs, self.timeline(wave, segment_frames, self.generator.stride, positions=len(log_probs))

    def log_probs_of_utterance(self, utt: Utterance) -> tuple[torch.Tensor, Timeline]:
        """`log_probs` of a manifest utterance (its span of its file, its speaker's CMVN when seen in training);
        times are relative to the span's start. Raises AudioError naming the file."""
        wave = load_audio(utt.audio, start=utt.start, end=utt.end)
        return self.log_probs(wave, utt.speaker)

    def update_settings(self, settings: DecoderSettings) -> None:
        """Rewrite bundle.json with new decoder settings (atomically)."""
        self.meta["decoder_settings"] = settings.to_dict()
        self.settings = settings
        write_json(self.directory / "bundle.json", self.meta)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write bundle.json (or any JSON) atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)

