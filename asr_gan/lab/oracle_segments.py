"""Oracle segments: one mean-pooled feature row per reference phone, cut where a supervised model aligns it.

The GAN reads segments from an unsupervised segmenter (k-means runs, pair pooling), which cut phones into
pieces and merge neighbours. Training it on segments cut at the true phone boundaries takes that cause of
failure away, as `asr_gan.lab.posteriors` takes the features away. A corpus without time marks gets its
boundaries from a forced alignment (torchaudio's `forced_align`) of the references with a CTC model trained on
the frames (`python -m asr_gan.train.ctc --model bilstm --upsample 1`): a phone runs from the frame where the
model first emits it to the frame before the next phone's first emission; the last phone ends at its last
emission. The frames before the first phone and after the last become one silence row each. Any rows work in
place of frames when the model emits one output per row: with the recipes' topline on k-means segments, each
phone gets the segments aligned to it.

Writes a FeatureSet of the rows and `<out>.segments` (`utt phone ...`, one phone per row, silence included), the
format of the GAN's `warm_start_labels` (the phone of every unpooled row is `asr_gan.scoring.reference_rows`,
the same alignment). An utterance without references, or that cannot be aligned (more phones than frames), is
reported with its id and skipped; the rest are written.

CLI: python -m asr_gan.lab.oracle_segments --checkpoint exp/x/frame_ctc/checkpoint_best.pt \
        --features exp/x/feats/mfcc/train --labels exp/x/text/train.phn --out exp/x/oracle_segments/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from asr_gan.features.storage import FeatureSetWriter
from asr_gan.scoring.reference_rows import aligned_references
from asr_gan.text.phones import SILENCE
from asr_gan.train.ctc import load_ctc_checkpoint
from asr_gan.train.ctc_data import load_feature_set, read_phone_labels
from asr_gan.train.ctc_outputs import log_posteriors


def pool_phones(frames: np.ndarray, phones: list[str], starts: list[int], last: int,
                silence: str) -> tuple[np.ndarray, list[str]]:
    """Mean of each phone's frames, with a silence row for the frames before the first and after the last."""
    bounds = [*starts, last + 1]
    rows = [frames[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]
    labels = list(phones)
    if starts[0] > 0:
        rows.insert(0, frames[:starts[0]].mean(axis=0))
        labels.insert(0, silence)
    if last + 1 < len(frames):
        rows.append(frames[last + 1:].mean(axis=0))
        labels.append(silence)
    return np.asarray(rows, dtype=np.float32), labels


def write_oracle_segments(checkpoint: str | Path, features_dir: str | Path, labels: str | Path,
                          out: str | Path, progress: bool = True) -> tuple[int, list[str]]:
    """Write the oracle segments of `features_dir` to `out` and `<out>.segments`; returns (written, problems)."""
    model, inventory, _ = load_ctc_checkpoint(checkpoint, "cpu")
    features = load_feature_set(features_dir)
    refs = read_phone_labels(labels)
    outputs = log_posteriors(model, features, progress=progress)
    silence = inventory.silence or SILENCE  # the silence row's label when the model's inventory has none
    problems: list[str] = []
    lines: list[str] = []
    meta = {"kind": "oracle_segments", "checkpoint": str(checkpoint), "source": str(features_dir),
            "labels": str(labels)}
    for i, utt_id in enumerate(features.utt_ids):  # checked before anything is written: no half folder
        if len(outputs[i]) != len(features[i]):
            raise ValueError(f"{checkpoint}: {len(outputs[i])} output positions for {len(features[i])} frames of "
                             f"{utt_id}; oracle segments need one output per frame (a model without stride, "
                             f"trained by `asr_gan.train.ctc` on the frames of {features_dir})")
    with FeatureSetWriter(out, features[0].shape[1], meta=meta) as writer:
        for i, utt_id, phones, starts, last in aligned_references(outputs, features, refs, inventory, features_dir,
                                                                 labels, problems):
            rows, row_labels = pool_phones(np.asarray(features[i], dtype=np.float32), phones, starts, last, silence)
            writer.add(utt_id, rows)
            lines.append(f"{utt_id} {' '.join(row_labels)}\n")
    Path(f"{out}.segments").write_text("".join(lines), encoding="utf-8")
    return len(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.oracle_segments",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint of python -m asr_gan.train.ctc trained on these rows")
    parser.add_argument("--features", required=True, help="the frames (or segments) that model reads")
    parser.add_argument("--labels", required=True, help="reference phones (`utt ph ...`)")
    parser.add_argument("--out", required=True, help="output feature set folder (labels go to <out>.segments)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        written, problems = write_oracle_segments(args.checkpoint, args.features, args.labels, args.out,
                                                  progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        print(f"[oracle_segments] error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"[oracle_segments] {problem}", file=sys.stderr)
    print(f"[oracle_segments] wrote {written} utterances to {args.out} and {args.out}.segments"
          + (f"; skipped {len(problems)}" if problems else ""))
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
