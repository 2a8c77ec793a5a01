"""Time of EODM's expected N-gram counts (asr_gan/train/eodm_counts.py), forward and backward, on one chunk of
random phone distributions: the part of an EODM update that grows with the order and the kept N-grams.

    python bench/bench_eodm.py [--positions 4096 --length 100 --phones 40 --device cpu --threads 1]

The N-grams are drawn at random (no two neighbours equal); a text's N-grams share more prefixes than random ones.
An EODM update makes, per chunk, one forward pass without gradients and one such forward + backward.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from asr_gan.train.eodm_counts import expected_ngram_counts

CASES = ((1, 40), (2, 1263), (3, 2000), (3, 10000), (4, 10000), (5, 10000))


def random_ngrams(order: int, count: int, phones: int, seed: int = 0) -> torch.Tensor:
    """`count` distinct N-grams of `order` phone ids with no two neighbours equal."""
    generator = torch.Generator().manual_seed(seed + order)
    kept: set[tuple[int, ...]] = set()
    while len(kept) < count:
        first = torch.randint(0, phones, (1,), generator=generator)
        steps = torch.randint(1, phones, (order - 1,), generator=generator)  # never 0: neighbours differ
        kept.add(tuple(((torch.cat([first, steps]).cumsum(0)) % phones).tolist()))
    return torch.tensor(sorted(kept))


def time_counts(ngrams: torch.Tensor, batch: int, length: int, phones: int, device: str, repeats: int) -> float:
    """Median seconds of one forward + backward of the expected counts."""
    logits = torch.randn(batch, length, phones, device=device, requires_grad=True)
    ngrams = ngrams.to(device)
    times = []
    for _ in range(repeats + 1):  # the first pass warms up
        start = time.perf_counter()
        expected_ngram_counts(logits.softmax(-1), ngrams).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=4096, help="padded positions per chunk (EODM's default)")
    parser.add_argument("--length", type=int, default=100, help="positions per utterance")
    parser.add_argument("--phones", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch = max(1, args.positions // args.length)
    print(f"{batch} x {args.length} positions, {args.phones} phones, {args.device}, {args.threads} thread(s)")
    print("| order | N-grams | distinct prefixes | seconds (forward + backward) |")
    print("|---:|---:|---:|---:|")
    for order, count in CASES:
        ngrams = random_ngrams(order, count, args.phones)
        prefixes = len(torch.unique(ngrams[:, :-1], dim=0)) if order > 1 else 0
        seconds = time_counts(ngrams, batch, args.length, args.phones, args.device, args.repeats)
        print(f"| {order} | {count} | {prefixes} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
