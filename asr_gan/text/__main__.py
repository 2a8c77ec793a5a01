"""`python -m asr_gan.text`: build a recipe's `text/` folder (lexicon, phones, phonemised text, LMs, references).

Examples:
  python -m asr_gan.text --corpus-text data/text_corpus.txt \
      --manifests data/train.jsonl data/dev.jsonl data/test.jsonl --out text/
  python -m asr_gan.text --phone-text data/train_text.phn --manifests data/train.jsonl --out text/   # TIMIT
  python -m asr_gan.features.silence_stats --manifest data/train.jsonl --out text/audio_silences.json
  python -m asr_gan.text --corpus-text data/text_corpus.txt --silence-stats text/audio_silences.json --out text/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict

from asr_gan.text.lm import KenLMNotFound
from asr_gan.text.prepare import TextPrepConfig, prepare_text


def parse_args(argv: list[str] | None = None) -> TextPrepConfig:
    defaults = TextPrepConfig(out=".", corpus_text="unused")
    parser = argparse.ArgumentParser(prog="python -m asr_gan.text", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus-text", help="unpaired text, one sentence per line (word mode)")
    source.add_argument("--phone-text", help="unpaired phone text, silence `sil` (TIMIT mode: no lexicon, no word LM)")
    parser.add_argument("--manifests", nargs="*", default=[],
                        help="manifests whose <split>.wrd/.phn references to write")
    parser.add_argument("--out", required=True, help="output folder (the recipe's text/)")
    parser.add_argument("--sil-prob", type=float, default=defaults.sil_prob,
                        help="probability of <SIL> between words (wav2vec-U recipe: 0.25)")
    parser.add_argument("--sil-start-prob", type=float, default=defaults.sil_start_prob,
                        help="probability of <SIL> at the start of a sentence (wav2vec-U: 1)")
    parser.add_argument("--sil-end-prob", type=float, default=defaults.sil_end_prob,
                        help="probability of <SIL> at the end of a sentence (wav2vec-U: 1)")
    parser.add_argument("--silence-stats",
                        help="JSON of `python -m asr_gan.features.silence_stats` on the training audio: sets the "
                             "three silence probabilities to match it (the options above are then unused)")
    parser.add_argument("--min-phone-count", type=int, default=defaults.min_phone_count,
                        help="drop phones seen fewer times, and the sentences holding them")
    parser.add_argument("--phone-lm-order", type=int, default=defaults.phone_lm_order)
    parser.add_argument("--word-lm-order", type=int, default=defaults.word_lm_order)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the silence draws")
    parser.add_argument("--no-g2p", action="store_true", help="CMUdict only: words it lacks are reported and skipped")
    parser.add_argument("--lm-memory", default=defaults.lm_memory, help="lmplz sort memory (-S), e.g. 10%% or 2G")
    parser.add_argument("--force", action="store_true", help="rebuild outputs even when up to date")
    args = parser.parse_args(argv)
    return TextPrepConfig(
        out=args.out, corpus_text=args.corpus_text, phone_text=args.phone_text, manifests=args.manifests,
        sil_prob=args.sil_prob, sil_start_prob=args.sil_start_prob, sil_end_prob=args.sil_end_prob,
        silence_stats=args.silence_stats, min_phone_count=args.min_phone_count, phone_lm_order=args.phone_lm_order,
        word_lm_order=args.word_lm_order, seed=args.seed, use_g2p=not args.no_g2p, lm_memory=args.lm_memory,
        force=args.force,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = parse_args(argv)
    except ValueError as err:  # settings that do not go together
        print(f"[text] error: {err}", file=sys.stderr)
        return 1
    print("[text] config: " + json.dumps(asdict(config), default=str))
    start = time.time()
    try:
        report = prepare_text(config)
    except (KenLMNotFound, FileNotFoundError, ValueError) as err:
        print(f"[text] error: {err}", file=sys.stderr)
        return 1
    print(f"[text] done in {time.time() - start:.1f} s: {report.sentences_written or 'unchanged'} phonemised "
          f"sentences, {report.num_phones} phones, references {report.references or 'unchanged'}; "
          f"see {config.out}/prep_report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
