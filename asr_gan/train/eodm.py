"""EODM: the generator learns to match the unpaired text's phone N-gram frequencies, with no discriminator.

Empirical output distribution matching (Yeh et al. 2019, "Unsupervised speech recognition via segmental
empirical output distribution matching", ICLR 2019). With p_t = softmax(generator logits) at segment t and a phone
drawn independently at every segment, the loss of each order N = 1..max_order is, over the text's top_k N-grams z,

    KL(P_text || P_model) = sum_z P_text(z) (log P_text(z) - log P_model(z))

(the cross-entropy less the text's entropy: its gradient, and 0 at a match), P_model(z) being the expected count
of z over the expected number of N-grams. The expectation is over the corpus, not a minibatch (the paper's point):
every update reads all training utterances (or `batch_utterances`), in chunks of at most `chunk_positions` padded
positions; a first pass sums the chunks' counts without gradients, a second backpropagates each chunk's counts
times d(loss)/d(sums): the exact full-corpus gradient in bounded memory.

Repeats: consecutive pooled segments often hold one phone; both sides are counted as run-merged sequences, the
outputs by the expected counts of their merged sequence (asr_gan/train/eodm_counts.py says how, and why).

Search (docs/eodm.md has the measurements). From PyTorch's initial weights each seed ends in its own local
minimum, mostly far from the reading. Here the output conv starts near zero (`output_init_scale`: every segment
near the uniform distribution), and the entropy term (mean entropy of p_t) is annealed from `entropy_start`
(negative: soft outputs pay less) to `entropy` over `anneal_steps` updates, so phones commit only once the
statistics have placed them (deterministic annealing); the run then follows the corpus, not the seed.
`smoothness` (default 0) is the mean squared difference of neighbouring segments' distributions, the paper's
intra-segment frame self-reinforcement moved to pooled segments: the merged counts already let a phone span
segments, and it also pulls distinct neighbours together. The generator defaults to kernel 1 (one segment in,
its phone out): with context it can write text-like output that matches the statistics better than the truth.

Outputs in --out as a GAN run's (config.yaml, metrics.jsonl, checkpoint_last.pt, checkpoint_best.pt: lowest
weighted_lm_ppl, valid PER only reported; result.json), checkpoints in the GAN's format for load_generator and the
bundle tools. A rerun resumes from checkpoint_last.pt; as draws come from (seed, update), it ends as one run would.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from asr_gan.models.generator import Generator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import read_checkpoint, save_checkpoint
from asr_gan.train.config import GeneratorConfig, load_config, set_value
from asr_gan.train.ctc_data import read_phone_labels
from asr_gan.train.data import SequenceBank, feature_statistics, load_feature_sequences, read_phone_text
from asr_gan.train.eodm_counts import NgramTarget, expected_ngram_counts, expected_ngram_total, text_ngram_targets
from asr_gan.train.gan import TrainingDiverged
from asr_gan.train.gan_eval import label_free_record

MAX_ORDER = 5


@dataclass
class EodmConfig:
    """One EODM run. Paths as in a GAN config (docs/DESIGN.md); `generator` is the GAN's generator section."""

    features: str = ""
    text: str = ""
    phones: str = ""
    phone_lm: str = ""
    valid_features: str | None = None
    valid_labels: str | None = None  # references: valid PER is logged, never used to select
    max_order: int = 3
    top_k: int = 10000  # most frequent N-grams kept per order
    order_weights: list[float] = field(default_factory=list)  # weight of order 1..max_order; empty: 1 each
    smoothness: float = 0.0
    entropy: float = 0.0  # the entropy term's weight after annealing
    entropy_start: float = -2.0  # ... and before (module docstring, "Search")
    anneal_steps: int = 400
    output_init_scale: float = 0.01  # the output conv's initial weights times this: a near-uniform start
    steps: int = 600
    lr: float = 1e-2  # Adam; measured on the toy task (docs/eodm.md)
    batch_utterances: int = 0  # utterances per update; 0 = the whole training set (full-batch EODM)
    chunk_positions: int = 4096  # padded positions per forward pass: bounds memory (x top_k x max_order)
    valid_interval: int = 100
    log_interval: int = 20
    seed: int = 1
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(kernel_size=1))

    def validate(self) -> None:
        if missing := [n for n in ("features", "text", "phones") if not getattr(self, n)]:
            raise ValueError(f"EODM needs {', '.join('--' + m for m in missing)}")
        if self.valid_features and not self.phone_lm:
            raise ValueError("--valid-features needs --phone-lm: label-free selection scores outputs with it")
        if not 1 <= self.max_order <= MAX_ORDER:
            raise ValueError(f"max_order {self.max_order}: expected 1 to {MAX_ORDER}")
        if self.order_weights and len(self.order_weights) != self.max_order:
            raise ValueError(f"order_weights {self.order_weights}: need one weight per order 1..{self.max_order}")
        if min(self.top_k, self.chunk_positions, self.valid_interval, self.log_interval) < 1 or self.steps < 0:
            raise ValueError("top_k, chunk_positions, valid_interval and log_interval must be >= 1, steps >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device {self.device!r}: expected auto, cpu or cuda")


class EodmTrainer:
    """Data, generator and Adam of one run; `train()` runs it to `config.steps` updates."""

    def __init__(self, config: EodmConfig, out: str | Path) -> None:
        config.validate()
        self.config, self.out = config, Path(out)
        if config.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is visible (use --device auto or cpu)")
        cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        self.device = torch.device("cuda" if cuda else "cpu")
        self.inventory = PhoneInventory.load(config.phones)
        sequences, _ = load_feature_sequences(config.features)
        self.train_bank = SequenceBank(sequences, self.device)
        text = read_phone_text(config.text, self.inventory)
        self.targets = [NgramTarget(t.ngrams.to(self.device), t.probs.to(self.device), t.kept_share) for t in
                        text_ngram_targets(text, len(self.inventory), config.max_order, config.top_k)]
        self.weights = config.order_weights or [1.0] * config.max_order
        self.valid_bank: SequenceBank | None = None
        self.valid_ids: list[str] = []
        self.valid_refs: dict[str, list[str]] | None = None
        self.lm: Any = None  # asr_gan.text.lm.NgramLM, imported only with a validation set (kenlm)
        if config.valid_features:
            from asr_gan.text.lm import NgramLM

            valid, self.valid_ids = load_feature_sequences(config.valid_features)
            self.valid_bank, self.lm = SequenceBank(valid, self.device), NgramLM(config.phone_lm)
            if config.valid_labels:
                self.valid_refs = read_phone_labels(config.valid_labels)
        torch.manual_seed(config.seed)
        self.generator_kwargs = {"input_dim": sequences[0].shape[1], "num_phones": len(self.inventory),
                                 **asdict(config.generator)}
        self.generator = Generator(**self.generator_kwargs).to(self.device)
        self.generator.set_feature_statistics(*feature_statistics(self.train_bank))
        with torch.no_grad():
            self.generator.output.weight.mul_(config.output_init_scale)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr)
        self.step, self.best_metric, self.best_step = 0, math.inf, None

    def _chunks(self) -> list[np.ndarray]:
        """This update's utterances, longest first, in chunks of at most chunk_positions padded positions."""
        index = np.arange(len(self.train_bank))
        if 0 < self.config.batch_utterances < len(index):
            rng = np.random.default_rng([self.config.seed, self.step])
            index = rng.choice(len(index), self.config.batch_utterances, replace=False)
        index = index[np.argsort(-self.train_bank.lengths[index], kind="stable")]
        chunks, start = [], 0
        while start < len(index):
            width = int(self.train_bank.lengths[index[start]])
            size = max(1, self.config.chunk_positions // max(width, 1))
            chunks.append(index[start:start + size])
            start += size
        return chunks

    def _chunk_sums(self, index: np.ndarray, chunk: int) -> dict[str, torch.Tensor]:
        """Additive statistics of one chunk: expected N-gram counts and totals, regulariser sums."""
        torch.manual_seed(self.config.seed * 1_000_003 + self.step * 1009 + chunk)  # the same dropout both passes
        x, mask = self.train_bank.gather(index)
        logits, out_mask = self.generator(x, mask)
        probs = logits.float().softmax(-1).masked_fill(out_mask.unsqueeze(-1), 0.0)
        sums = {}
        for order, target in enumerate(self.targets, 1):
            sums[f"count{order}"] = expected_ngram_counts(probs, target.ngrams)
            sums[f"total{order}"] = expected_ngram_total(probs, out_mask, order)
        pairs = (~out_mask[:, 1:]).unsqueeze(-1)
        sums["smoothness"] = ((probs[:, 1:] - probs[:, :-1]) ** 2 * pairs).sum()
        sums["pairs"] = pairs.sum().float()
        sums["entropy"] = -(probs * torch.log(probs + 1e-8)).sum()
        sums["positions"] = (~out_mask).sum().float()
        return sums

    def _loss(self, sums: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logged: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for order, (target, weight) in enumerate(zip(self.targets, self.weights), 1):
            model = sums[f"count{order}"] / sums[f"total{order}"].clamp(min=1e-6)
            kl = (target.probs * (torch.log(target.probs) - torch.log(model + 1e-8))).sum()
            logged[f"eodm_kl{order}"] = kl
            total = total + weight * kl
        logged["smoothness"] = sums["smoothness"] / sums["pairs"].clamp(min=1.0)
        logged["entropy"] = sums["entropy"] / sums["positions"].clamp(min=1.0)
        config = self.config
        share = min(self.step / config.anneal_steps, 1.0) if config.anneal_steps > 0 else 1.0
        entropy_weight = config.entropy_start + share * (config.entropy - config.entropy_start)
        total = total + config.smoothness * logged["smoothness"] + entropy_weight * logged["entropy"]
        logged["loss"] = total
        return total, logged

    def update(self) -> dict[str, float]:
        """One full-corpus (or batch_utterances) update; returns the logged values."""
        self.generator.train()
        self.optimizer.zero_grad(set_to_none=True)
        chunks = self._chunks()
        if len(chunks) == 1:
            loss, logged = self._loss(self._chunk_sums(chunks[0], 0))
            loss.backward()
        else:
            with torch.no_grad():
                parts = [self._chunk_sums(index, i) for i, index in enumerate(chunks)]
            sums = {k: torch.stack([p[k] for p in parts]).sum(0).requires_grad_() for k in parts[0]}
            loss, logged = self._loss(sums)
            loss.backward()
            for i, index in enumerate(chunks):
                part = self._chunk_sums(index, i)
                sum((part[k] * sums[k].grad).sum() for k in part if sums[k].grad is not None).backward()
        values = {k: float(v.detach()) for k, v in logged.items()}
        if not math.isfinite(values["loss"]):
            raise TrainingDiverged(f"non-finite EODM loss at update {self.step}: lower --lr")
        self.optimizer.step()
        self.step += 1
        return values

    def validate(self) -> dict[str, Any]:
        """Label-free metric of the current generator's greedy output (and PER when references were given)."""
        return label_free_record(self.step, self.generator, self.valid_bank, self.inventory, self.lm, self.valid_ids,
                                 self.valid_refs)

    def state(self) -> dict[str, Any]:
        return {"trainer": "eodm", "generator_kwargs": self.generator_kwargs, "generator": self.generator.state_dict(),
                "phones": self.inventory.symbols, "silence": self.inventory.silence, "config": asdict(self.config),
                "step": self.step, "best_metric": self.best_metric, "best_step": self.best_step,
                "optimizers": {"generator": self.optimizer.state_dict()}}

    def resume(self, path: Path) -> None:
        state = read_checkpoint(path, self.device)
        if state.get("trainer") != "eodm" or state["generator_kwargs"] != self.generator_kwargs:
            raise ValueError(f"{path}: not an EODM run with this generator ({self.generator_kwargs}); "
                             "use a new --out folder for a new run")
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizers"]["generator"])
        self.step, self.best_metric, self.best_step = state["step"], state["best_metric"], state["best_step"]
        metrics = self.out / "metrics.jsonl"
        if metrics.is_file():  # drop what was written after the checkpoint, as an uninterrupted run has it
            kept = [line for line in metrics.read_text().splitlines() if line.endswith("}")  # not cut by a kill
                    and json.loads(line)["step"] <= self.step]
            metrics.write_text("".join(line + "\n" for line in kept))

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def train(self) -> dict[str, Any]:
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
        if (self.out / "checkpoint_last.pt").is_file():
            self.resume(self.out / "checkpoint_last.pt")
            print(f"[eodm] resumed from {self.out / 'checkpoint_last.pt'} at update {self.step}", flush=True)
        else:
            (self.out / "metrics.jsonl").write_text("")
        kept = ", ".join(f"{len(t.probs)} {n}-grams ({100 * t.kept_share:.1f}%)" for n, t in enumerate(self.targets, 1))
        print(f"[eodm] device {self.device}; {len(self._chunks())} chunks per update; matching the text's {kept}")
        bar = tqdm(total=config.steps, initial=self.step, desc="[eodm] updates", unit="upd",
                   disable=not config.progress, dynamic_ncols=True)
        while self.step < config.steps:
            values = self.update()
            bar.update(1)
            if self.step % config.log_interval == 0 or self.step == config.steps:
                self._write({"step": self.step, **{k: round(v, 5) for k, v in values.items()}})
                bar.set_postfix(loss=f"{values['loss']:.4f}")
            if self.step % config.valid_interval == 0 or self.step == config.steps:
                record = self.validate()
                self._write(record)
                metric = record.get("weighted_lm_ppl")
                improved = metric is not None and metric < self.best_metric
                if improved:
                    self.best_metric, self.best_step = metric, self.step
                if improved or self.valid_bank is None:
                    save_checkpoint(self.out / "checkpoint_best.pt", self.state())
                save_checkpoint(self.out / "checkpoint_last.pt", self.state())
                shown = " ".join(f"{k}={record[k]}" for k in ("weighted_lm_ppl", "vocab_usage", "valid_per")
                                 if k in record)
                bar.write(f"[eodm] update {self.step}: loss={values['loss']:.4f} {shown}" + (" (best)" * improved))
        bar.close()
        summary = {"steps": self.step, "best_metric": self.best_metric, "best_step": self.best_step,
                   **{f"checkpoint_{k}": str(self.out / f"checkpoint_{k}.pt") for k in ("best", "last")}}
        (self.out / "result.json").write_text(json.dumps(summary, indent=1))
        return summary


FLAGS = {"features": str, "valid_features": str, "valid_labels": str, "phones": str, "text": str, "phone_lm": str,
         "top_k": int, "steps": int, "lr": float, "seed": int, "smoothness": float, "entropy": float,
         "entropy_start": float, "anneal_steps": int, "output_init_scale": float,
         "batch_utterances": int, "chunk_positions": int, "valid_interval": int, "log_interval": int,
         "device": str, "threads": int}


def parse_config(argv: list[str] | None = None) -> tuple[EodmConfig, Path]:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.train.eodm", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="run folder (resumed when it holds checkpoint_last.pt)")
    parser.add_argument("--gan-config", help="a GAN config (gan.yaml): its data paths")
    parser.add_argument("--order", dest="max_order", type=int, help=f"highest N-gram order, 1-{MAX_ORDER} (default 3)")
    parser.add_argument("--order-weights", type=float, nargs="+", help="one weight per order (default 1 each)")
    for name, kind in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="e.g. generator.kernel_size=3")
    args = parser.parse_args(argv)
    config = EodmConfig()
    if args.gan_config:
        gan = load_config(args.gan_config)
        for name in ("features", "text", "phones", "phone_lm", "valid_features", "valid_labels"):
            setattr(config, name, getattr(gan, name))
    for name in [*FLAGS, "max_order", "order_weights"]:
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.progress = not args.no_progress
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected key=value")
        set_value(config, key.strip(), yaml.safe_load(text), "--set")  # type: ignore[arg-type]
    return config, args.out


def main(argv: list[str] | None = None) -> int:
    try:
        config, out = parse_config(argv)
        config.validate()
        print("[eodm] config:\n" + yaml.safe_dump(asdict(config), sort_keys=False), flush=True)
        if config.threads:
            torch.set_num_threads(config.threads)
        summary = EodmTrainer(config, out).train()
    except TrainingDiverged as err:
        print(f"[eodm] diverged: {err}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as err:
        print(f"[eodm] error: {err}", file=sys.stderr)
        return 1
    print("[eodm] done: " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
