"""Greedy PER of a GAN checkpoint on any labelled segment set, the training audio's included.

Training logs PER on the validation set only. Whether a run learnt anything at all is clearest on the audio it
was trained on (its references are never read in training), and on features the bundle cannot decode (the
oracle features of `asr_gan.lab.posteriors` have no feature transform), so this reads the stored segments
directly, as validation does: argmax per position, runs merged, silence ignored.

CLI: python -m asr_gan.train.evaluate --checkpoint exp/demo_oracle/base_seed1/checkpoint_best.pt \
        --features exp/demo/oracle/train --labels exp/demo/text/train.phn [--hyp OUT.phn]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from asr_gan.train.checkpoint import load_generator
from asr_gan.train.ctc_data import read_phone_labels, write_phone_labels
from asr_gan.train.ctc_outputs import per_on_common
from asr_gan.train.data import SequenceBank, load_feature_sequences
from asr_gan.train.selection import greedy_phone_ids


def evaluate(checkpoint: str | Path, features: str | Path, labels: str | Path) -> dict:
    """{"per", "utterances", "hyp_phones_per_utt", "ref_phones_per_utt", "hypotheses"} (silence not counted)."""
    generator, inventory = load_generator(checkpoint)
    sequences, utt_ids = load_feature_sequences(str(features))
    if sequences[0].shape[1] != generator.input_dim:
        raise ValueError(f"{features}: {sequences[0].shape[1]}-dim rows, but {checkpoint} was trained on "
                         f"{generator.input_dim}-dim ones")
    refs = read_phone_labels(labels)
    outputs = greedy_phone_ids(generator, SequenceBank(sequences, torch.device("cpu")))
    silence = inventory.silence
    hyps = {u: [p for p in inventory.decode(o) if p != silence] for u, o in zip(utt_ids, outputs)}
    scored = per_on_common(refs, hyps, silence)
    if scored is None:
        raise ValueError(f"{labels}: no utterance id matches {features}")
    per, count = scored
    common = [u for u in hyps if u in refs]
    return {"per": per,
            "utterances": count,
            "hyp_phones_per_utt": sum(len(hyps[u]) for u in common) / count,
            "ref_phones_per_utt": sum(sum(p != silence for p in refs[u]) for u in common) / count,
            "hypotheses": hyps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.train.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a GAN checkpoint (checkpoint_best.pt)")
    parser.add_argument("--features", required=True, help="segment FeatureSet of the kind the run trained on")
    parser.add_argument("--labels", required=True, help="reference phones, `utt ph ...` per line")
    parser.add_argument("--hyp", help="also write the hypotheses here (`utt ph ...`, silence removed)")
    args = parser.parse_args(argv)
    try:
        result = evaluate(args.checkpoint, args.features, args.labels)
    except (FileNotFoundError, ValueError) as err:
        print(f"[evaluate] error: {err}", file=sys.stderr)
        return 1
    hypotheses = result.pop("hypotheses")
    if args.hyp:
        write_phone_labels(args.hyp, hypotheses)
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
