"""`python -m asr_gan.lab.check_discriminator --config gan.yaml [--set key=value ...]`

A minute's check before a long GAN run: can this configuration's discriminator tell the untrained
generator's output from text? It builds the run of the config (asr_gan/train/gan.py) without writing
anything, trains the discriminator alone for `--updates` updates against the generator's initial weights
(or those of `--checkpoint`), and then scores `--batches` fresh batches of both.

A working discriminator scores generated sequences above text (the convention of asr_gan/train/losses.py)
and its loss falls below chance (ln 4 = 1.386). If it ranks text above generated output, its gradient points
the generator away from text, and no number of GAN updates will help: docs/gan_investigation.md, "The
gradient penalty", shows such a case (the wav2vec-U per-channel penalty with a width-64 discriminator) and
its fix (`loss.gradient_penalty_norm=sequence`).

Prints one JSON object: mean scores of generated and real sequences, their gap, the share of batches
whose mean generated score is the higher, the discriminator's loss on the held-out batches, and
`"verdict"`: "separates", "chance" or "inverted". Exit codes: 0 checked (whatever the verdict), 1 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import replace

from asr_gan.train import losses
from asr_gan.train.checkpoint import read_checkpoint
from asr_gan.train.config import GanConfig, load_config
from asr_gan.train.gan import GanTrainer

CHANCE_LOSS = 2 * math.log(2)


def check_discriminator(config: GanConfig, updates: int = 300, batches: int = 16,
                        checkpoint: str | None = None) -> dict[str, float | str]:
    """Train the discriminator of `config` alone, then measure how it ranks generated output and text."""
    config = replace(config, valid_features=None, tensorboard=False, progress=False)
    with tempfile.TemporaryDirectory(prefix="asr_gan_check_") as out:
        trainer = GanTrainer(config, out)  # writes nothing until it trains
    if checkpoint:
        try:
            trainer.generator.load_state_dict(read_checkpoint(checkpoint, trainer.device)["generator"])
        except RuntimeError as err:  # torch's message for missing, unexpected or differently shaped weights
            raise ValueError(f"{checkpoint}: its generator does not fit this config's generator and features "
                             f"(train it with the same config): {str(err).splitlines()[0]}") from None
    trainer.generator.train()
    trainer.discriminator.train()
    for _ in range(updates):
        trainer.discriminator_update()
    fake_scores, real_scores, held_out_loss, wins = [], [], 0.0, 0
    for _ in range(batches):
        fake_score, real_score = trainer.discriminator_scores()
        held_out_loss += losses.discriminator_loss(fake_score, real_score).item() / batches
        wins += int(fake_score.mean() > real_score.mean())
        fake_scores.append(fake_score.mean().item())
        real_scores.append(real_score.mean().item())
    fake_mean, real_mean = sum(fake_scores) / batches, sum(real_scores) / batches
    if held_out_loss < CHANCE_LOSS - 0.05 and fake_mean > real_mean:
        verdict = "separates"
    elif fake_mean < real_mean and held_out_loss > CHANCE_LOSS:
        verdict = "inverted"
    else:
        verdict = "chance"
    return {"updates": updates, "generated_score": round(fake_mean, 4), "text_score": round(real_mean, 4),
            "gap": round(fake_mean - real_mean, 4), "generated_higher": round(wins / batches, 4),
            "loss": round(held_out_loss, 4), "chance_loss": round(CHANCE_LOSS, 4), "verdict": verdict}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.check_discriminator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of GanConfig settings (the run to check)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override settings")
    parser.add_argument("--updates", type=int, default=300, help="discriminator-only updates (default 300)")
    parser.add_argument("--batches", type=int, default=16, help="held-out batches scored afterwards")
    parser.add_argument("--checkpoint", help="take the generator from this GAN checkpoint instead of random")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        result = check_discriminator(config, args.updates, args.batches, args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        print(f"[check_discriminator] error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
