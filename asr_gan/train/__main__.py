"""`python -m asr_gan.train --config gan.yaml --out exp/demo/gan/run1 [--set key=value ...]`

Trains one GAN run (asr_gan/train/gan.py) with the settings of a YAML file (asr_gan/train/config.py), each
overridable with `--set section.key=value`. Rerunning the same command resumes from the run's last checkpoint.
Several GPUs: `torchrun --nproc_per_node N -m asr_gan.train ...`.

Outputs in --out: config.yaml, metrics.jsonl (training losses every log_interval updates; the label-free
metric weighted_lm_ppl, and valid_per when references are given, every valid_interval updates),
checkpoint_last.pt, checkpoint_best.pt (lowest weighted_lm_ppl), tensorboard/, result.json.
Exit codes: 0 done, 1 bad input, 3 training diverged (non-finite loss).
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from asr_gan.train.config import config_to_dict, load_config
from asr_gan.train.gan import TrainingDiverged, train_gan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of GanConfig settings")
    parser.add_argument("--out", required=True, help="run folder (resumed when it holds checkpoint_last.pt)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override settings, e.g. loss.cycle_audio=1 generator.hidden_layers=2 max_updates=500")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        config.validate()
    except (FileNotFoundError, ValueError) as err:
        print(f"[gan] error: {err}", file=sys.stderr)
        return 1
    print("[gan] config:\n" + yaml.safe_dump(config_to_dict(config), sort_keys=False), flush=True)
    try:
        summary = train_gan(config, args.out)
    except TrainingDiverged as err:
        print(f"[gan] diverged: {err}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as err:
        print(f"[gan] error: {err}", file=sys.stderr)
        return 1
    print("[gan] done: " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
