"""A GAN run's full state (what `checkpoint_last.pt` holds) and resuming a run from it.

`GanState` is the part of `GanTrainer` (asr_gan/train/gan.py) that gathers the networks, optimisers, update
count, best metric and random states into one checkpoint dict, and loads such a dict back so that a resumed run
draws the same batches an uninterrupted run would have drawn (single process).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_gan.train.checkpoint import read_checkpoint
from asr_gan.train.config import config_to_dict


class GanState:
    """Checkpoint contents and resuming of `GanTrainer`; a mixin, with no state of its own."""

    def state(self) -> dict[str, Any]:
        return {
            "generator_kwargs": self.generator_kwargs,
            "generator": self.generator.state_dict(),
            "phones": self.inventory.symbols,
            "silence": self.inventory.silence,
            "config": config_to_dict(self.config),
            "step": self.step,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "discriminator_kwargs": self.discriminator_kwargs,
            "discriminator": self.discriminator.state_dict(),
            "reverse_kwargs": self.reverse_kwargs,
            "reverse_generator": self.reverse_generator.state_dict() if self.reverse_generator else None,
            "feature_discriminator": (self.feature_discriminator.state_dict()
                                      if self.feature_discriminator else None),
            "optimizers": {"generator": self.generator_optimizer.state_dict(),
                           "discriminator": self.discriminator_optimizer.state_dict()},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                    "sampler": self.sampler.bit_generator.state},
        }

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint_last.pt of this run."""
        state = read_checkpoint(path, self.device)
        # Checkpoints from before generator.conv_padding existed were trained with "same".
        if {"conv_padding": "same", **state["generator_kwargs"]} != self.generator_kwargs:
            raise ValueError(f"{path}: its generator {state['generator_kwargs']} differs from this config's "
                             f"{self.generator_kwargs}; use a new --out folder for a new run")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.reverse_generator is not None and state.get("reverse_generator") is not None:
            self.reverse_generator.load_state_dict(state["reverse_generator"])
        if self.feature_discriminator is not None and state.get("feature_discriminator") is not None:
            self.feature_discriminator.load_state_dict(state["feature_discriminator"])
        self.generator_optimizer.load_state_dict(state["optimizers"]["generator"])
        self.discriminator_optimizer.load_state_dict(state["optimizers"]["discriminator"])
        self.step, self.best_metric, self.best_step = state["step"], state["best_metric"], state.get("best_step")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        if self.context.is_main:
            self.sampler.bit_generator.state = rng["sampler"]
        else:
            # Only rank 0's sampler state is saved: other ranks draw fresh, reproducible batches.
            self.sampler = np.random.default_rng([self.config.seed, self.context.rank, self.step])
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop metric lines written after the resumed checkpoint, so the file matches an uninterrupted run."""
        path = self.out / "metrics.jsonl"
        if not path.is_file() or not self.context.is_main:
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= self.step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
