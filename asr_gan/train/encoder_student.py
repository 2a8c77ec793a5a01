"""A student that keeps the phone encoder's ear: the shipped encoder fine-tuned on target-language pseudo-labels.

A small model trained from scratch on the training voices' pseudo-labels learns those voices and transfers worse
to new ones than the teacher did (docs/cross_lingual_chain.md). The encoder itself has heard many voices of eight
languages; fine-tuning it keeps that. Its CTC head over the encoder's phones is replaced by one over the target
phones (blank first, then every target phone but silence, which the blank covers), each row started from the
encoder's output row of the phone that gives it the most weight in the IPA table (`arpabet_weights`), so training
starts from the first pass instead of from nothing. Training views are warped and masked as in the encoder's own
training; the epoch kept is the one whose greedy output agrees best with held-out pseudo-labels.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asr_gan.features.encoder.checkpoint import LoadedEncoder
from asr_gan.features.encoder.model import PhoneEncoder
from asr_gan.features.encoder.train import EncoderTrainConfig, augment, length_batches
from asr_gan.text.ipa_arpabet import arpabet_weights
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_outputs import phone_error_rate


@dataclass
class EncoderStudentConfig:
    epochs: int = 8
    lr: float = 3e-4
    batch_frames: int = 8_000  # log-mel frames per batch
    augment: bool = True
    # Encoder blocks trained, counted from the top (None: all of them, the stem too; 0: the head alone). The
    # frozen lower blocks keep what eight languages' voices taught them; only the top adapts to the pseudo-labels.
    train_layers: int | None = None
    seed: int = 1
    device: str = "cpu"


class EncoderStudent(nn.Module):
    """The encoder's layers with a target-phone CTC head; `log_probs` gives the word decoder's input."""

    def __init__(self, encoder: PhoneEncoder, inventory: PhoneInventory) -> None:
        super().__init__()
        self.encoder = encoder
        self.inventory = inventory
        self.phones = [p for p in inventory.symbols if p != inventory.silence]
        self.head = nn.Linear(encoder.config.channels, len(self.phones) + 1)

    @classmethod
    def from_encoder(cls, loaded: LoadedEncoder, inventory: PhoneInventory) -> "EncoderStudent":
        student = cls(copy.deepcopy(loaded.model), inventory)
        weights = arpabet_weights(loaded.phones, list(inventory.symbols), inventory.silence)  # (1 + E, V)
        old = loaded.model.output
        with torch.no_grad():
            student.head.weight[0] = old.weight[0]
            student.head.bias[0] = old.bias[0]
            for j, phone in enumerate(student.phones, 1):
                source = int(np.argmax(weights[1:, inventory.index(phone)])) + 1
                student.head.weight[j] = old.weight[source]
                student.head.bias[j] = old.bias[source] - (0.0 if weights[source, inventory.index(phone)] else 5.0)
        return student

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, out_lengths = self.encoder.layers(mel, lengths)
        return self.head(self.encoder.final_norm(outputs[-1])), out_lengths

    def targets(self, phones: list[str]) -> list[int]:
        index = {p: i for i, p in enumerate(self.phones, 1)}
        return [index[p] for p in phones if p in index]

    @torch.no_grad()
    def log_probs(self, mel: np.ndarray) -> torch.Tensor:
        """(T', len(inventory)) log-probs of one standardised log-mel utterance, the blank's mass on silence."""
        self.eval()
        logits, _ = self(torch.from_numpy(mel)[None].to(self.head.weight.device), torch.tensor([len(mel)]))
        lp = logits[0].float().log_softmax(-1).cpu()
        out = torch.full((lp.shape[0], len(self.inventory)), -math.inf)
        out[:, self.inventory.index(self.inventory.silence)] = lp[:, 0]
        for j, phone in enumerate(self.phones, 1):
            out[:, self.inventory.index(phone)] = lp[:, j]
        return out

    @torch.no_grad()
    def greedy(self, mel: np.ndarray) -> list[str]:
        self.eval()
        logits, _ = self(torch.from_numpy(mel)[None].to(self.head.weight.device), torch.tensor([len(mel)]))
        path = torch.unique_consecutive(logits[0].argmax(-1)).tolist()
        return [self.phones[i - 1] for i in path if i > 0]


def trainable_modules(student: EncoderStudent, train_layers: int | None) -> list[nn.Module]:
    """The modules fine-tuning updates: the head, and the top `train_layers` blocks with the final norm."""
    if train_layers is None:
        return [student]
    if train_layers < 0:
        raise ValueError(f"train_layers must be >= 0 or None (all), got {train_layers}")
    if train_layers == 0:
        return [student.head]
    blocks = list(student.encoder.blocks)
    return [student.head, student.encoder.final_norm, *blocks[max(0, len(blocks) - train_layers):]]


def trained_parameters(student: EncoderStudent, train_layers: int | None) -> list[nn.Parameter]:
    """Freeze everything but `trainable_modules`; returns the parameters left to train."""
    student.requires_grad_(train_layers is None)
    for module in trainable_modules(student, train_layers):
        module.requires_grad_(True)
    return [q for q in student.parameters() if q.requires_grad]


def set_train_mode(student: EncoderStudent, train_layers: int | None) -> None:
    """Dropout on in the trained modules only: a frozen block gives the same features every epoch."""
    student.eval()
    for module in trainable_modules(student, train_layers):
        module.train()


def finetune(student: EncoderStudent, train: list[tuple[np.ndarray, list[str]]],
             valid: list[tuple[np.ndarray, list[str]]], config: EncoderStudentConfig,
             log=print) -> list[dict[str, float]]:
    """CTC fine-tuning on (standardised log-mel, pseudo-label phones) pairs; keeps the epoch with the lowest PER
    against the `valid` pseudo-labels. Returns each epoch's record."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    student.to(device)
    views = EncoderTrainConfig(out="")
    pairs = [(mel, student.targets(phones)) for mel, phones in train]
    pairs = [(mel, t) for mel, t in pairs if t and len(mel) >= 2 * len(t) + 2]
    trained = trained_parameters(student, config.train_layers)
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=0.01)
    lengths = np.array([len(mel) for mel, _ in pairs])

    def valid_per() -> float:
        hyps = [student.greedy(mel) for mel, _ in valid]
        return phone_error_rate([phones for _, phones in valid], hyps, ())

    best = (valid_per(), copy.deepcopy(student.state_dict()), 0)
    history = [{"epoch": 0, "valid_per": round(best[0], 5)}]
    log(f"epoch 0: valid PER against the pseudo-labels {best[0]:.1%}")
    for epoch in range(1, config.epochs + 1):
        set_train_mode(student, config.train_layers)
        start, total, count = time.time(), 0.0, 0
        for batch in length_batches(lengths, config.batch_frames, rng):
            mels = [torch.from_numpy(pairs[i][0].copy()) for i in batch]
            if config.augment:
                mels = [augment(m, views, rng) for m in mels]
            lens = torch.tensor([len(m) for m in mels])
            x = nn.utils.rnn.pad_sequence(mels, batch_first=True).to(device)
            logits, out_lengths = student(x, lens)
            targets = [pairs[i][1] for i in batch]
            loss = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1),
                              torch.tensor([p for t in targets for p in t]), out_lengths,
                              torch.tensor([len(t) for t in targets]), blank=0, reduction="sum", zero_infinity=True)
            optimizer.zero_grad(set_to_none=True)
            (loss / len(batch)).backward()
            nn.utils.clip_grad_norm_(trained, 5.0)
            optimizer.step()
            total += loss.item()
            count += sum(len(t) for t in targets)
        per = valid_per()
        history.append({"epoch": epoch, "train_loss_per_phone": round(total / max(count, 1), 5),
                        "valid_per": round(per, 5), "seconds": round(time.time() - start, 1)})
        log(" ".join(f"{k}={v}" for k, v in history[-1].items()))
        if per < best[0]:
            best = (per, copy.deepcopy(student.state_dict()), epoch)
    student.load_state_dict(best[1])
    student.eval()
    history.append({"best_epoch": best[2], "best_valid_per": round(best[0], 5)})
    return history
