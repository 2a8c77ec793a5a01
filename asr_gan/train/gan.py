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
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.models.discriminator import Discriminator
from asr_gan.models.generator import Generator
from asr_gan.models.reverse_generator import ReverseGenerator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train import losses
from asr_gan.train.checkpoint import save_checkpoint
from asr_gan.train.config import GanConfig, save_config
from asr_gan.train.data import (
    SequenceBank,
    feature_statistics,
    load_feature_sequences,
    read_phone_text,
    read_segment_labels,
)
from asr_gan.train.distributed import DistributedContext, barrier, broadcast_parameters, init_distributed, shutdown
from asr_gan.train.gan_eval import GanValidation
from asr_gan.train.gan_state import GanState
from asr_gan.train.gan_step import GanUpdates
from asr_gan.train.graphs import CapturedStep


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the loss, the update and the intact checkpoint."""


def pick_device(name: str, context: DistributedContext) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and context.enabled:
        return torch.device("cuda", context.local_rank)
    return torch.device(name)


class GanTrainer(GanUpdates, GanValidation, GanState):
    """Builds the networks, optimisers and data of one run; `train()` runs it to `max_updates`.

    The updates are computed in asr_gan/train/gan_step.py, validation and the best checkpoint's choice in
    asr_gan/train/gan_eval.py, the checkpoint's contents and resuming in asr_gan/train/gan_state.py."""

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

    # --------------------------------------------------------------------------------------- warm start

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

    # ------------------------------------------------------------------------------------------- checks

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
