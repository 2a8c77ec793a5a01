"""`python -m asr_gan.scoring.reference_rows`: the reference phone of every feature row, by forced alignment.

Measuring how phone-like a front-end's units are (asr_gan.scoring.unit_quality) needs a phone for every row,
and a corpus without time marks has none. A supervised CTC model trained on the rows (the recipes' topline on
unpooled k-means segments) is forced-aligned to the references with torchaudio's `forced_align`: a phone runs
from the output where the model first emits it to the output before the next phone's first emission, the last
phone ends at its last emission, and the outputs before the first phone and after the last are silence. A
model may emit several outputs per row (the topline's `--upsample`); a row takes the phone its last output is
aligned to. The labels are references: they measure, nothing label-free reads them.

Writes `<out>.segments`, one line `utt phone ...` with one phone per row. An utterance without references, or
that cannot be aligned (more phones than outputs), is reported with its id and skipped; the rest are written.

CLI: python -m asr_gan.scoring.reference_rows --checkpoint exp/demo/unit_quality/topline/checkpoint_best.pt \
        --features exp/demo/unit_quality/segments_nopool/train --labels exp/demo/text/train.phn \
        --out exp/demo/unit_quality/rows/train
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torchaudio

from asr_gan.features.storage import FeatureSet
from asr_gan.text.phones import SILENCE, PhoneInventory
from asr_gan.train.ctc import load_ctc_checkpoint
from asr_gan.train.ctc_data import load_feature_set, read_phone_labels
from asr_gan.train.ctc_outputs import log_posteriors


def phone_starts(log_probs: torch.Tensor, targets: list[int], blank: int) -> tuple[list[int], int]:
    """Forced alignment of `targets` to (T, C) log-probabilities: each target's first frame, and the last frame
    any target is emitted on."""
    path, _ = torchaudio.functional.forced_align(log_probs[None], torch.tensor([targets], dtype=torch.int32),
                                                 blank=blank)
    path = path[0].tolist()
    starts, previous = [], blank
    for t, symbol in enumerate(path):
        if symbol != blank and symbol != previous:
            starts.append(t)
        previous = symbol
    # Two equal neighbours are aligned with a blank between them, so each target starts once.
    last = max(t for t, symbol in enumerate(path) if symbol != blank)
    return starts, last


def label_rows(phones: list[str], starts: list[int], last: int, outputs: int, rows: int,
               silence: str) -> list[str]:
    """The phone of every input row: the phone whose aligned span (`phone_starts` over `outputs` positions,
    `outputs // rows` per row) holds the row's last output; silence before the first start and after `last`."""
    per_output = [silence] * outputs
    bounds = [*starts, last + 1]
    for phone, a, b in zip(phones, bounds[:-1], bounds[1:]):
        per_output[a:b] = [phone] * (b - a)
    step = outputs // rows
    return [per_output[(r + 1) * step - 1] for r in range(rows)]


def aligned_references(outputs: list[np.ndarray], features: FeatureSet, refs: dict[str, list[str]],
                       inventory: PhoneInventory, source: str | Path, labels: str | Path, problems: list[str]
                       ) -> Iterator[tuple[int, str, list[str], list[int], int]]:
    """(row, utt_id, phones, starts, last) of every utterance whose reference phones (silence left out) align to
    its model outputs (`phone_starts`); one without references, with phones outside `inventory`, or with more phones
    than outputs goes into `problems` with its id."""
    for i, utt_id in enumerate(features.utt_ids):
        phones = [p for p in refs.get(utt_id, []) if p != inventory.silence]
        if not phones:
            problems.append(f"{labels}: {utt_id}: no reference phones; skipped")
            continue
        unknown = sorted({p for p in phones if p not in inventory})
        if unknown:
            problems.append(f"{labels}: {utt_id}: phones not in the model's inventory {unknown}; skipped")
            continue
        try:
            starts, last = phone_starts(torch.from_numpy(outputs[i]), [inventory.index(p) for p in phones],
                                        blank=len(inventory))
        except RuntimeError as err:  # torchaudio refuses targets longer than the outputs
            problems.append(f"{source}: {utt_id}: {len(phones)} phones cannot be aligned to {len(outputs[i])} "
                            f"outputs ({err}); skipped")
            continue
        yield i, utt_id, phones, starts, last


def write_reference_rows(checkpoint: str | Path, features_dir: str | Path, labels: str | Path, out: str | Path,
                         progress: bool = True) -> tuple[int, list[str]]:
    """Write the aligned reference phone of every row of `features_dir` to `<out>.segments`; returns (utterances
    written, problems)."""
    model, inventory, _ = load_ctc_checkpoint(checkpoint, "cpu")
    features = load_feature_set(features_dir)
    refs = read_phone_labels(labels)
    outputs = log_posteriors(model, features, progress=progress)
    silence = inventory.silence or SILENCE  # the label of unaligned rows when the model's inventory has none
    step = max(1, len(outputs[0]) // max(1, len(features[0])))
    for i, utt_id in enumerate(features.utt_ids):  # checked before anything is written: no half file
        if len(outputs[i]) != step * len(features[i]):
            raise ValueError(f"{checkpoint}: {len(outputs[i])} output positions for {len(features[i])} rows of "
                             f"{utt_id}; expected {step} outputs per row, as for every other utterance")
    problems: list[str] = []
    lines: list[str] = []
    for i, utt_id, phones, starts, last in aligned_references(outputs, features, refs, inventory, features_dir, labels,
                                                             problems):
        rows = np.shape(features[i])[0]
        lines.append(f"{utt_id} {' '.join(label_rows(phones, starts, last, len(outputs[i]), rows, silence))}\n")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.segments").write_text("".join(lines), encoding="utf-8")
    return len(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.scoring.reference_rows",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint of python -m asr_gan.train.ctc trained on these rows")
    parser.add_argument("--features", required=True, help="the rows (frames or segments) that model reads")
    parser.add_argument("--labels", required=True, help="reference phones (`utt ph ...`)")
    parser.add_argument("--out", required=True, help="the labels go to <out>.segments")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        written, problems = write_reference_rows(args.checkpoint, args.features, args.labels, args.out,
                                                 progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        print(f"[reference_rows] error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"[reference_rows] {problem}", file=sys.stderr)
    print(f"[reference_rows] wrote {written} utterances to {args.out}.segments"
          + (f"; skipped {len(problems)}" if problems else ""))
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
