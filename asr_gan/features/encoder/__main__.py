"""The cross-lingual phone encoder's command line.

    python -m asr_gan.features.encoder train --out exp/encoder      # speak 8 languages, train, report
    python -m asr_gan.features.encoder info [CHECKPOINT]            # what a checkpoint is (default: shipped)
    python -m asr_gan.features.encoder layers [CHECKPOINT] [--default]  # its layer numbers, for a shell loop

`train` reproduces the shipped checkpoint with its defaults (README, "The phone encoder"); copy
`<out>/encoder.pt` over `asr_gan/features/encoder/xlingual_phone_encoder.pt` to ship a new one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import torch

from asr_gan.features.encoder.checkpoint import ENCODER_LAYER, SHIPPED_CHECKPOINT, load_encoder
from asr_gan.features.encoder.corpus import DEFAULT_LANGUAGES, CorpusConfig
from asr_gan.features.encoder.model import EncoderConfig
from asr_gan.features.encoder.train import EncoderTrainConfig, train_encoder


def _word_lists(specs: list[str]) -> dict[str, str]:
    pairs = {}
    for spec in specs:
        language, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--word-list {spec!r}: write LANGUAGE=PATH")
        pairs[language] = path
    return pairs


def cmd_train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    config = EncoderTrainConfig(
        out=args.out,
        corpus=CorpusConfig(out=args.corpus or "", languages=tuple(args.languages.split(",")),
                            sentences=args.sentences, heldout=args.heldout, seed=args.seed, workers=args.workers,
                            word_lists=_word_lists(args.word_list) or None, progress=not args.no_progress),
        model=EncoderConfig(channels=args.channels, blocks=args.blocks, kernel_size=args.kernel_size),
        epochs=args.epochs, lr=args.lr, batch_frames=args.batch_frames, max_minutes=args.max_minutes,
        seed=args.seed, device=args.device, progress=not args.no_progress)
    try:
        train_encoder(config, command=shlex.join(["python", "-m", "asr_gan.features.encoder", *sys.argv[1:]]))
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    try:
        loaded = load_encoder(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"checkpoint": str(args.checkpoint or SHIPPED_CHECKPOINT), "config": loaded.model.config.to_dict(),
                      "phones": " ".join(loaded.phones), **loaded.info}, indent=1, ensure_ascii=False))
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    try:
        blocks = load_encoder(args.checkpoint).model.config.blocks
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(min(ENCODER_LAYER, blocks) if args.default else " ".join(str(layer) for layer in range(blocks + 1)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.features.encoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="speak other languages with espeak-ng, train the CTC phone encoder")
    p.add_argument("--out", required=True, help="folder for corpus/, encoder.pt, report.json, train_log.jsonl")
    p.add_argument("--corpus", help="folder of the spoken corpus (default OUT/corpus; reused when there)")
    p.add_argument("--languages", default=",".join(DEFAULT_LANGUAGES),
                   help="comma-separated (default: all eight; never English)")
    p.add_argument("--sentences", type=int, default=CorpusConfig.sentences,
                   help="per language, held-out ones included")
    p.add_argument("--heldout", type=int, default=CorpusConfig.heldout, help="held-out sentences per language")
    p.add_argument("--word-list", action="append", default=[], metavar="LANGUAGE=PATH",
                   help="read this word list (UTF-8, a word a line) instead of the Debian one")
    p.add_argument("--channels", type=int, default=EncoderConfig.channels)
    p.add_argument("--blocks", type=int, default=EncoderConfig.blocks)
    p.add_argument("--kernel-size", type=int, default=EncoderConfig.kernel_size)
    p.add_argument("--epochs", type=int, default=EncoderTrainConfig.epochs)
    p.add_argument("--lr", type=float, default=EncoderTrainConfig.lr)
    p.add_argument("--batch-frames", type=int, default=EncoderTrainConfig.batch_frames)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop and save after this long (0: no limit)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="espeak-ng processes")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="auto", help="cuda, cpu or auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("info", help="print a checkpoint's config, phones and provenance")
    p.add_argument("checkpoint", nargs="?", help="default: the shipped checkpoint")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("layers", help="print the layer numbers of a checkpoint: 0 (stem) to its last block")
    p.add_argument("checkpoint", nargs="?", help="default: the shipped checkpoint")
    p.add_argument("--default", action="store_true", help="only the layer --frontend encoder reads by default")
    p.set_defaults(func=cmd_layers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
