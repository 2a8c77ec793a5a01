"""One GAN update: its batches, its losses and its optimiser step, launched eagerly or as a CUDA graph.

`GanUpdates` is the part of `GanTrainer` (asr_gan/train/gan.py) that computes one discriminator update (the
phone discriminator with its gradient penalty, and the feature discriminator when used) or one generator update
(adversarial, smoothness, diversity and bigram terms, and the audio and text cycles through the reverse
generator). It reads the networks, optimisers, banks and settings that `GanTrainer.__init__` builds.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from asr_gan.train import losses
from asr_gan.train.data import SequenceBank
from asr_gan.train.distributed import average_gradients
from asr_gan.train.graphs import CapturedStep
from asr_gan.train.merge import join_rows, merge_runs


class GanUpdates:
    """Batch drawing and the per-update loss computations of `GanTrainer`; a mixin, with no state of its own."""

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
