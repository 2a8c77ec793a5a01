"""GAN checkpoints: written atomically, read back into models without the training code.

A checkpoint (`checkpoint_last.pt`, `checkpoint_best.pt` in a run folder) is one `torch.save` dict:

    "format": "asr_gan.gan/1"
    "generator_kwargs": Generator constructor arguments, input_dim and num_phones included
    "generator": its state dict (feature standardisation buffers included)
    "phones": the phone inventory's symbols, in output order; "silence": its silence token
    "config": the run's whole GanConfig as a dict
    "step": updates done; "best_metric": the best weighted_lm_ppl so far
    and, for resuming only: "reverse_generator", "discriminator", "feature_discriminator",
    "optimizers", "rng" (torch, CUDA, numpy sampler states), "reverse_kwargs", "discriminator_kwargs".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from asr_gan.models.generator import Generator
from asr_gan.text.phones import PhoneInventory

FORMAT = "asr_gan.gan/1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` through a temporary file: a crash mid-write keeps the previous checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; errors name the file and say what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: GAN checkpoint not found")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # torch raises several kinds for truncated or foreign files
        raise ValueError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not an asr_gan GAN checkpoint (expected format {FORMAT})")
    return state


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, PhoneInventory]:
    """The trained generator of a checkpoint (eval mode) and its phone inventory."""
    state = read_checkpoint(path, device)
    generator = Generator(**state["generator_kwargs"])
    generator.load_state_dict(state["generator"])
    generator.to(device).eval()
    return generator, PhoneInventory(list(state["phones"]), state.get("silence"))
