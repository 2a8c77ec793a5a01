"""A trained CTC phone model's log-posteriors, stored as a feature set: the GAN's "oracle features".

When the GAN does not learn, two causes are mixed: features in which phones do not separate, and a search
(the adversarial game over the phone inventory) that does not find the mapping even when they do. Training
the GAN on the supervised topline's per-position log-posteriors over the same segments takes the first cause
away: the argmax of these features already transcribes the training audio at the topline's training PER, so
a GAN that fails on them fails in its search, not in its input.

Each output row is one input position (before the topline's `--upsample` repetition), with P + 1 columns:
the log-posterior of every phone and of the CTC blank (last). With `--no-blank` the blank column is dropped
and the phones renormalised (P columns): a position the topline gave to the blank then names its likeliest
phone, so every position carries a phone, as a segment of real audio does. `python -m asr_gan.train` reads
the folder like any other segment features.

CLI: python -m asr_gan.lab.posteriors --checkpoint exp/demo/topline/checkpoint_best.pt \
        --features exp/demo/feats/mfcc/segments/train --out exp/demo/oracle/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import load_ctc_checkpoint
from asr_gan.train.ctc_data import load_feature_set, read_phone_labels
from asr_gan.train.ctc_outputs import ctc_greedy_decode, log_posteriors, per_on_common


def greedy_per(outputs: list[np.ndarray], utt_ids: list[str], labels_path: str | Path,
               inventory: PhoneInventory) -> tuple[float, int]:
    """PER of the greedy reading of `outputs` against `labels_path` (silence ignored), and utterances scored.

    The reading is the GAN's: the argmax per position, runs merged (blanks dropped when there is a blank
    column). This is how good the oracle is: a GAN that learnt the identity on these features would score it.
    """
    refs = read_phone_labels(labels_path)
    # Without a blank column, index len(inventory) never wins the argmax and greedy CTC is merge-runs.
    hyps = {u: inventory.decode(ctc_greedy_decode(torch.from_numpy(o), len(o), blank=len(inventory)))
            for u, o in zip(utt_ids, outputs) if u in refs}
    scored = per_on_common(refs, hyps, inventory.silence)
    if scored is None:
        raise ValueError(f"{labels_path}: no utterance id matches the feature set's")
    return scored


def write_posteriors(checkpoint: str | Path, features_dir: str | Path, out: str | Path,
                     labels: str | Path | None = None, blank: bool = True, device: str = "cpu",
                     progress: bool = True) -> FeatureSet:
    """Write the log-posteriors of `features_dir` to `out`; with `labels`, their greedy PER goes into meta.json."""
    model, inventory, _ = load_ctc_checkpoint(checkpoint, device)
    features = load_feature_set(features_dir)
    outputs = log_posteriors(model, features, progress=progress, blank=blank)
    if any(len(o) == 0 for o in outputs):
        empty = [features.utt_ids[i] for i, o in enumerate(outputs) if len(o) == 0]
        raise ValueError(f"{features_dir}: the model gives no output position for {len(empty)} utterance(s), "
                         f"e.g. {empty[0]}")
    columns = list(inventory.symbols) + (["<blank>"] if blank else [])
    meta: dict[str, object] = {"kind": "ctc_log_posteriors", "checkpoint": str(checkpoint),
                               "source": str(features_dir), "columns": columns}
    if labels is not None:
        per, scored = greedy_per(outputs, list(features.utt_ids), labels, inventory)
        meta.update(labels=str(labels), greedy_per=per, greedy_per_utterances=scored)
    with FeatureSetWriter(out, outputs[0].shape[1], meta=meta) as writer:
        for utt_id, array in zip(features.utt_ids, outputs):
            writer.add(utt_id, array)
    return FeatureSet(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.posteriors", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of python -m asr_gan.train.ctc")
    parser.add_argument("--features", required=True, help="the feature set the model reads (its segments)")
    parser.add_argument("--out", required=True, help="output feature set folder")
    parser.add_argument("--labels", help="reference phones (`utt ph ...`): report the PER of the posteriors' "
                        "greedy CTC reading, the best a GAN on them could do by learning the identity")
    parser.add_argument("--no-blank", action="store_true",
                        help="drop the blank column and renormalise: every position names a phone")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if Path(args.out, "meta.json").is_file():
        print(f"[posteriors] {args.out} exists; remove it to write it again", file=sys.stderr)
        return 2
    try:
        written = write_posteriors(args.checkpoint, args.features, args.out, args.labels, not args.no_blank,
                                   args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"[posteriors] error: {err}", file=sys.stderr)
        return 1
    print(f"[posteriors] wrote {len(written)} utterances, {written.features.shape[1]} columns, to {args.out}")
    if args.labels:
        meta = written.meta
        print(f"[posteriors] greedy PER of these posteriors: {100 * meta['greedy_per']:.2f}% "
              f"on {meta['greedy_per_utterances']} utterances (silence ignored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
