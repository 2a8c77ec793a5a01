"""`python -m asr_gan.decode.make_bundle`: write the model bundle of a trained GAN run (asr_gan/decode/bundle.py).

The checkpoint is either given, or taken from a sweep's label-free choice (`--sweep sweep.json`: the selected
run's checkpoint_best.pt), so a recipe never needs a label to pick what it ships.

Example:
  python -m asr_gan.decode.make_bundle --sweep exp/demo/sweep/sweep.json --transform exp/demo/feats/mfcc/transform \
      --phones exp/demo/text/phones.txt --lexicon exp/demo/text/lexicon.txt --phone-lm exp/demo/text/phone_lm.bin \
      --word-lm exp/demo/text/word_lm.bin --out exp/demo/bundle
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from asr_gan.decode.bundle import BundleError
from asr_gan.decode.write_bundle import write_bundle


def selected_checkpoint(sweep_json: str | Path) -> Path:
    """checkpoint_best.pt of the run a sweep selected by its label-free metric."""
    path = Path(sweep_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sweep report not found (run `python -m asr_gan.train.sweep`)")
    report = json.loads(path.read_text(encoding="utf-8"))
    run_dir = report.get("selected_run_dir")
    if not run_dir:
        raise ValueError(f"{path}: the sweep selected no run (did every run fail? see its sweep.md)")
    checkpoint = Path(run_dir) / "checkpoint_best.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: the selected run has no best checkpoint")
    return checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.decode.make_bundle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a GAN checkpoint (checkpoint_best.pt)")
    source.add_argument("--sweep", help="sweep.json: bundle its selected run")
    parser.add_argument("--transform", required=True, help="the fitted feature transform folder")
    parser.add_argument("--phones", required=True)
    parser.add_argument("--lexicon")
    parser.add_argument("--phone-lm")
    parser.add_argument("--word-lm")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        checkpoint = Path(args.checkpoint) if args.checkpoint else selected_checkpoint(args.sweep)
        out = write_bundle(args.out, transform_dir=args.transform, checkpoint=checkpoint, phones=args.phones,
                           lexicon=args.lexicon, phone_lm=args.phone_lm, word_lm=args.word_lm,
                           command=" ".join(shlex.quote(a) for a in ["python", "-m", "asr_gan.decode.make_bundle",
                                                                     *(argv or sys.argv[1:])]))
    except (FileNotFoundError, ValueError, BundleError) as err:
        print(f"[bundle] error: {err}", file=sys.stderr)
        return 1
    print(f"[bundle] wrote {out} from {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
