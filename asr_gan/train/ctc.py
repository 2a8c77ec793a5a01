"""Supervised CTC phone training on stored features: the topline, and the student of self-training.

`python -m asr_gan.train.ctc` trains a `CTCPhoneModel` (asr_gan/models/ctc_model.py) on features with
reference (or pseudo) phone labels and reports greedy phone error rate (PER) on a validation set.

Examples:
  # topline: the GAN's generator architecture, trained with CTC on the same segment features
  python -m asr_gan.train.ctc --features exp/demo/feats/mfcc/segments/train --labels exp/demo/text/train.phn \
      --phones exp/demo/text/phones.txt --valid-features exp/demo/feats/mfcc/segments/dev \
      --valid-labels exp/demo/text/dev.phn --out exp/demo/topline --model generator
  # a frame-level BiLSTM
  python -m asr_gan.train.ctc ... --features exp/demo/feats/mfcc/train --model bilstm --out exp/demo/topline_bilstm

Outputs in --out: config.yaml, metrics.jsonl (one line per epoch), checkpoint_last.pt, checkpoint_best.pt
(lowest valid PER), result.json.

Labels and batches: asr_gan/train/ctc_data.py; greedy transcripts and PER: asr_gan/train/ctc_outputs.py.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from tqdm import tqdm

from asr_gan.models.ctc_model import MODEL_KINDS, CTCPhoneModel
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_data import (
    LabelledSet,
    feature_statistics,
    length_batches,
    load_labelled,
    pad_batch,
    write_phone_labels,
)
from asr_gan.train.ctc_outputs import ctc_logits, evaluate_per, transcribe


@dataclass
class CTCTrainConfig:
    """Settings of one CTC training run (printed at start, saved as `config.yaml`)."""

    features: str = ""
    labels: str = ""
    phones: str = ""
    out: str = ""
    valid_features: str | None = None
    valid_labels: str | None = None
    model: str = "bilstm"
    # Encoder settings passed to the model constructor (hidden_dim, num_layers, ... ; see ctc_model.py).
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    # For --model generator: the GAN run's config.yaml, whose generator settings are reused.
    gan_config: str | None = None
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    # Padded frames per batch (B * T_max); bounds memory independently of utterance length.
    batch_frames: int = 20000
    # Repeat each output frame this many times before CTC: segment features (about one row per phone,
    # halved again by wav2vec-U's pooling) can have fewer rows than the reference has phones, which CTC
    # cannot align. 1 = off. Frame-level features (10 ms) never need it.
    upsample: int = 1
    seed: int = 1
    device: str = "auto"
    threads: int | None = None
    # bfloat16 autocast on CUDA only; CPU always trains in float32.
    amp: bool = True
    # After training, the best model's greedy hypotheses of these sets go to OUT/<name>_hyp.phn:
    # name -> (FeatureSet folder, reference labels).
    evals: dict[str, tuple[str, str]] = field(default_factory=dict)

    def validate(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ValueError(f"--model {self.model!r}: choose one of {MODEL_KINDS}")
        if self.upsample < 1:
            raise ValueError(f"--upsample must be >= 1, got {self.upsample}")
        if (self.valid_features is None) != (self.valid_labels is None):
            raise ValueError("give both --valid-features and --valid-labels, or neither")


# -------------------------------------------------------------------------------------------------- training


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def ctc_feasible(labels: Sequence[int], frames: int) -> bool:
    """CTC needs one frame per label plus a blank between each pair of equal neighbours."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return frames >= len(labels) + repeats


def generator_kwargs_from_gan_config(path: str | Path) -> dict[str, Any]:
    """Generator settings of a GAN run's `config.yaml` (its `generator` section, minus sizes set from data)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: GAN config not found (pass a GAN run's config.yaml)")
    config = yaml.safe_load(path.read_text()) or {}
    section = config.get("generator")
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no `generator:` section with the generator's settings")
    kwargs = {k: v for k, v in section.items() if k not in ("input_dim", "num_phones")}
    # One output per row, whatever the GAN's output conv padding: oracle segments, row labels and alignments map
    # CTC outputs back to rows, and wav2vec-U's extra output position is a detail of its GAN.
    if "conv_padding" in kwargs:
        kwargs["conv_padding"] = "same"
    return kwargs


@dataclass
class CTCTrainResult:
    best_valid_per: float | None
    best_epoch: int
    final_train_loss: float
    skipped: dict[str, dict[str, int]]
    checkpoint: str | None
    model: CTCPhoneModel = field(repr=False)


def save_checkpoint(path: Path, model: CTCPhoneModel, inventory: PhoneInventory, config: CTCTrainConfig,
                    epoch: int, valid_per: float | None) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.describe(), "state_dict": model.state_dict(), "phones": inventory.symbols,
                "silence": inventory.silence, "config": asdict(config), "epoch": epoch, "valid_per": valid_per}, tmp)
    tmp.replace(path)  # a crash while saving keeps the previous checkpoint


def load_ctc_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                        ) -> tuple[CTCPhoneModel, PhoneInventory, dict[str, Any]]:
    """Rebuild a trained model; returns (model in eval mode, its phone inventory, the checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CTC checkpoint not found (train one with `python -m asr_gan.train.ctc`)")
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    model = CTCPhoneModel.from_description(checkpoint["model"])
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device).eval()
    return model, PhoneInventory(checkpoint["phones"], checkpoint["silence"]), checkpoint


def train_ctc(config: CTCTrainConfig, train: LabelledSet, inventory: PhoneInventory,
              valid: LabelledSet | None = None, out: str | Path | None = None, progress: bool = True,
              log_prefix: str = "[ctc]") -> CTCTrainResult:
    """Train a CTC phone model; keeps the epoch with the lowest valid PER (or train loss without valid).

    Writes checkpoints and metrics.jsonl under `out` when given; otherwise trains in memory only.
    """
    config.validate()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = pick_device(config.device)
    input_dim = train.frames(0).shape[1]
    mean, std = feature_statistics(train.features, train.rows)
    encoder_kwargs = dict(config.encoder_kwargs)
    if config.model == "generator" and config.gan_config:
        encoder_kwargs = {**generator_kwargs_from_gan_config(config.gan_config), **encoder_kwargs}
    model = CTCPhoneModel(config.model, input_dim, len(inventory), encoder_kwargs, mean, std).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ctc_loss = torch.nn.CTCLoss(blank=model.blank, reduction="sum", zero_infinity=True)
    use_amp = config.amp and device.type == "cuda"

    out_dir = Path(out) if out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
        (out_dir / "metrics.jsonl").write_text("")
    lengths = [train.length(i) for i in range(len(train))]
    best_score, best_epoch, best_state, best_per = math.inf, 0, None, None
    train_loss = math.nan
    for epoch in range(1, config.epochs + 1):
        model.train()
        start = time.time()
        total_loss, total_labels, infeasible = 0.0, 0, 0
        batches = length_batches(lengths, config.batch_frames, shuffle=True, rng=rng)
        for batch in tqdm(batches, desc=f"{log_prefix} epoch {epoch}", disable=not progress, leave=False):
            x, mask = pad_batch([train.frames(i) for i in batch])
            targets = [train.labels[i] for i in batch]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits, out_lengths = ctc_logits(model, x.to(device), mask.to(device), config.upsample)
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, P + 1) as CTCLoss wants
            flat = torch.tensor([p for t in targets for p in t], dtype=torch.long)
            target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
            infeasible += sum(not ctc_feasible(t, int(n)) for t, n in zip(targets, out_lengths.tolist()))
            loss = ctc_loss(log_probs, flat.to(device), out_lengths.to(device), target_lengths.to(device))
            optimizer.zero_grad(set_to_none=True)
            (loss / len(batch)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total_loss += loss.item()
            total_labels += int(target_lengths.sum())
        train_loss = total_loss / max(total_labels, 1)
        record: dict[str, Any] = {"epoch": epoch, "train_loss_per_phone": round(train_loss, 5),
                                  "ctc_infeasible": infeasible, "seconds": round(time.time() - start, 2)}
        if valid is not None:
            record["valid_per"] = round(evaluate_per(model, valid, inventory, device, config.batch_frames,
                                                     config.upsample), 5)
        score = record.get("valid_per", train_loss)
        if score < best_score:
            best_score, best_epoch, best_per = score, epoch, record.get("valid_per")
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if out_dir:
                save_checkpoint(out_dir / "checkpoint_best.pt", model, inventory, config, epoch, best_per)
        if out_dir:
            save_checkpoint(out_dir / "checkpoint_last.pt", model, inventory, config, epoch, record.get("valid_per"))
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if progress:
            print(f"{log_prefix} " + " ".join(f"{k}={v}" for k, v in record.items()), flush=True)
        if epoch == 1 and infeasible > 0.05 * len(train):
            print(f"{log_prefix} warning: {infeasible} of {len(train)} utterances have fewer output frames than "
                  "CTC needs for their labels (they add no loss); raise --upsample", file=sys.stderr)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    checkpoint = str(out_dir / "checkpoint_best.pt") if out_dir else None
    result = CTCTrainResult(best_per, best_epoch, train_loss, {}, checkpoint, model)
    if out_dir:
        (out_dir / "result.json").write_text(json.dumps(
            {"best_valid_per": best_per, "best_epoch": best_epoch, "final_train_loss_per_phone": train_loss,
             "checkpoint": checkpoint}, indent=1))
    return result


# ------------------------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> CTCTrainConfig:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.train.ctc", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML with CTCTrainConfig fields; flags given here override it")
    parser.add_argument("--features", help="training FeatureSet folder (segments for the topline, frames otherwise)")
    parser.add_argument("--labels", help="training phone labels, `utt_id ph1 ph2 ...` per line")
    parser.add_argument("--phones", help="text/phones.txt")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--valid-features")
    parser.add_argument("--valid-labels")
    parser.add_argument("--model", choices=MODEL_KINDS)
    parser.add_argument("--gan-config", help="for --model generator: a GAN run's config.yaml (generator settings)")
    parser.add_argument("--hidden-dim", type=int, help="bilstm hidden size (encoder_kwargs.hidden_dim)")
    parser.add_argument("--num-layers", type=int, help="bilstm / conformer layers (encoder_kwargs.num_layers)")
    for name, kind in (("epochs", int), ("lr", float), ("batch-frames", int), ("upsample", int), ("seed", int),
                       ("threads", int), ("device", str)):
        parser.add_argument(f"--{name}", type=kind)
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA too")
    parser.add_argument("--eval", nargs="*", default=[], metavar="NAME=FEATURES:LABELS",
                        help="after training, write the best model's greedy hypotheses of these sets to "
                             "OUT/NAME_hyp.phn")
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        unknown = set(loaded) - {f.name for f in fields(CTCTrainConfig)}
        if unknown:
            parser.error(f"{args.config}: unknown settings {sorted(unknown)}")
        values.update(loaded)
    for f in fields(CTCTrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    encoder_kwargs = dict(values.get("encoder_kwargs") or {})
    if args.hidden_dim is not None:
        encoder_kwargs["hidden_dim"] = args.hidden_dim
    if args.num_layers is not None:
        encoder_kwargs["num_layers"] = args.num_layers
    values["encoder_kwargs"] = encoder_kwargs
    if args.no_amp:
        values["amp"] = False
    config = CTCTrainConfig(**values)
    for item in args.eval:
        name, sep, rest = item.partition("=")
        features, sep2, labels = rest.partition(":")
        if not (sep and sep2 and name and features and labels):
            parser.error(f"--eval {item!r}: expected NAME=FEATURES_DIR:LABELS_FILE")
        config.evals[name] = (features, labels)
    missing = [n for n in ("features", "labels", "phones", "out") if not getattr(config, n)]
    if missing:
        parser.error("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return config


def write_hypotheses(model: CTCPhoneModel, data: LabelledSet, inventory: PhoneInventory, config: CTCTrainConfig,
                     path: Path) -> None:
    """Greedy hypotheses of `data` as `utt_id ph ...` (silence removed), for `python -m asr_gan.scoring`."""
    device = next(model.parameters()).device
    hyps = transcribe(model, data.features, data.rows, device, config.batch_frames, config.upsample)
    write_phone_labels(path, {utt: [p for p in inventory.decode(h) if p != inventory.silence]
                              for utt, h in zip(data.utt_ids, hyps)})
    print(f"[ctc] wrote {len(hyps)} hypotheses to {path}")


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        config.validate()
    except ValueError as err:
        print(f"[ctc] error: {err}", file=sys.stderr)
        return 2
    if config.threads:
        torch.set_num_threads(config.threads)
    print("[ctc] config: " + json.dumps(asdict(config)), flush=True)
    try:
        inventory = PhoneInventory.load(config.phones)
        train = load_labelled(config.features, config.labels, inventory)
        valid = None
        if config.valid_features and config.valid_labels:
            valid = load_labelled(config.valid_features, config.valid_labels, inventory)
        result = train_ctc(config, train, inventory, valid, out=config.out)
        for name, (features, labels) in config.evals.items():
            write_hypotheses(result.model, load_labelled(features, labels, inventory), inventory, config,
                             Path(config.out) / f"{name}_hyp.phn")
    except (FileNotFoundError, ValueError) as err:
        print(f"[ctc] error: {err}", file=sys.stderr)
        return 1
    per = "n/a (no valid set)" if result.best_valid_per is None else f"{100 * result.best_valid_per:.2f}%"
    print(f"[ctc] done: best valid PER {per} at epoch {result.best_epoch}; checkpoint {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
