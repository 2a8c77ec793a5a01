"""A GAN generator's phone for every feature row, as a `.segments` file (`utt ph ...`, one phone per row).

The file is what `python -m asr_gan.lab.decipher --start-labels` and `python -m asr_gan.lab.alternate`
start from: a label-free reading of the rows to refine, not a transcription. The generator must keep one
output per row (no stride); the phone of a row is its argmax, silence included.

The rows may be other segments than the run trained on (e.g. the k-means runs unpooled, `fit-transform
--no-pool`, read by a generator trained on the pooled ones) of the same feature dimension; the generator
standardises them with the statistics of the rows it trained on.

`--pairs` reads unpooled rows the way a generator trained on wav2vec-U's pooled segments saw them: it pools
adjacent pairs of rows (`fit-transform --pool` with the same clusters and seed does exactly this to the same
k-means runs), reads the pairs, and gives both rows of a pair the pair's phone. The reading is then the run's
own, carried to the rows, not what the generator makes of rows at twice the rate it trained on
(docs/gan_investigation.md, "Alternating a decipherment and a student").

CLI: python -m asr_gan.lab.row_labels --checkpoint exp/gan/checkpoint_best.pt --features exp/feats/segments/train
        --out exp/rows/gan.segments [--pairs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.features.segmentation import pool_pairs
from asr_gan.train.checkpoint import load_generator
from asr_gan.train.ctc_data import load_feature_set, write_phone_labels


def generator_row_labels(checkpoint: str | Path, features_dir: str | Path, progress: bool = True,
                         pairs: bool = False) -> tuple[dict[str, list[str]], list[str]]:
    """(utt -> one phone per row, problems): utterances without rows are reported and left out. `pairs`: the
    generator reads the rows pooled in adjacent pairs, and both rows of a pair take its phone."""
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{checkpoint}: GAN checkpoint not found")
    generator, inventory = load_generator(checkpoint)
    features = load_feature_set(features_dir)
    labels: dict[str, list[str]] = {}
    problems: list[str] = []
    with torch.no_grad():
        for i in tqdm(range(len(features)), desc="[row_labels]", disable=not progress, leave=False):
            utt_id = features.utt_ids[i]
            rows = np.array(features[i], dtype=np.float32)  # a writable copy of the stored rows
            if len(rows) == 0:
                problems.append(f"{features_dir}: {utt_id}: no rows; skipped")
                continue
            if rows.shape[1] != generator.input_dim:
                raise ValueError(f"{features_dir}: {rows.shape[1]}-dim rows; the generator of {checkpoint} reads "
                                 f"{generator.input_dim}")
            read = pool_pairs(rows) if pairs else rows
            logits, _ = generator(torch.from_numpy(read)[None], torch.zeros(1, len(read), dtype=torch.bool))
            if logits.shape[1] < len(read) or generator.stride != 1:
                raise ValueError(f"{checkpoint}: {logits.shape[1]} outputs for the {len(read)} rows of {utt_id}; "
                                 "row labels need a generator with one output per row (no stride)")
            # Output t is row t's; wav2vec-U's padding adds one output after the last row (models/generator.py).
            phones = inventory.decode(logits[0, :len(read)].argmax(-1).tolist())
            labels[utt_id] = [phones[i // 2] for i in range(len(rows))] if pairs else phones
    return labels, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.row_labels", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a GAN run's checkpoint (checkpoint_best.pt)")
    parser.add_argument("--features", required=True, help="FeatureSet whose rows to label")
    parser.add_argument("--out", required=True, help="output .segments file")
    parser.add_argument("--pairs", action="store_true",
                        help="the generator trained on these rows pooled in pairs (fit-transform --pool): read the "
                             "pairs and give both rows of a pair its phone")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        labels, problems = generator_row_labels(args.checkpoint, args.features, not args.no_progress, args.pairs)
    except (FileNotFoundError, ValueError) as err:
        print(f"[row_labels] error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"[row_labels] {problem}", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_phone_labels(args.out, labels)
    print(f"[row_labels] wrote {len(labels)} utterances to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
