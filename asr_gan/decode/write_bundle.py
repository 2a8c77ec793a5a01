"""Write a model bundle (layout: asr_gan/decode/bundle.py) from a trained GAN checkpoint and its fitted transform."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import asr_gan
from asr_gan.decode.bundle import BUNDLE_FORMAT, BundleError, DecoderSettings, write_json
from asr_gan.features.extract import build_frame_rate
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import read_checkpoint, save_checkpoint

# What a decoding-only checkpoint keeps of a training checkpoint (the rest is for resuming training).
GENERATOR_KEYS = ("generator_kwargs", "generator", "phones", "silence", "config", "step", "best_metric")


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
    """Assemble a bundle folder (layout: asr_gan/decode/bundle.py); returns its path.

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
        write_json(stage / "bundle.json", meta)
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
