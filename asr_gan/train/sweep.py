"""Seeds x settings of GAN training, label-free selection of the run, and the share of runs that converge.

`python -m asr_gan.train.sweep` writes one config per run (the base YAML with the grid values and the
seed set), runs `python -m asr_gan.train --config <run>/sweep_config.yaml --out <run>` for each as a
subprocess (`--parallel` at a time, dealt over the GPUs when there are any, at least one per GPU; the CPU
threads are split between them), reads each run's `metrics.jsonl` and reports a table (`sweep.md`,
`sweep.json`) and a picture of every run's metric and PER against updates (`sweep.png`).

Examples:
  # a grid: every combination of the values, each with every seed
  python -m asr_gan.train.sweep --config exp/demo/gan.yaml --seeds 0 1 2 --grid loss.cycle_audio=0,1 \
      --out exp/demo/sweep --parallel 2
  # named settings (NAME:key=value,key=value; a bare NAME: is the base config), each with every seed
  python -m asr_gan.train.sweep --config exp/demo/gan.yaml --seeds 1 2 3 --out exp/demo/table --settings \
      baseline: audio:loss.cycle_audio=1 text:loss.cycle_text=1 all:loss.cycle_audio=1,loss.cycle_text=1

Selection (wav2vec-U's unsupervised model selection): within each run the validation record with the
lowest `weighted_lm_ppl`, and across runs the run whose best record has the lowest value. No reference
transcription is used; the PER columns (when the GAN logged one) only show how good the choice was.

Convergence: a run converged when the PER of its selected record is below `--converged-per` (default
0.4: a collapsed GAN that emits a handful of phones sits near 100% PER, a learning one well below
half). When no run logged a PER, a run converged when its best `weighted_lm_ppl` is below
`--converged-metric`, or, if that is not given, within `--converged-ratio` (default 2) times the best
run's value: label-free, so only a relative statement.

Reruns skip runs whose `sweep_status.json` says they finished (`--force` reruns them).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import yaml

from asr_gan.train.sweep_plan import SweepConfig, expand_runs, parse_grid, parse_settings
from asr_gan.train.sweep_report import markdown_table, write_report
from asr_gan.train.sweep_results import SweepSummary, collect_results, summarise
from asr_gan.train.sweep_runs import launch_runs


def run_sweep(config: SweepConfig) -> SweepSummary:
    path = Path(config.config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sweep base config not found (a GAN config.yaml)")
    base = yaml.safe_load(path.read_text()) or {}
    if not isinstance(base, dict):
        raise ValueError(f"{path}: expected a YAML mapping of GAN settings")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep_settings.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    specs = expand_runs(config.grid, config.seeds, config.settings)
    codes = launch_runs(specs, base, config)
    summary = summarise(collect_results(specs, codes, config), config)
    write_report(summary, config)
    return summary


def parse_args(argv: list[str] | None = None) -> SweepConfig:
    defaults = SweepConfig(config="", out="")
    parser = argparse.ArgumentParser(prog="python -m asr_gan.train.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="base GAN config (YAML)")
    parser.add_argument("--out", required=True, help="sweep folder; one subfolder per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=defaults.seeds)
    parser.add_argument("--grid", nargs="*", default=[], help="key=v1,v2 (dotted keys reach into sections)")
    parser.add_argument("--settings", nargs="*", default=[],
                        help="named settings instead of a grid: NAME:key=value,key=value (NAME: = the base config)")
    parser.add_argument("--parallel", type=int, default=defaults.parallel,
                        help="runs at a time: CPU processes, or runs dealt over the GPUs (at least one per GPU)")
    parser.add_argument("--train-command", default=defaults.train_command,
                        help="command template with {config} and {out} (default: python -m asr_gan.train ...)")
    parser.add_argument("--seed-key", default=defaults.seed_key, help="config key that holds the seed")
    parser.add_argument("--metric-key", default=defaults.metric_key)
    parser.add_argument("--per-keys", nargs="+", default=defaults.per_keys)
    parser.add_argument("--converged-per", type=float, default=defaults.converged_per)
    parser.add_argument("--converged-metric", type=float, default=None)
    parser.add_argument("--converged-ratio", type=float, default=defaults.converged_ratio)
    parser.add_argument("--force", action="store_true", help="rerun finished runs")
    args = parser.parse_args(argv)
    try:
        grid, settings = parse_grid(args.grid), parse_settings(args.settings)
    except ValueError as err:
        parser.error(str(err))
    if grid and settings:
        parser.error("give --grid or --settings, not both")
    return SweepConfig(config=args.config, out=args.out, seeds=args.seeds, grid=grid, settings=settings,
                       parallel=args.parallel,
                       train_command=args.train_command, seed_key=args.seed_key, metric_key=args.metric_key,
                       per_keys=args.per_keys, converged_per=args.converged_per,
                       converged_metric=args.converged_metric, converged_ratio=args.converged_ratio,
                       force=args.force)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    print("[sweep] config: " + json.dumps(asdict(config)), flush=True)
    try:
        summary = run_sweep(config)
    except (FileNotFoundError, ValueError) as err:
        print(f"[sweep] error: {err}", file=sys.stderr)
        return 1
    print(markdown_table(summary, config.metric_key))
    print(f"[sweep] wrote {Path(config.out) / 'sweep.md'} and {Path(config.out) / 'sweep.json'}")
    return 0 if summary.selected else 1


if __name__ == "__main__":
    sys.exit(main())
