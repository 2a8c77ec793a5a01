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
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import asr_gan
from asr_gan.audio.io import SAMPLE_RATE, load_audio
from asr_gan.features.extract import build_frame_rate
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.vad import speech_spans
from asr_gan.manifest import Utterance
from asr_gan.models.generator import Generator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import load_generator, read_checkpoint, save_checkpoint

BUNDLE_FORMAT = "asr_gan.bundle/1"
DECODERS = ("greedy", "phone_lm", "words")
# What a decoding-only checkpoint keeps of a training checkpoint (the rest is for resuming training).
GENERATOR_KEYS = ("generator_kwargs", "generator", "phones", "silence", "config", "step", "best_metric")


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


# ------------------------------------------------------------------------------------------------------- timing


@dataclass
class Timeline:
    """Where each generator output position lies in the original audio, in seconds.

    Attributes:
        starts: (T',) start of each position.
        ends: (T',) end of each position.
    """

    starts: np.ndarray
    ends: np.ndarray

    def span(self, first: int, last: int) -> tuple[float, float]:
        """Seconds covered by positions first..last (inclusive)."""
        return float(self.starts[first]), float(self.ends[last])


def position_frames(segment_frames: np.ndarray, stride: int,
                    positions: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First frame and end frame (exclusive) of each generator output position.

    Args:
        segment_frames: (S,) frames each segment covers (FeaturePipeline.segments_with_lengths).
        stride: the generator's stride over segments; position j covers segments [j*stride, (j+1)*stride).
        positions: the generator's output positions T' (default ceil(S / stride)); positions past the segments
            (wav2vec-U's padding of an even kernel adds one, asr_gan/models/generator.py) get the last one's frames.

    Returns:
        (first (T',), end (T',)) in frames.
    """
    bounds = np.concatenate([[0], np.cumsum(segment_frames)]).astype(np.int64)
    count = -(-len(segment_frames) // stride)
    if positions is None:
        positions = count
    first_segment = np.minimum(np.arange(positions), max(count - 1, 0)) * stride
    end_segment = np.minimum(first_segment + stride, len(segment_frames))
    return bounds[first_segment], bounds[end_segment]


def speech_to_original(seconds: np.ndarray, spans: list[tuple[int, int]], is_end: bool) -> np.ndarray:
    """Map times in VAD-trimmed audio (speech spans joined end to end) back to the original recording.

    An end time falling exactly on a joint belongs to the earlier span (it ends it), a start time to the later one.
    """
    if not spans:
        return seconds
    starts = np.array([s for s, _ in spans], dtype=np.float64) / SAMPLE_RATE
    lengths = np.array([e - s for s, e in spans], dtype=np.float64) / SAMPLE_RATE
    joined = np.concatenate([[0.0], np.cumsum(lengths)])
    which = np.searchsorted(joined[1:], seconds, side="left" if is_end else "right")
    which = np.clip(which, 0, len(spans) - 1)
    return starts[which] + np.minimum(seconds - joined[which], lengths[which])


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
            raise BundleError(f"{directory}: no bundle.json; not a model bundle (write one with asr_gan.decode.bundle)")
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
        _write_json(self.directory / "bundle.json", self.meta)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _copy_file(source: Path, target: Path) -> None:
    """Hard-link when possible (SSL checkpoints are gigabytes and read-only), else copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _copy_lm(source: str | Path | None, stage: Path, name: str) -> str | None:
    if source is None:
        return None
    source = Path(source)
    if not source.is_file():
        raise BundleError(f"{source}: LM not found (build it with `python -m asr_gan.text`)")
    # KenLM tells ARPA from binary by content; the suffix only helps a reader.
    target = f"{name}{'.arpa' if source.suffix == '.arpa' else '.bin'}"
    _copy_file(source, stage / target)
    return target


def write_bundle(out_dir: str | Path, *, transform_dir: str | Path, checkpoint: str | Path,
                 phones: str | Path | PhoneInventory, lexicon: str | Path | None = None,
                 phone_lm: str | Path | None = None, word_lm: str | Path | None = None,
                 decoder_settings: DecoderSettings | dict[str, Any] | None = None,
                 command: str | None = None) -> Path:
    """Assemble a bundle folder (see the module docstring); returns its path.

    The folder is built beside `out_dir` and renamed into place, so a crash leaves no half bundle; an existing
    bundle at `out_dir` is replaced, any other existing folder is refused.

    Args:
        transform_dir: the fitted FeaturePipeline folder (`feats/<frontend>/transform`).
        checkpoint: a GAN checkpoint (`checkpoint_best.pt`); only its generator part is kept.
        phones: `phones.txt` or an inventory; must match the checkpoint's phones in order.
        lexicon, phone_lm, word_lm: optional files (`text/lexicon.txt`, `text/phone_lm.bin`, `text/word_lm.bin`).
        decoder_settings: settings to remember (e.g. from asr_gan.decode.tune).
        command: the command line that trained the model, for the record.
    """
    out_dir = Path(out_dir)
    transform_dir = Path(transform_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "bundle.json").is_file():
        raise BundleError(f"{out_dir}: exists and is not a bundle; choose an empty or new folder")
    pipeline = FeaturePipeline.load(transform_dir)
    state = read_checkpoint(checkpoint)
    missing = [key for key in ("generator_kwargs", "generator", "phones") if key not in state]
    if missing:
        raise BundleError(f"{checkpoint}: checkpoint lacks {missing}")
    inventory = phones if isinstance(phones, PhoneInventory) else PhoneInventory.load(phones, state.get("silence"))
    if list(state["phones"]) != inventory.symbols:
        raise BundleError(f"{checkpoint}: its {len(state['phones'])} phones differ from the {len(inventory)} of "
                          f"{phones if not isinstance(phones, PhoneInventory) else 'the inventory given'} "
                          "(same phones in the same order needed)")
    input_dim = state["generator_kwargs"].get("input_dim")
    expected_dim = _pipeline_output_dim(pipeline)
    if expected_dim is not None and input_dim != expected_dim:
        raise BundleError(f"{checkpoint}: generator input_dim {input_dim} but {transform_dir} gives {expected_dim}-dim "
                          "segments; pair the checkpoint with the transform it was trained on")
    if isinstance(decoder_settings, dict):
        decoder_settings = DecoderSettings.from_dict(decoder_settings)
    settings = decoder_settings or DecoderSettings()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        files: dict[str, str | None] = {"transform": "transform", "generator": "generator.pt", "phones": "phones.txt"}
        shutil.copytree(transform_dir, stage / "transform")
        files["ssl"] = _copy_ssl_checkpoint(pipeline, stage)
        save_checkpoint(stage / "generator.pt", {k: state[k] for k in GENERATOR_KEYS if k in state})
        inventory.save(stage / "phones.txt")
        files["lexicon"] = None
        if lexicon is not None:
            if not Path(lexicon).is_file():
                raise BundleError(f"{lexicon}: lexicon not found (build it with `python -m asr_gan.text`)")
            shutil.copy2(lexicon, stage / "lexicon.txt")
            files["lexicon"] = "lexicon.txt"
        files["phone_lm"] = _copy_lm(phone_lm, stage, "phone_lm")
        files["word_lm"] = _copy_lm(word_lm, stage, "word_lm")
        import torchaudio

        meta = {
            "format": BUNDLE_FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "asr_gan_version": asr_gan.__version__,
            "torch_version": torch.__version__,
            "torchaudio_version": torchaudio.__version__,
            "python_version": platform.python_version(),
            "command": command,
            "files": files,
            "silence": inventory.silence,
            "frame_rate": build_frame_rate(pipeline.frontend_config),
            "generator_stride": state["generator_kwargs"].get("stride", 1),
            "sources": {"transform": str(transform_dir.resolve()), "checkpoint": str(Path(checkpoint).resolve()),
                        "step": state.get("step")},
            "decoder_settings": settings.to_dict(),
        }
        _write_json(stage / "bundle.json", meta)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out_dir


def _pipeline_output_dim(pipeline: FeaturePipeline) -> int | None:
    """Dimension of the pipeline's segments, when known without building the frontend (SSL models are large)."""
    if pipeline.pca is not None or pipeline.centroids is not None:
        return pipeline.output_dim
    if pipeline.frontend_config.kind != "ssl":
        return pipeline.frontend.dim
    return None


def _copy_ssl_checkpoint(pipeline: FeaturePipeline, stage: Path) -> str | None:
    """Put an SSL frontend's checkpoint into the bundle and point the copied transform at it (relative path)."""
    config = pipeline.frontend_config
    if config.kind != "ssl":
        return None
    source = Path(config.ssl_checkpoint or "")
    if not source.exists():
        raise BundleError(f"{source}: the transform's SSL checkpoint is missing; the bundle needs a copy of it")
    (stage / "ssl").mkdir()
    target = Path("ssl") / source.name
    if source.is_dir():  # a Hugging Face folder
        shutil.copytree(source, stage / target, copy_function=lambda s, t: _copy_file(Path(s), Path(t)))
    else:
        _copy_file(source, stage / target)
    # Loading resolves it against the bundle folder (Bundle.load), so the bundle can move.
    pipeline_json = stage / "transform" / "pipeline.json"
    data = json.loads(pipeline_json.read_text(encoding="utf-8"))
    data["frontend"]["ssl_checkpoint"] = str(target)
    data["frontend"]["device"] = None
    pipeline_json.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    return str(target)
