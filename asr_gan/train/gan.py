"""The GAN training loop: alternating discriminator and generator updates on device-resident data.

One update trains either the discriminator (and the feature discriminator, when used) or the generator (and
the reverse generator); with `discriminator_steps=1` they alternate as in wav2vec-U (the generator first), and
when no loss reads a discriminator (`loss.adversarial` and `loss.feature_adversarial` at 0) every update trains
the generator.
Every `valid_interval` updates the generator decodes the unlabelled validation audio, the label-free metric
`weighted_lm_ppl` is computed (asr_gan/train/selection.py), and `checkpoint_last.pt` (and `checkpoint_best.pt`
when the metric improved) are written atomically. A run started again in the same folder resumes from
`checkpoint_last.pt` and draws the same batches an uninterrupted run would have drawn (single process).

Non-finite losses stop the run with `TrainingDiverged`; losses are checked at every log line (checking every
update would make the GPU wait for the host) and before every checkpoint, so no checkpoint ever holds
weights from after a divergence.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from asr_gan.models.discriminator import Discriminator
from asr_gan.models.generator import Generator
from asr_gan.models.reverse_generator import ReverseGenerator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train import losses
from asr_gan.train.checkpoint import read_checkpoint, save_checkpoint
from asr_gan.train.config import GanConfig, config_to_dict, save_config
from asr_gan.train.data import (SequenceBank, feature_statistics, load_feature_sequences, read_phone_text,
                                read_segment_labels)
from asr_gan.train.distributed import (
    DistributedContext,
    average_gradients,
    barrier,
    broadcast_parameters,
    init_distributed,
    shutdown,
)
from asr_gan.train.graphs import CapturedStep
from asr_gan.train.merge import join_rows, merge_runs
from asr_gan.train.selection import greedy_phone_ids, weighted_lm_ppl


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the loss, the update and the intact checkpoint."""


def pick_device(name: str, context: DistributedContext) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and context.enabled:
        return torch.device("cuda", context.local_rank)
    return torch.device(name)


class GanTrainer:
    """Builds the networks, optimisers and data of one run; `train()` runs it to `max_updates`."""

    def __init__(self, config: GanConfig, out: str | Path, context: DistributedContext | None = None) -> None:
        config.validate()
        self.config, self.out = config, Path(out)
        self.context = context or DistributedContext()
        self.device = pick_device(config.device, self.context)
        self.use_amp = config.amp and self.device.type == "cuda"
        # CUDA graphs need one shape per update and no host-side work inside it: not under torchrun (the
        # gradient all-reduce runs between backward and step) nor with the generator's batch norm (it selects
        # the real positions by a boolean mask, whose size only the host can know).
        self.use_graphs = (config.cuda_graphs and self.device.type == "cuda" and not self.context.enabled
                           and not config.generator.batch_norm)
        self.graphs: dict[str, CapturedStep] = {}
        torch.manual_seed(config.seed)  # the same initial weights in every process
        self.sampler = np.random.default_rng([config.seed, self.context.rank])
        self.inventory = PhoneInventory.load(config.phones)
        self._load_data()
        self._build_models()
        self.step = 0
        self.best_metric = math.inf
        self.best_step: int | None = None
        self.log_sums: dict[str, torch.Tensor] = {}
        self.log_counts: dict[str, int] = {}
        self.writer = None

    # ------------------------------------------------------------------------------------------- set-up

    def _load_data(self) -> None:
        config = self.config
        sequences, utt_ids = load_feature_sequences(config.features)
        self.train_bank = SequenceBank(sequences, self.device)
        self.warm_labels = (SequenceBank(read_segment_labels(config.warm_start_labels, utt_ids, sequences,
                                                             self.inventory), self.device)
                            if config.warm_start_labels and config.warm_start_updates > 0 else None)
        self.input_dim = sequences[0].shape[1]
        text = read_phone_text(config.text, self.inventory)
        self.text_bank = SequenceBank(text, self.device)
        self.text_bigrams = (losses.bigram_distribution(text, len(self.inventory)).to(self.device)
                             if config.loss.bigram > 0 else None)
        self.text_unigrams = (losses.unigram_distribution(text, len(self.inventory)).to(self.device)
                              if config.loss.diversity_target == "text" else None)
        self.valid_bank: SequenceBank | None = None
        self.valid_ids: list[str] = []
        self.valid_refs: dict[str, list[str]] | None = None
        self.lm = None
        if config.valid_features:
            valid, self.valid_ids = load_feature_sequences(config.valid_features)
            self.valid_bank = SequenceBank(valid, self.device)
            from asr_gan.text.lm import NgramLM

            self.lm = NgramLM(config.phone_lm)
            if config.valid_labels:
                from asr_gan.train.ctc_data import read_phone_labels

                self.valid_refs = read_phone_labels(config.valid_labels)

    def _build_models(self) -> None:
        config, phones = self.config, len(self.inventory)
        self.generator_kwargs = {"input_dim": self.input_dim, "num_phones": phones, **asdict(config.generator)}
        self.generator = Generator(**self.generator_kwargs).to(self.device)
        mean, std = feature_statistics(self.train_bank)
        self.generator.set_feature_statistics(mean, std)
        self.discriminator_kwargs = {"input_dim": phones, **asdict(config.discriminator)}
        self.discriminator = Discriminator(**self.discriminator_kwargs).to(self.device)
        self.reverse_kwargs: dict[str, Any] | None = None
        self.reverse_generator: ReverseGenerator | None = None
        if config.uses_reverse_generator:
            self.reverse_kwargs = {"num_phones": phones, "output_dim": self.input_dim,
                                   "upsample": config.generator.stride, **asdict(config.reverse_generator)}
            self.reverse_generator = ReverseGenerator(**self.reverse_kwargs).to(self.device)
        self.feature_discriminator: Discriminator | None = None
        if config.loss.feature_adversarial > 0:
            self.feature_discriminator = Discriminator(self.input_dim, **asdict(config.discriminator)).to(self.device)
        for module in self._modules():
            broadcast_parameters(module, self.context)
        self.generator_params = list(self.generator.parameters())
        if self.reverse_generator is not None:
            self.generator_params += list(self.reverse_generator.parameters())
        self.discriminator_params = list(self.discriminator.parameters())
        if self.feature_discriminator is not None:
            self.discriminator_params += list(self.feature_discriminator.parameters())
        # On CUDA one fused kernel per optimiser step; capturable keeps its step count on the device for graphs.
        fast = {"fused": True, "capturable": self.use_graphs} if self.device.type == "cuda" else {}
        adam = torch.optim.AdamW if config.decoupled_weight_decay else torch.optim.Adam
        self.generator_optimizer = adam(self.generator_params, lr=config.generator_lr, betas=tuple(config.betas),
                                        eps=config.adam_eps, weight_decay=config.generator_weight_decay, **fast)
        self.discriminator_optimizer = adam(self.discriminator_params, lr=config.discriminator_lr,
                                            betas=tuple(config.betas), eps=config.adam_eps,
                                            weight_decay=config.discriminator_weight_decay, **fast)
        if self.device.type == "cuda":
            # With graphs every update has one shape, and finding cuDNN's fastest kernels for it pays; without,
            # shapes change every batch and each new one would be benchmarked again.
            torch.backends.cudnn.benchmark = self.use_graphs

    def _modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.generator, self.discriminator, self.reverse_generator, self.feature_discriminator)
                if m is not None]

    # -------------------------------------------------------------------------------------------- batches

    def _plan(self, bank: SequenceBank) -> np.ndarray:
        """Host side of a batch from `bank`: (3, B) positions, crop starts and lengths (data.SequenceBank.plan)."""
        index = self.sampler.integers(len(bank), size=self.config.batch_size)
        return bank.plan(index, self.config.max_length, self.sampler)

    def _width(self, bank: SequenceBank, plan: np.ndarray) -> int:
        """Padded width of a batch: its longest sequence, or with CUDA graphs the longest the bank can give."""
        return self._graph_width(bank) if self.use_graphs else int(plan[2].max())

    def _graph_width(self, bank: SequenceBank) -> int:
        return min(bank.longest, self.config.max_length) if self.config.max_length else bank.longest

    def _text_batch(self, plan: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Phone ids (B, L), one-hot (B, L, P) zero at padding, padding mask (B, L)."""
        ids, mask = self.text_bank.take(plan, width)
        one_hot = F.one_hot(ids, len(self.inventory)).float().masked_fill(mask.unsqueeze(-1), 0.0)
        return ids, one_hot, mask

    def _draw(self, banks: list[SequenceBank]) -> tuple[list[torch.Tensor], list[int]]:
        """A batch plan from each bank, on the device, and each batch's padded width."""
        plans = [self._plan(bank) for bank in banks]
        widths = [self._width(bank, plan) for bank, plan in zip(banks, plans)]
        return [torch.from_numpy(plan).to(self.device, non_blocking=True) for plan in plans], widths

    def _run(self, name: str, step: Callable[[list[torch.Tensor], list[int]], dict[str, torch.Tensor]],
             banks: list[SequenceBank]) -> dict[str, torch.Tensor]:
        """Draw a batch plan from each bank and run `step(plans, widths)`: eagerly, or as the CUDA graph
        captured for `name` at its first call."""
        plans, widths = self._draw(banks)
        if not self.use_graphs:
            return step(plans, widths)
        if name not in self.graphs:
            optimizers = [self.generator_optimizer, self.discriminator_optimizer]
            try:
                self.graphs[name] = CapturedStep(lambda *inputs: step(list(inputs), widths), plans, self._modules(),
                                                 optimizers)
            except RuntimeError as err:  # a CUDA stack that cannot capture this step: train on, eagerly
                self._stop_graphs(f"{name} update: {err}")
                return step(plans, widths)
        return self.graphs[name](*plans)

    def describe_execution(self) -> str:
        """Where and how the updates run, for the log: device, precision, CUDA graphs and their padded widths."""
        text = f"device {self.device}, {'bfloat16 autocast' if self.use_amp else 'float32'}"
        if self.context.enabled:
            text += f", {self.context.world_size} processes"
        if not self.use_graphs:
            return text + ", updates launched eagerly"
        return (text + f", CUDA graphs (batches padded to {self._graph_width(self.train_bank)} audio and "
                f"{self._graph_width(self.text_bank)} text positions)")

    def _stop_graphs(self, why: str) -> None:
        first_line = why.strip().splitlines()[0] if why.strip() else why
        print(f"[gan] warning: CUDA graph capture failed ({first_line}); every update is launched eagerly from "
              "now on (slower; set cuda_graphs: false to skip the attempt)", flush=True)
        self.use_graphs = False
        self.graphs.clear()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False

    def _autocast(self):
        # Autocast's weight cache would hold casts made during a graph's capture: off with graphs.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp,
                              cache_enabled=not self.use_graphs)

    # -------------------------------------------------------------------------------------------- updates

    def _discriminator_batch(self, audio_plan: torch.Tensor, text_plan: torch.Tensor, audio_width: int,
                             text_width: int) -> tuple[torch.Tensor, ...]:
        """An audio batch, its merged generator output (no gradients) and a text batch:
        audio, audio_mask, fake, fake_mask, real, real_mask."""
        audio, audio_mask = self.train_bank.take(audio_plan, audio_width)
        _, real, real_mask = self._text_batch(text_plan, text_width)
        with torch.no_grad(), self._autocast():
            logits, out_mask = self.generator(audio, audio_mask)
        fake, fake_mask = merge_runs(logits.float().softmax(-1), out_mask, sample=True,
                                     width=logits.shape[1] if self.use_graphs else None)
        if self.config.loss.adversarial_hard:
            fake = losses.straight_through_one_hot(fake)
        return audio, audio_mask, fake, fake_mask, real, real_mask

    def discriminator_scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's scores (B,) of a fresh batch of generated output and of text; no update."""
        plans, widths = self._draw([self.train_bank, self.text_bank])
        _, _, fake, fake_mask, real, real_mask = self._discriminator_batch(*plans, *widths)
        with torch.no_grad(), self._autocast():
            return self.discriminator(fake, fake_mask).float(), self.discriminator(real, real_mask).float()

    def discriminator_update(self) -> dict[str, torch.Tensor]:
        return self._run("discriminator", self._discriminator_step, [self.train_bank, self.text_bank])

    def _discriminator_step(self, plans: list[torch.Tensor], widths: list[int]) -> dict[str, torch.Tensor]:
        """One discriminator update on (audio, text) batch plans of these widths."""
        weights = self.config.loss
        audio, audio_mask, fake, fake_mask, real, real_mask = self._discriminator_batch(*plans, *widths)
        total = torch.zeros((), device=audio.device)
        logged: dict[str, torch.Tensor] = {}
        if weights.adversarial > 0:  # else only the feature discriminator is read (uses_discriminator)
            with self._autocast():
                adversarial = losses.discriminator_loss(self.discriminator(fake, fake_mask),
                                                        self.discriminator(real, real_mask))
                penalty = losses.gradient_penalty(self.discriminator, real, fake, weights.gradient_penalty_norm,
                                                  real_mask, fake_mask)
            total = adversarial + weights.gradient_penalty * penalty
            logged = {"d_adversarial": adversarial, "d_gradient_penalty": penalty}
        if self.feature_discriminator is not None:
            assert self.reverse_generator is not None
            with torch.no_grad(), self._autocast():
                fake_features, fake_features_mask = self.reverse_generator(real, real_mask)
            real_features = self.generator.normalize(audio).masked_fill(audio_mask.unsqueeze(-1), 0.0)
            with self._autocast():
                feature_adversarial = losses.discriminator_loss(
                    self.feature_discriminator(fake_features.float(), fake_features_mask),
                    self.feature_discriminator(real_features, audio_mask))
                feature_penalty = losses.gradient_penalty(self.feature_discriminator, real_features,
                                                          fake_features.float(), weights.gradient_penalty_norm,
                                                          audio_mask, fake_features_mask)
            total = total + weights.feature_adversarial * (feature_adversarial
                                                           + weights.gradient_penalty * feature_penalty)
            logged["d_feature_adversarial"] = feature_adversarial
        self._apply(total, self.discriminator_optimizer, self.discriminator_params)
        logged["d_total"] = total
        return logged

    def generator_update(self) -> dict[str, torch.Tensor]:
        text_side = self.config.loss.cycle_text > 0 or self.config.loss.feature_adversarial > 0
        banks = [self.train_bank, self.text_bank] if text_side else [self.train_bank]
        return self._run("generator", self._generator_step, banks)

    def _generator_step(self, plans: list[torch.Tensor], widths: list[int]) -> dict[str, torch.Tensor]:
        """One generator update on an audio batch plan, and a text one when the text side is trained."""
        weights = self.config.loss
        audio, audio_mask = self.train_bank.take(plans[0], widths[0])
        for p in self.discriminator_params:
            p.requires_grad_(False)  # no discriminator gradients are needed in this update
        try:
            with self._autocast():
                logits, out_mask = self.generator(audio, audio_mask)
            logits = logits.float()
            probs = logits.softmax(-1)
            # Merging the logits picks the same positions as merging their softmax (the argmax is the same), and
            # wav2vec-U's regularisers read the merged logits.
            merged, fake_mask = merge_runs(logits, out_mask, sample=True,
                                           width=logits.shape[1] if self.use_graphs else None)
            fake = merged.softmax(-1).masked_fill(fake_mask.unsqueeze(-1), 0.0)
            shown = losses.straight_through_one_hot(fake) if weights.adversarial_hard else fake
            if weights.adversarial > 0:
                with self._autocast():
                    adversarial = losses.generator_adversarial_loss(self.discriminator(shown, fake_mask))
            else:  # no discriminator pass for a term that is not trained
                adversarial = torch.zeros((), device=logits.device)
            if weights.regularise == "merged":  # wav2vec-U: on the merged rows, as its JOIN segmenter sizes them
                rows = join_rows(fake_mask, out_mask)
                smoothness = losses.smoothness_loss(merged, fake_mask, rows)
            else:
                smoothness = losses.smoothness_loss(logits, out_mask)
            if self.text_unigrams is not None:  # the merged outputs are phones as the text has them
                diversity = losses.unigram_matching_loss(fake, fake_mask, self.text_unigrams)
            elif weights.regularise == "merged":
                diversity = losses.diversity_loss(fake, fake_mask, rows)
            else:
                diversity = losses.diversity_loss(probs, out_mask)
            total = weights.adversarial * adversarial + weights.smoothness * smoothness + weights.diversity * diversity
            logged = {"g_adversarial": adversarial, "g_smoothness": smoothness, "g_diversity": diversity}
            if self.text_bigrams is not None:
                bigram = losses.bigram_matching_loss(fake, fake_mask, self.text_bigrams)
                total = total + weights.bigram * bigram
                logged["g_bigram"] = bigram
            if weights.cycle_audio > 0:
                total = total + weights.cycle_audio * self._audio_cycle(audio, audio_mask, probs, out_mask, logged)
            if len(plans) > 1:
                total = total + self._text_side(plans[1], widths[1], logged)
        finally:
            for p in self.discriminator_params:
                p.requires_grad_(True)
        self._apply(total, self.generator_optimizer, self.generator_params)
        logged["g_total"] = total
        return logged

    def _audio_cycle(self, audio: torch.Tensor, audio_mask: torch.Tensor, probs: torch.Tensor,
                     out_mask: torch.Tensor, logged: dict[str, torch.Tensor]) -> torch.Tensor:
        """features -> phones -> features: reconstruction of the standardised input."""
        assert self.reverse_generator is not None
        phones = losses.straight_through_one_hot(probs) if self.config.loss.cycle_hard else probs
        phones = phones.masked_fill(out_mask.unsqueeze(-1), 0.0)
        with self._autocast():
            rebuilt, _ = self.reverse_generator(phones, out_mask)
        loss = losses.reconstruction_loss(rebuilt.float(), self.generator.normalize(audio), audio_mask)
        logged["cycle_audio"] = loss
        return loss

    def _text_side(self, text_plan: torch.Tensor, text_width: int, logged: dict[str, torch.Tensor]) -> torch.Tensor:
        """text phones -> features -> phones (cross-entropy), and the feature discriminator's adversarial loss."""
        assert self.reverse_generator is not None
        weights = self.config.loss
        ids, one_hot, mask = self._text_batch(text_plan, text_width)
        with self._autocast():
            features, features_mask = self.reverse_generator(one_hot, mask)
        total = torch.zeros((), device=self.device)
        if weights.cycle_text > 0:
            with self._autocast():
                back, _ = self.generator(features, features_mask, normalized=True)
            loss = losses.phone_cross_entropy(back.float(), ids, mask)
            logged["cycle_text"] = loss
            total = total + weights.cycle_text * loss
        if self.feature_discriminator is not None:
            with self._autocast():
                loss = losses.generator_adversarial_loss(self.feature_discriminator(features.float(), features_mask))
            logged["g_feature_adversarial"] = loss
            total = total + weights.feature_adversarial * loss
        return total

    def warm_start(self, bar: tqdm) -> None:
        """Cross-entropy updates of the generator on the warm-start segment labels (a fresh Adam, G's lr)."""
        assert self.warm_labels is not None
        optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.config.generator_lr,
                                     betas=tuple(self.config.betas))
        params = list(self.generator.parameters())
        self.generator.train()
        total = torch.zeros((), device=self.device)
        updates = self.config.warm_start_updates
        for _ in tqdm(range(updates), desc="[gan] warm start", unit="upd", leave=False,
                      disable=not (self.context.is_main and self.config.progress), dynamic_ncols=True):
            index = self.sampler.integers(len(self.train_bank), size=self.config.batch_size)
            audio, audio_mask = self.train_bank.gather(index)
            targets, _ = self.warm_labels.gather(index)
            with self._autocast():
                logits, out_mask = self.generator(audio, audio_mask)
            loss = losses.phone_cross_entropy(logits.float(), targets, out_mask)
            self._apply(loss, optimizer, params, clip=False)  # asr_gan's own warm start, unclipped as before
            total = total + loss.detach()
        record = {"step": 0, "warm_start_updates": updates, "warm_start_ce": round(total.item() / updates, 5)}
        if not math.isfinite(record["warm_start_ce"]):
            raise TrainingDiverged("non-finite cross-entropy in the warm start: check warm_start_labels")
        # They let the phone discriminator catch up with the warm generator; nothing reads it without the term.
        d_updates = self.config.warm_start_discriminator_updates if self.config.loss.adversarial > 0 else 0
        if d_updates:
            self.discriminator.train()
            d_total = torch.zeros((), device=self.device)
            for _ in range(d_updates):
                d_total = d_total + self.discriminator_update()["d_adversarial"].detach()
            record["warm_start_d_adversarial"] = round(d_total.item() / d_updates, 5)
        if self.context.is_main:
            record.update({k: v for k, v in self.validate().items() if k != "step"})
            metric = record.get("weighted_lm_ppl")
            if self.config.select_after > 0:
                record["selectable"] = False
            elif metric is not None:
                # The warm generator is a candidate like any validated update: the GAN may only make it worse.
                self.best_metric, self.best_step = metric, 0
                save_checkpoint(self.out / "checkpoint_best.pt", self.state())
            self._write_metrics(record)
            bar.write("[gan] warm start: " + " ".join(f"{k}={v}" for k, v in record.items() if k != "step"))
        barrier(self.context)

    def _apply(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
               clip: bool = True) -> None:
        """Backward, average over processes, clip the gradients' norm (wav2vec-U: 5) and step."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(params, self.context)
        if clip and self.config.clip_norm > 0:
            # The norm stays on the device (no host sync), so the update can still be captured in a CUDA graph.
            torch.nn.utils.clip_grad_norm_(params, self.config.clip_norm)
        optimizer.step()

    # ------------------------------------------------------------------------------------- checkpoints

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

    def _check_finite(self) -> None:
        bad = [name for name, value in self.log_sums.items() if not torch.isfinite(value).item()]
        if not bad:
            bad = [name for name, module in (("generator", self.generator), ("discriminator", self.discriminator))
                   if not all(torch.isfinite(p).all().item() for p in module.parameters())]
        if bad:
            last = self.out / "checkpoint_last.pt"
            kept = f"the last good checkpoint {last} is intact" if last.is_file() else "no checkpoint was written yet"
            raise TrainingDiverged(f"non-finite {', '.join(bad)} before update {self.step}: stopping; {kept}. "
                                   "Lower the learning rates or raise loss.gradient_penalty.")

    def _check_replicas_agree(self) -> None:
        """Under torchrun, every process must end with the same generator (gradient averaging works)."""
        if not self.context.enabled:
            return
        import torch.distributed as dist

        checksum = float(sum(p.double().sum().item() for p in self.generator.parameters()))
        sums: list[float] = [0.0] * self.context.world_size
        dist.all_gather_object(sums, checksum)
        if max(sums) - min(sums) > 1e-6 * max(1.0, abs(checksum)):
            raise RuntimeError(f"generator weights differ across processes ({sums}): gradient averaging failed")

    # ------------------------------------------------------------------------------------------ logging

    def _record(self, logged: dict[str, torch.Tensor]) -> None:
        for name, value in logged.items():
            value = value.detach().float()
            self.log_sums[name] = self.log_sums[name] + value if name in self.log_sums else value
            self.log_counts[name] = self.log_counts.get(name, 0) + 1

    def _write_metrics(self, record: dict[str, Any]) -> None:
        if not self.context.is_main:
            return
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, record["step"])

    def _flush_log(self, updates_per_second: float) -> dict[str, Any]:
        self._check_finite()
        record: dict[str, Any] = {"step": self.step}
        for name, total in self.log_sums.items():
            record[name] = round(total.item() / self.log_counts[name], 5)
        record["updates_per_second"] = round(updates_per_second, 2)
        self.log_sums, self.log_counts = {}, {}
        self._write_metrics(record)
        return record

    def validate(self) -> dict[str, Any]:
        """Label-free metric (and PER when references were given) of the current generator."""
        record: dict[str, Any] = {"step": self.step}
        if self.valid_bank is None or self.lm is None:
            return record
        outputs = greedy_phone_ids(self.generator, self.valid_bank)
        score = weighted_lm_ppl(outputs, self.inventory, self.lm)
        record.update({k: round(v, 5) for k, v in asdict(score).items()})
        if self.valid_refs is not None:
            from asr_gan.train.ctc_outputs import per_on_common

            hyps = {u: self.inventory.decode(o) for u, o in zip(self.valid_ids, outputs)}
            scored = per_on_common(self.valid_refs, hyps, self.inventory.silence)
            if scored is not None:
                record["valid_per"] = round(scored[0], 5)
        return record

    # -------------------------------------------------------------------------------------------- loop

    def train(self) -> dict[str, Any]:
        config = self.config
        main = self.context.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(config, self.out / "config.yaml")
        last = self.out / "checkpoint_last.pt"
        if last.is_file():
            self.resume(last)
            if main:
                print(f"[gan] resumed from {last} at update {self.step}", flush=True)
        elif main:
            (self.out / "metrics.jsonl").write_text("")
        if main:
            print(f"[gan] {self.describe_execution()}", flush=True)
        if main and config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        bar = tqdm(total=config.max_updates, initial=self.step, desc="[gan] updates", unit="upd",
                   disable=not (main and config.progress), dynamic_ncols=True)
        cycle = config.discriminator_steps + 1
        since, last_log_step = time.time(), self.step
        if self.step == 0 and self.warm_labels is not None:
            self.warm_start(bar)
        for module in self._modules():
            module.train()
        while self.step < config.max_updates:
            # wav2vec-U: the generator on even update numbers (the first update is 0), the discriminator on odd.
            if config.uses_discriminator and self.step % cycle != 0:
                logged = self.discriminator_update()
            else:
                logged = self.generator_update()
            self._record(logged)
            self.step += 1
            bar.update(1)
            at_valid = self.step % config.valid_interval == 0 or self.step == config.max_updates
            if self.step % config.log_interval == 0 or at_valid:
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                rate = (self.step - last_log_step) / max(time.time() - since, 1e-9)
                record = self._flush_log(rate)
                bar.set_postfix({k: v for k, v in record.items() if k in ("d_total", "g_adversarial", "cycle_audio",
                                                                           "cycle_text")})
                since, last_log_step = time.time(), self.step
            if at_valid:
                self._validate_and_save(bar)
                since = time.time()  # validation time is not update time
        bar.close()
        self._check_replicas_agree()
        if self.writer is not None:
            self.writer.close()
        summary = {"steps": self.step, "best_metric": self.best_metric, "best_step": self.best_step,
                   "checkpoint_best": str(self.out / "checkpoint_best.pt"),
                   "checkpoint_last": str(self.out / "checkpoint_last.pt")}
        if main:
            (self.out / "result.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _validate_and_save(self, bar: tqdm) -> None:
        if self.context.is_main:
            record = self.validate()
            best_path = self.out / "checkpoint_best.pt"
            # Without a validation set, the last checkpoint is also the best one; and a run that ends before
            # select_after still leaves a best checkpoint (its last) for the stages after it.
            fallback = self.step >= self.config.max_updates and not best_path.is_file()
            if self.step < self.config.select_after and not fallback:
                record["selectable"] = False  # the sweep must not pick what the run never keeps
            self._write_metrics(record)
            metric = record.get("weighted_lm_ppl")
            improved = (metric is not None and self.step >= self.config.select_after and metric < self.best_metric)
            if improved:
                self.best_metric, self.best_step = metric, self.step
            if fallback and not improved and metric is not None:
                self.best_metric, self.best_step = metric, self.step
                bar.write(f"[gan] no update after select_after={self.config.select_after} was validated: "
                          "the last checkpoint is kept as the best")
            if improved or self.valid_bank is None or fallback:
                save_checkpoint(best_path, self.state())
            save_checkpoint(self.out / "checkpoint_last.pt", self.state())
            shown = {k: record[k] for k in ("weighted_lm_ppl", "vocab_usage", "valid_per") if k in record}
            bar.write(f"[gan] update {self.step}: " + " ".join(f"{k}={v}" for k, v in shown.items())
                      + (" (best)" if improved else ""))
        barrier(self.context)


def train_gan(config: GanConfig, out: str | Path) -> dict[str, Any]:
    """Train one run in `out` (resuming when it holds a checkpoint); returns the run's summary."""
    context = init_distributed("cuda" if config.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        summary = GanTrainer(config, out, context).train()
        # Rank 0 writes result.json and closes TensorBoard after the last collective; a rank that tears the
        # group down meanwhile can abort in gloo (the DDP test failed so once). Only on success: a failed rank
        # would leave the others waiting here.
        barrier(context)
        return summary
    finally:
        # gloo/NCCL threads still alive at interpreter exit abort the process ("terminate called without an
        # active exception"), which torchrun reports as a failed run.
        shutdown(context)
