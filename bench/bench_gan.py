"""GAN training speed: updates per second of the real training loop (asr_gan/train/gan.py) on random data
shaped like wav2vec-U's TIMIT/LibriSpeech input: 512-dim PCA segment features, ~40 phones + <SIL>,
batch 160, one-conv generator (wav2vec-U size), alternating D and G updates (each counts one update).

    python bench/bench_gan.py [--device cuda] [--updates 2000] [--variant baseline|cycle|deep] [--graphs on off]
                              [--profile]

Target (issue 4): >= 250 updates/s on one H100 for the wav2vec-U-size baseline at batch 160.
Nothing is read from or written to a corpus: the data are random sequences written to a temporary folder.
No validation runs inside the timed updates, so no phone LM is built (the trainer loads one only for
validation). `--profile` adds a torch.profiler table of the baseline's costliest operations (run with the
last `--graphs` value). Results measured so far: bench/results/.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from asr_gan.features.storage import FeatureSetWriter
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
    return {"features": str(folder / "train"), "text": str(folder / "text.phn"), "phones": str(folder / "phones.txt")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=160)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--phones", type=int, default=40)
    parser.add_argument("--utterances", type=int, default=3000)
    parser.add_argument("--variant", choices=sorted(VARIANTS), nargs="+", default=["baseline", "cycle", "deep"])
    parser.add_argument("--graphs", choices=["on", "off"], nargs="+", default=["on"],
                        help="config cuda_graphs: each update replayed as a captured CUDA graph, or launched eagerly")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_data(Path(tmp), args.utterances, args.dim, args.phones)
        print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}), "
              f"batch {args.batch_size}, {args.dim}-dim input, {args.phones + 1} outputs")
        for variant in args.variant:
            for graphs in args.graphs:
                rate = time_training(paths, Path(tmp) / f"{variant}_{graphs}", VARIANTS[variant], graphs, args)
                print(f"{variant:9s} cuda_graphs={graphs:3s} {rate:8.1f} updates/s  "
                      f"({150_000 / rate / 60:.1f} min for wav2vec-U's 150k updates)", flush=True)
        if args.profile:
            profile(paths, Path(tmp) / "profile", args)


def make_trainer(paths: dict[str, str], out: Path, overrides: dict, graphs: str, args: argparse.Namespace,
                 max_updates: int) -> GanTrainer:
    config = config_from_dict({**paths, **overrides, "batch_size": args.batch_size, "device": args.device,
                               "max_updates": max_updates, "log_interval": args.updates, "cuda_graphs": graphs == "on",
                               "valid_interval": 10**9, "tensorboard": False, "progress": False})
    return GanTrainer(config, out)


def time_training(paths: dict[str, str], out: Path, overrides: dict, graphs: str, args: argparse.Namespace) -> float:
    """Updates/s of GanTrainer.train() itself (batches, updates, loss bookkeeping), read from its second log
    line: the first `--updates` updates warm up (allocator, cuDNN algorithm choice), the next are timed."""
    trainer = make_trainer(paths, out, overrides, graphs, args, max_updates=2 * args.updates)
    trainer.train()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if r.get("step") == 2 * args.updates and "updates_per_second" in r]
    return float(timed[0]["updates_per_second"])


def profile(paths: dict[str, str], out: Path, args: argparse.Namespace) -> None:
    """The baseline's costliest operations over 200 updates, and its kernel launches per update."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    trainer = make_trainer(paths, out, {}, args.graphs[-1], args, max_updates=10**9)
    for step in range(20):
        (trainer.discriminator_update if step % 2 == 0 else trainer.generator_update)()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for step in range(200):
            (trainer.discriminator_update if step % 2 == 0 else trainer.generator_update)()
        if args.device == "cuda":
            torch.cuda.synchronize()
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=30))
    if args.device == "cuda":
        print(table.table(sort_by="self_cuda_time_total", row_limit=20))
        launches = sum(e.count for e in table if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
        print(f"kernel launches per update: {launches / 200:.0f}")


if __name__ == "__main__":
    main()
