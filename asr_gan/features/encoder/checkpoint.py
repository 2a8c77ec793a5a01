"""Saving and loading the phone encoder: one torch file holding its config, phones, weights and provenance.

Weights are stored in float16 (the shipped checkpoint stays a few MB) and loaded back as float32. Loading
reads a local file only: nothing is ever fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from asr_gan.features.encoder.model import EncoderConfig, PhoneEncoder

FORMAT = "asr_gan.phone_encoder/1"
# The checkpoint shipped in the package (`python -m asr_gan.features.encoder train` reproduces it; README).
SHIPPED_CHECKPOINT = Path(__file__).with_name("xlingual_phone_encoder.pt")
# The layer `--frontend encoder` reads by default: the most phone-like on the demo's held-out voices (README).
ENCODER_LAYER = 4


@dataclass
class LoadedEncoder:
    model: PhoneEncoder
    phones: list[str]  # index i + 1 of the logits (0 is the CTC blank)
    info: dict  # provenance: languages, seed, command, training time, held-out PER


def save_encoder(path: str | Path, model: PhoneEncoder, phones: list[str], info: dict) -> None:
    state = {name: value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu()
             for name, value in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"format": FORMAT, "config": model.config.to_dict(), "phones": list(phones), "info": info,
                "state_dict": state}, partial)
    partial.rename(path)


def load_encoder(path: str | Path | None = None) -> LoadedEncoder:
    """The encoder saved at `path` (default: the shipped one), in eval mode on the CPU."""
    path = Path(path) if path is not None else SHIPPED_CHECKPOINT
    if not path.exists():
        hint = (" (the shipped checkpoint is missing: reinstall asr_gan, or train one with "
                "`python -m asr_gan.features.encoder train`)" if path == SHIPPED_CHECKPOINT else "")
        raise FileNotFoundError(f"{path}: no such encoder checkpoint{hint}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a phone encoder checkpoint (expected format {FORMAT!r}); "
                         "a wav2vec 2.0 / HuBERT checkpoint goes to --ssl-checkpoint instead")
    model = PhoneEncoder(EncoderConfig(**data["config"]))
    model.load_state_dict({name: value.float() if value.is_floating_point() else value
                           for name, value in data["state_dict"].items()})
    model.eval()
    return LoadedEncoder(model, list(data["phones"]), dict(data.get("info", {})))
