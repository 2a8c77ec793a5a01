"""`python -m asr_gan.scoring.chance`: the chance level of a phone recogniser that ignores the audio.

For every reference utterance it writes a hypothesis made of unpaired text: phones of randomly drawn sentences
of the text side (silence removed), joined and cut to the reference's length. A GAN whose generator ignores its
input but has learnt the phone statistics of the text (and the right output length) scores about this; an
unsupervised PER is only evidence of learning where it is clearly below it. Score the file as any other:

    python -m asr_gan.scoring.chance --ref exp/demo/text/test.phn --text exp/demo/text/train_text.phn \\
        --out exp/demo/chance/test_hyp.phn
    python -m asr_gan.scoring --ref exp/demo/text/test.phn --hyp exp/demo/chance/test_hyp.phn --remove-silence \\
        --out exp/demo/chance/score_test
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from asr_gan.scoring.timit import SILENCE_TOKENS
from asr_gan.scoring.trn import read_transcripts


def text_hypotheses(refs: dict[str, list[str]], sentences: Sequence[Sequence[str]], seed: int = 0,
                    silence: frozenset[str] | set[str] = frozenset(SILENCE_TOKENS)) -> dict[str, list[str]]:
    """{utt_id: phones of random text sentences, as many as the reference has (silence left out of both)}."""
    pools = [[p for p in sentence if p not in silence] for sentence in sentences]
    pools = [p for p in pools if p]
    if not pools:
        raise ValueError("the text holds no phones besides silence")
    rng = random.Random(seed)
    hyps = {}
    for utt_id, ref in refs.items():
        length = sum(p not in silence for p in ref)
        phones: list[str] = []
        while len(phones) < length:
            phones += rng.choice(pools)
        hyps[utt_id] = phones[:length]
    return hyps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.scoring.chance", description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="reference phones, `utt_id phone ...` per line")
    parser.add_argument("--text", required=True, help="unpaired phone text, one sentence per line (train_text.phn)")
    parser.add_argument("--out", required=True, type=Path, help="hypothesis file to write (`utt_id phone ...`)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        refs = read_transcripts(args.ref)  # its errors start with the path
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        text = Path(args.text).read_bytes().decode("utf-8")
        hyps = text_hypotheses(refs, [line.split() for line in text.splitlines()], args.seed)
    except UnicodeDecodeError as err:
        print(f"error: {args.text}: not UTF-8 (byte {err.start})", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"error: {args.text}: {err.strerror if isinstance(err, OSError) else err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"{u} {' '.join(p)}\n" for u, p in hyps.items()), encoding="utf-8")
    print(f"wrote {len(hyps)} text-only hypotheses to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
