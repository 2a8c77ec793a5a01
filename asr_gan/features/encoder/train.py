"""Training the cross-lingual phone encoder with CTC on the spoken corpus of `corpus.py`.

Every utterance's log-mel frames are standardised on their own (as the frontend does at extraction). While
training, each one is warped along the mel axis by a random factor (a vocal-tract-length change: the voices
of other engines differ in formants more than espeak-ng's variants do) and masked in time and frequency
(SpecAugment), so the layers learn phones rather than the training voices. Held-out sentences of every
language give the encoder's own phone error rate, by greedy CTC decoding.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from asr_gan.edits import edit_counts
from asr_gan.features.encoder.checkpoint import save_encoder
from asr_gan.features.encoder.corpus import CorpusConfig, SpokenCorpus, build_corpus
from asr_gan.features.encoder.model import EncoderConfig, PhoneEncoder
from asr_gan.features.normalization import normalize_utterance


@dataclass
class EncoderTrainConfig:
    out: str
    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(out=""))
    model: EncoderConfig = field(default_factory=EncoderConfig)
    epochs: int = 6
    lr: float = 2e-3
    warmup_updates: int = 150
    batch_frames: int = 8_000  # log-mel frames per batch (80 s of audio)
    min_phone_count: int = 20  # phones rarer than this in the training sentences are left out of the targets
    warp: float = 0.12  # mel-axis warping factor drawn from [1 - warp, 1 + warp]
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bands: int = 10
    max_minutes: float = 0.0  # > 0: stop (and save) after this long, whatever the epoch
    seed: int = 1
    device: str = "auto"
    progress: bool = True


def phone_inventory(corpus: SpokenCorpus, min_count: int) -> list[str]:
    """Phones of the training sentences seen at least `min_count` times, most frequent first."""
    counts = Counter(p for phones, held in zip(corpus.phones, corpus.heldout) if not held for p in phones)
    return [phone for phone, n in counts.most_common() if n >= min_count]


def warp_mel(mel: torch.Tensor, factor: float) -> torch.Tensor:
    """(T, M) frames resampled along the mel axis: band m takes the value at m * factor (edge held)."""
    bands = mel.shape[1]
    position = (torch.arange(bands, dtype=mel.dtype) * factor).clamp(max=bands - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=bands - 1)
    frac = position - low
    return mel[:, low] * (1 - frac) + mel[:, high] * frac


def augment(mel: torch.Tensor, config: EncoderTrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """One training view of standardised frames (T, M): warped, then time- and frequency-masked to zero."""
    mel = warp_mel(mel, float(rng.uniform(1 - config.warp, 1 + config.warp)))
    frames, bands = mel.shape
    for _ in range(config.time_masks):
        width = int(rng.integers(0, config.time_mask_frames + 1))
        start = int(rng.integers(0, max(frames - width, 1)))
        mel[start:start + width] = 0.0
    for _ in range(config.freq_masks):
        width = int(rng.integers(0, config.freq_mask_bands + 1))
        start = int(rng.integers(0, max(bands - width, 1)))
        mel[:, start:start + width] = 0.0
    return mel


def length_batches(lengths: np.ndarray, batch_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices grouped by similar length, at most `batch_frames` padded frames each, in random order."""
    order = np.argsort(lengths + rng.uniform(0, 20, size=len(lengths)))
    batches, current = [], []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > batch_frames:
            batches.append(np.array(current))
            current = []
        current.append(index)
    if current:
        batches.append(np.array(current))
    rng.shuffle(batches)
    return batches


def _pad(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in frames])
    return torch.nn.utils.rnn.pad_sequence(frames, batch_first=True), lengths


def greedy_phones(logits: torch.Tensor, lengths: torch.Tensor, phones: list[str]) -> list[list[str]]:
    """Best path of CTC logits (B, T, P + 1): repeats merged, blanks removed."""
    best = logits.argmax(-1).cpu()
    decoded = []
    for row, length in zip(best, lengths.tolist()):
        path = torch.unique_consecutive(row[:length]).tolist()
        decoded.append([phones[i - 1] for i in path if i > 0])
    return decoded


@torch.no_grad()
def heldout_per(model: PhoneEncoder, frames: list[np.ndarray], refs: list[list[str]], languages: list[str],
                phones: list[str], device: torch.device) -> dict[str, float]:
    """PER (%) of greedy CTC decoding on held-out utterances, per language and over all ('all')."""
    model.eval()
    errors: Counter = Counter()
    totals: Counter = Counter()
    known = set(phones)
    for start in range(0, len(frames), 32):
        chunk = [torch.from_numpy(normalize_utterance(f.astype(np.float32))) for f in frames[start:start + 32]]
        mel, lengths = _pad(chunk)
        logits, out_lengths = model(mel.to(device), lengths.to(device))
        for hyp, ref, language in zip(greedy_phones(logits, out_lengths, phones), refs[start:start + 32],
                                      languages[start:start + 32]):
            ref = [p for p in ref if p in known]
            counts = edit_counts(ref, hyp)
            for key in (language, "all"):
                errors[key] += counts.substitutions + counts.deletions + counts.insertions
                totals[key] += len(ref)
    model.train()
    return {key: round(100.0 * errors[key] / max(totals[key], 1), 2) for key in totals}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_encoder(config: EncoderTrainConfig, command: str = "") -> dict:
    """Speak the corpus (once), train the encoder, write `<out>/encoder.pt`, `report.json`, `train_log.jsonl`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if not config.corpus.out:
        config.corpus.out = str(out / "corpus")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1), encoding="utf-8")
    print("[encoder] config: " + json.dumps(asdict(config)), flush=True)
    corpus = build_corpus(config.corpus)
    phones = phone_inventory(corpus, config.min_phone_count)
    index = {p: i + 1 for i, p in enumerate(phones)}
    train_ids = np.flatnonzero(~corpus.heldout)
    held_ids = np.flatnonzero(corpus.heldout)
    targets = [torch.tensor([index[p] for p in ph if p in index], dtype=torch.long) for ph in corpus.phones]
    standardised = [torch.from_numpy(normalize_utterance(f.astype(np.float32))) for f in corpus.frames]
    lengths = np.array([len(f) for f in corpus.frames])
    print(f"[encoder] {len(train_ids)} training and {len(held_ids)} held-out utterances "
          f"({lengths[train_ids].sum() / 360000:.2f} h of training audio), {len(phones)} phones: {' '.join(phones)}",
          flush=True)

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = _device(config.device)
    model = PhoneEncoder(EncoderConfig(**{**asdict(config.model), "num_phones": len(phones)})).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-2)
    per_epoch = len(length_batches(lengths[train_ids], config.batch_frames, np.random.default_rng(0)))
    total_updates = max(per_epoch * config.epochs, 1)

    def learning_rate(update: int) -> float:  # linear warm-up, then cosine decay to zero
        if update < config.warmup_updates:
            return config.lr * (update + 1) / config.warmup_updates
        progress = (update - config.warmup_updates) / max(total_updates - config.warmup_updates, 1)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    log = (out / "train_log.jsonl").open("w", encoding="utf-8")
    started, update, stopped_early = time.time(), 0, False
    held = ([corpus.frames[i] for i in held_ids], [corpus.phones[i] for i in held_ids],
            [corpus.languages[i] for i in held_ids])
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        batches = length_batches(lengths[train_ids], config.batch_frames, rng)
        for batch in tqdm(batches, desc=f"[encoder] epoch {epoch}/{config.epochs}", unit="batch",
                          disable=not config.progress, dynamic_ncols=True, leave=False):
            ids = train_ids[batch]
            mel, mel_lengths = _pad([augment(standardised[i].clone(), config, rng) for i in ids])
            logits, out_lengths = model(mel.to(device), mel_lengths.to(device))
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, P + 1)
            batch_targets = [targets[i] for i in ids]
            loss = F.ctc_loss(log_probs, torch.cat(batch_targets).to(device), out_lengths,
                              torch.tensor([len(t) for t in batch_targets]), blank=0, zero_infinity=True)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(update)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
            update += 1
            if config.max_minutes and time.time() - started > 60 * config.max_minutes:
                stopped_early = True
                break
        record = {"epoch": epoch, "updates": update, "ctc_loss": round(float(np.mean(losses)), 4),
                  "first_batch_loss": round(losses[0], 4), "minutes": round((time.time() - started) / 60, 2)}
        record["heldout_per"] = heldout_per(model, *held, phones, device)["all"] if len(held_ids) else None
        log.write(json.dumps(record) + "\n")
        log.flush()
        print(f"[encoder] epoch {epoch}: " + " ".join(f"{k}={v}" for k, v in record.items() if k != "epoch"),
              flush=True)
        if stopped_early:
            print(f"[encoder] stopped after {config.max_minutes} minutes (--max-minutes)", flush=True)
            break
    log.close()
    minutes = (time.time() - started) / 60
    per = heldout_per(model, *held, phones, device) if len(held_ids) else {}
    report = {"languages": list(config.corpus.languages), "phones": len(phones), "seed": config.seed,
              "training_utterances": int(len(train_ids)), "heldout_utterances": int(len(held_ids)),
              "training_hours": round(float(lengths[train_ids].sum()) / 360000, 3), "epochs_run": epoch,
              "updates": update, "training_minutes": round(minutes, 2), "device": str(device),
              "threads": torch.get_num_threads(), "heldout_per": per, "command": command,
              "parameters": sum(p.numel() for p in model.parameters())}
    save_encoder(out / "encoder.pt", model.cpu(), phones, report)
    report["checkpoint_bytes"] = (out / "encoder.pt").stat().st_size
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print("[encoder] " + json.dumps(report, ensure_ascii=False), flush=True)
    return report
