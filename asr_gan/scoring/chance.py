"""`python -m asr_gan.scoring.chance`: the chance level of a phone recogniser that ignores the audio.

For every reference utterance it writes a hypothesis made of unpaired text: phones of randomly drawn sentences
of the text side (silence removed), joined and cut to a fixed share of the reference's length. The length
matters: a random hypothesis shorter than the reference trades substitutions for deletions and scores lower
(on the demo's dev set 82.3% at half the length against 89.8% at the full length), so the chance level
is the lowest PER over the `--length-ratios`, and its hypotheses are the ones written. A GAN whose generator
ignores its input but has learnt the phone statistics of the text scores about this at its own output length;
an unsupervised PER is only evidence of learning where it is clearly below it. The PER of every ratio is
printed and saved as `<out stem>_ratios.json`. Score the file as any other:

    python -m asr_gan.scoring.chance --ref exp/demo/text/test.phn --text exp/demo/text/train_text.phn \\
        --out exp/demo/chance/test_hyp.phn
    python -m asr_gan.scoring --ref exp/demo/text/test.phn --hyp exp/demo/chance/test_hyp.phn --remove-silence \\
        --out exp/demo/chance/score_test
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from asr_gan.scoring.error_rate import score
from asr_gan.scoring.timit import SILENCE_TOKENS
from asr_gan.scoring.trn import read_transcripts

DEFAULT_RATIOS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def text_hypotheses(refs: dict[str, list[str]], sentences: Sequence[Sequence[str]], seed: int = 0,
                    silence: frozenset[str] | set[str] = frozenset(SILENCE_TOKENS),
                    length_ratio: float = 1.0) -> dict[str, list[str]]:
    """{utt_id: phones of random text sentences, `length_ratio` times as many as the reference has (at least
    one where the reference has any; silence left out of both)}."""
    pools = [[p for p in sentence if p not in silence] for sentence in sentences]
    pools = [p for p in pools if p]
    if not pools:
        raise ValueError("the text holds no phones besides silence")
    rng = random.Random(seed)
    hyps = {}
    for utt_id, ref in refs.items():
        reference_length = sum(p not in silence for p in ref)
        length = max(1, round(length_ratio * reference_length)) if reference_length else 0
        phones: list[str] = []
        while len(phones) < length:
            phones += rng.choice(pools)
        hyps[utt_id] = phones[:length]
    return hyps


def lowest_chance(refs: dict[str, list[str]], sentences: Sequence[Sequence[str]], seed: int = 0,
                  ratios: Sequence[float] = DEFAULT_RATIOS) -> tuple[float, dict[str, list[str]], dict[float, float]]:
    """The length ratio whose text-only hypotheses score the lowest PER, those hypotheses, and every ratio's PER.

    Every ratio draws the same sentences (the same seed), so the ratios differ only in where they cut.
    """
    if not ratios or min(ratios) <= 0:
        raise ValueError(f"length ratios must be positive, got {list(ratios)}")
    pers: dict[float, float] = {}
    best: tuple[float, dict[str, list[str]]] | None = None
    for ratio in ratios:
        hyps = text_hypotheses(refs, sentences, seed, length_ratio=ratio)
        pers[ratio] = score(refs, hyps, remove=SILENCE_TOKENS).error_rate
        if best is None or pers[ratio] < pers[best[0]]:
            best = (ratio, hyps)
    assert best is not None
    return best[0], best[1], pers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.scoring.chance", description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="reference phones, `utt_id phone ...` per line")
    parser.add_argument("--text", required=True, help="unpaired phone text, one sentence per line (train_text.phn)")
    parser.add_argument("--out", required=True, type=Path, help="hypothesis file to write (`utt_id phone ...`)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--length-ratios", type=float, nargs="+", default=list(DEFAULT_RATIOS),
                        help="hypothesis lengths to try, as shares of each reference's length; the lowest PER wins")
    args = parser.parse_args(argv)
    if min(args.length_ratios) <= 0:
        parser.error(f"--length-ratios must be positive, got {args.length_ratios}")
    try:
        refs = read_transcripts(args.ref)  # its errors start with the path
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        text = Path(args.text).read_bytes().decode("utf-8")
        ratio, hyps, pers = lowest_chance(refs, [line.split() for line in text.splitlines()], args.seed,
                                          args.length_ratios)
    except UnicodeDecodeError as err:
        print(f"error: {args.text}: not UTF-8 (byte {err.start})", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"error: {args.text}: {err.strerror if isinstance(err, OSError) else err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"{u} {' '.join(p)}\n" for u, p in hyps.items()), encoding="utf-8")
    (args.out.parent / f"{args.out.stem}_ratios.json").write_text(
        json.dumps({"chosen_ratio": ratio, "per_by_ratio": {str(r): round(p, 5) for r, p in pers.items()}},
                   indent=1) + "\n", encoding="utf-8")
    print("chance PER by hypothesis length / reference length: "
          + ", ".join(f"{r:g}: {100 * p:.1f}%" for r, p in pers.items()))
    print(f"wrote {len(hyps)} text-only hypotheses at {ratio:g} of the reference length (the lowest PER) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
