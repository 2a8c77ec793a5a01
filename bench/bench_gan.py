"""GAN training speed: updates per second of the real training loop (asr_gan/train/gan.py) on random data
shaped like wav2vec-U's TIMIT/LibriSpeech input: 512-dim PCA segment features, ~40 phones + <SIL>,
batch 160, one-conv generator (wav2vec-U size), alternating D and G updates (each counts one update).

    python bench/bench_gan.py [--device cuda] [--updates 2000] [--variant baseline|cycle|deep]

Target (issue 4): >= 250 updates/s on one H100 for the wav2vec-U-size baseline at batch 160.
Nothing is read from or written to a corpus: the data are random sequences written to a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asr_gan.features.storage import FeatureSetWriter
from asr_gan.text.lm import build_lm
from asr_gan.text.phones import SILENCE, PhoneInventory
from asr_gan.train.config import config_from_dict
from asr_gan.train.gan import GanTrainer

VARIANTS = {
    "baseline": {},
    "cycle": {"loss": {"cycle_audio": 1.0, "cycle_text": 1.0}},
    "deep": {"generator": {"hidden_layers": 2, "hidden_dim": 384}, "loss": {"cycle_audio": 1.0}},
}


def make_data(folder: Path, utterances: int, dim: int, phones: int, seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    inventory = PhoneInventory([f"p{i}" for i in range(phones)] + [SILENCE])
    inventory.save(folder / "phones.txt")
    with FeatureSetWriter(folder / "train", dim=dim) as writer:
        for n in range(utterances):
            # TIMIT: ~3 s utterances, ~35 phones, k-means segments pooled to ~1-2 per phone
            writer.add(f"u{n}", rng.standard_normal((int(rng.integers(40, 120)), dim)).astype(np.float32))
    lines = [" ".join(inventory.symbols[i] for i in rng.integers(0, phones + 1, int(rng.integers(15, 45))))
             for _ in range(5000)]
    (folder / "text.phn").write_text("\n".join(lines) + "\n")
    build_lm(folder / "text.phn", folder / "lm.arpa", order=3, bin_path=folder / "lm.bin")
    return {"features": str(folder / "train"), "text": str(folder / "text.phn"), "phones": str(folder / "phones.txt"),
            "phone_lm": str(folder / "lm.bin")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=160)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--phones", type=int, default=40)
    parser.add_argument("--utterances", type=int, default=3000)
    parser.add_argument("--variant", choices=sorted(VARIANTS), nargs="+", default=["baseline", "cycle", "deep"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_data(Path(tmp), args.utterances, args.dim, args.phones)
        print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}), "
              f"batch {args.batch_size}, {args.dim}-dim input, {args.phones + 1} outputs")
        for variant in args.variant:
            config = config_from_dict({**paths, **VARIANTS[variant], "batch_size": args.batch_size,
                                       "device": args.device, "max_updates": args.warmup + args.updates,
                                       "valid_interval": 10**9, "log_interval": 10**9, "tensorboard": False,
                                       "progress": False})
            trainer = GanTrainer(config, Path(tmp) / variant)
            for step in range(args.warmup):
                (trainer.discriminator_update if step % 2 == 0 else trainer.generator_update)()
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for step in range(args.updates):
                (trainer.discriminator_update if step % 2 == 0 else trainer.generator_update)()
            if args.device == "cuda":
                torch.cuda.synchronize()
            rate = args.updates / (time.perf_counter() - start)
            print(f"{variant:9s} {rate:8.1f} updates/s  ({150_000 / rate / 60:.1f} min for wav2vec-U's 150k updates)")


if __name__ == "__main__":
    main()
