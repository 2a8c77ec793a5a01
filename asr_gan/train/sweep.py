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
import copy
import itertools
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

# Keys under which the GAN run may log a phone error rate, in order of preference.
DEFAULT_PER_KEYS = ("valid_per", "per", "dev_per", "valid_uer", "uer")
DEFAULT_TRAIN_COMMAND = f"{shlex.quote(sys.executable)} -m asr_gan.train --config {{config}} --out {{out}}"


@dataclass
class SweepConfig:
    """Settings of one sweep (printed at start and saved as `sweep_settings.yaml`)."""

    config: str
    out: str
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # Named settings instead of a grid: {name: {dotted key: value}}.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    parallel: int = 1
    # Template with {config} and {out}; extra GAN flags can be appended here.
    train_command: str = DEFAULT_TRAIN_COMMAND
    seed_key: str = "seed"
    metric_key: str = "weighted_lm_ppl"
    per_keys: list[str] = field(default_factory=lambda: list(DEFAULT_PER_KEYS))
    converged_per: float = 0.4
    converged_metric: float | None = None
    converged_ratio: float = 2.0
    force: bool = False


@dataclass
class RunSpec:
    name: str
    seed: int
    overrides: dict[str, Any]
    setting: str = ""  # the runs of one setting differ only in their seed


@dataclass
class RunResult:
    """What one run's metrics.jsonl says; `per` is the PER of the record the metric selects."""

    name: str
    seed: int
    overrides: dict[str, Any]
    status: str  # "ok", "failed (rc N)", "no metrics"
    best_metric: float | None = None
    best_step: Any = None
    per: float | None = None
    min_per: float | None = None
    converged: bool | None = None
    run_dir: str = ""
    setting: str = ""


# --------------------------------------------------------------------------------------------- planning


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`["a=0,1", "b.c=1e-4"]` -> `{"a": [0, 1], "b.c": [0.0001]}`; values are parsed as YAML scalars."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--grid {item!r}: expected key=value1,value2,...")
        grid[key] = [_parse_value(v) for v in values.split(",")]
    return grid


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """`["base:", "audio:loss.cycle_audio=1,loss.cycle_text=0.5"]` -> `{"base": {}, "audio": {...}}`."""
    settings: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, rest = item.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9.+-]+", name) or name in settings:
            raise ValueError(f"--settings {item!r}: expected a new NAME (letters, digits, . + -) then "
                             "':key=value,key=value'")
        overrides = {}
        for pair in filter(None, rest.split(",")):
            key, eq, value = pair.partition("=")
            if not eq or not key or not value:
                raise ValueError(f"--settings {item!r}: {pair!r} is not key=value")
            overrides[key] = _parse_value(value)
        settings[name] = overrides
    return settings


def _parse_value(text: str) -> Any:
    """int, then float (YAML 1.1 reads `1e-4` as a string), then any YAML scalar (true, null, words)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def _value_name(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "_", str(value))


def expand_runs(grid: dict[str, list[Any]], seeds: list[int],
                settings: dict[str, dict[str, Any]] | None = None) -> list[RunSpec]:
    """Every grid combination (or every named setting) with every seed; run names say their setting
    (`w=1_seed2`, `audio_seed2`)."""
    if grid and settings:
        raise ValueError("give a grid or named settings, not both")
    runs = []
    if settings:
        for name, overrides in settings.items():
            runs += [RunSpec(f"{name}_seed{seed}", seed, dict(overrides), name) for seed in seeds]
        return runs
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, values))
        prefix = "_".join(f"{k.split('.')[-1]}={_value_name(v)}" for k, v in overrides.items())
        for seed in seeds:
            runs.append(RunSpec(f"{prefix}_seed{seed}" if prefix else f"seed{seed}", seed, overrides, prefix))
    return runs


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Copy of `config` with dotted keys set (`generator.dropout` sets config["generator"]["dropout"])."""
    config = copy.deepcopy(config)
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"cannot set {dotted!r}: {part!r} is not a section of the config")
        node[leaf] = value
    return config


# --------------------------------------------------------------------------------------------- running


def worker_slots(parallel: int, gpus: int | None = None) -> list[dict[str, str]]:
    """Environment of each concurrent worker.

    With GPUs there are max(`parallel`, GPUs) workers, dealt round-robin over the GPUs: `--parallel 4` on one
    GPU runs four runs on it at once (a wav2vec-U-size run uses a small part of an H100). Without a GPU,
    `parallel` CPU workers share the cores. Either way each worker gets its share of the CPU threads.
    """
    if gpus is None:
        try:
            import torch

            gpus = torch.cuda.device_count()
        except Exception:  # torch missing or CUDA broken: fall back to CPU workers
            gpus = 0
    workers = max(1, parallel, gpus)
    # Without this each process would start one thread per core and they would fight over the cores.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return [{"CUDA_VISIBLE_DEVICES": str(n % gpus) if gpus else "", "OMP_NUM_THREADS": threads,
             "MKL_NUM_THREADS": threads} for n in range(workers)]


def _finished(run_dir: Path) -> bool:
    status = run_dir / "sweep_status.json"
    return status.is_file() and json.loads(status.read_text()).get("returncode") == 0


def launch_runs(specs: list[RunSpec], base_config: dict[str, Any], config: SweepConfig) -> dict[str, int]:
    """Run every spec (skipping finished ones unless forced); returns {name: return code}. Never raises on a
    failed run: its return code and log (`<run>/train.log`) are kept for the report."""
    out = Path(config.out)
    pending = []
    codes: dict[str, int] = {}
    for spec in specs:
        run_dir = out / spec.name
        if _finished(run_dir) and not config.force:
            codes[spec.name] = 0
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        run_config = apply_overrides(base_config, {**spec.overrides, config.seed_key: spec.seed})
        (run_dir / "sweep_config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=False))
        pending.append(spec)
    if len(codes):
        print(f"[sweep] {len(codes)} runs already finished, skipped (--force to rerun)")
    slots = worker_slots(config.parallel)
    free = list(range(len(slots)))
    running: dict[int, tuple[RunSpec, subprocess.Popen, Any]] = {}
    with tqdm(total=len(pending), desc="[sweep] runs", unit="run") as bar:
        while pending or running:
            while pending and free:
                spec, slot = pending.pop(0), free.pop(0)
                run_dir = out / spec.name
                command = config.train_command.format(config=shlex.quote(str(run_dir / "sweep_config.yaml")),
                                                      out=shlex.quote(str(run_dir)))
                log = open(run_dir / "train.log", "w")
                process = subprocess.Popen(shlex.split(command), stdout=log, stderr=subprocess.STDOUT,
                                           env={**os.environ, **slots[slot]})
                running[slot] = (spec, process, log)
            time.sleep(0.2)
            for slot, (spec, process, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                codes[spec.name] = process.returncode
                (out / spec.name / "sweep_status.json").write_text(json.dumps({"returncode": process.returncode}))
                if process.returncode != 0:
                    tqdm.write(f"[sweep] {spec.name} failed (rc {process.returncode}); see "
                               f"{out / spec.name / 'train.log'}")
                del running[slot]
                free.append(slot)
                bar.update(1)
    return codes


# ------------------------------------------------------------------------------------------ collecting


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def read_run_metrics(run_dir: Path, metric_key: str, per_keys: list[str]) -> dict[str, Any] | None:
    """Best-metric record of `run_dir/metrics.jsonl`: {best_metric, best_step, per, min_per}; None when the
    file is missing or no line carries the metric. Records marked `"selectable": false` (validations before the
    run's select_after, whose weights it never keeps) are not candidates, though their PER counts in min_per.
    Lines that are not JSON (a run killed mid-write) are skipped."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    best: dict[str, Any] | None = None
    pers: list[float] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        per = next((_number(record[k]) for k in per_keys if _number(record.get(k)) is not None), None)
        if per is not None:
            pers.append(per)
        metric = _number(record.get(metric_key))
        if metric is None or record.get("selectable") is False:  # before the run's select_after
            continue
        if best is None or metric < best["best_metric"]:
            step = next((record[k] for k in ("step", "update", "epoch") if k in record), None)
            best = {"best_metric": metric, "best_step": step, "per": per}
    if best is None:
        return None
    best["min_per"] = min(pers) if pers else None
    return best


def collect_results(specs: list[RunSpec], codes: dict[str, int], config: SweepConfig) -> list[RunResult]:
    results = []
    for spec in specs:
        run_dir = Path(config.out) / spec.name
        result = RunResult(spec.name, spec.seed, spec.overrides, "ok", run_dir=str(run_dir), setting=spec.setting)
        metrics = read_run_metrics(run_dir, config.metric_key, config.per_keys)
        if metrics is not None:
            for key, value in metrics.items():
                setattr(result, key, value)
        code = codes.get(spec.name, 0)
        if code != 0:
            result.status = f"failed (rc {code})"
        elif metrics is None:
            result.status = "no metrics"
        results.append(result)
    return results


@dataclass
class SweepSummary:
    runs: list[RunResult]
    selected: str | None
    convergence_rule: str
    converged_share: float | None


def summarise(results: list[RunResult], config: SweepConfig) -> SweepSummary:
    """Pick the lowest-metric run and mark convergence (module docstring has the definition)."""
    scored = [r for r in results if r.best_metric is not None]
    selected = min(scored, key=lambda r: r.best_metric).name if scored else None
    with_per = [r for r in scored if r.per is not None]
    if with_per:
        rule = f"PER of the selected record < {config.converged_per}"
        for r in scored:
            r.converged = r.per is not None and r.per < config.converged_per
    elif scored:
        limit = config.converged_metric
        if limit is None:
            limit = config.converged_ratio * min(r.best_metric for r in scored)
            rule = f"{config.metric_key} < {config.converged_ratio} x best run's = {limit:.4g} (no PER logged)"
        else:
            rule = f"{config.metric_key} < {limit} (no PER logged)"
        for r in scored:
            r.converged = r.best_metric < limit
    else:
        rule = "no run logged the metric"
    # Failed runs count as not converged: the share is over every run of the sweep.
    for r in results:
        if r.converged is None and scored:
            r.converged = False
    share = sum(bool(r.converged) for r in results) / len(results) if scored and results else None
    return SweepSummary(results, selected, rule, share)


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _override_keys(runs: list[RunResult]) -> list[str]:
    """Every key some run overrides, in first-seen order (named settings may override different keys)."""
    return list(dict.fromkeys(k for r in runs for k in r.overrides))


def markdown_table(summary: SweepSummary, metric_key: str) -> str:
    grid_keys = _override_keys(summary.runs)
    header = ["run", *grid_keys, "seed", f"best {metric_key}", "at", "PER % (selected)", "min PER %",
              "converged", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(summary.runs, key=lambda r: (r.best_metric is None, r.best_metric or 0.0)):
        name = f"**{r.name}** (selected)" if r.name == summary.selected else r.name
        row = [name, *(_cell(r.overrides.get(k)) for k in grid_keys), str(r.seed), _cell(r.best_metric),
               _cell(r.best_step), _cell(r.per, True), _cell(r.min_per, True),
               {True: "yes", False: "no", None: "-"}[r.converged], r.status]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *setting_table(summary, grid_keys)]
    share = "-" if summary.converged_share is None else f"{100 * summary.converged_share:.0f}%"
    lines += ["", f"Selected (lowest {metric_key}, no labels used): {summary.selected or 'none'}",
              f"Converged: {share} of {len(summary.runs)} runs ({summary.convergence_rule})"]
    return "\n".join(lines) + "\n"


def setting_table(summary: SweepSummary, grid_keys: list[str]) -> list[str]:
    """One row per setting (grid combination or named setting) over its seeds: PER of each seed's selected record
    (mean, population std, best) and how many seeds converged."""
    groups: dict[Any, list[RunResult]] = {}
    # Named settings (--settings) have names without "="; grid runs are grouped by their values.
    named = any(r.setting and "=" not in r.setting for r in summary.runs)
    for r in summary.runs:
        groups.setdefault(r.setting if named else tuple(r.overrides.get(k) for k in grid_keys), []).append(r)
    header = [*(["setting"] if named else []), *(grid_keys or ([] if named else ["setting"])), "seeds", "PER % mean",
              "std", "best", "converged"]
    lines = ["Per setting (PER of each seed's label-free choice):", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for values, runs in groups.items():
        pers = [r.per for r in runs if r.per is not None]
        if named:
            cells = [str(values), *(_cell(runs[0].overrides.get(k)) for k in grid_keys)]
        else:
            cells = [_cell(v) for v in values] if grid_keys else ["all"]
        if pers:
            mean = sum(pers) / len(pers)
            std = (sum((p - mean) ** 2 for p in pers) / len(pers)) ** 0.5
            stats = [_cell(mean, True), _cell(std, True), _cell(min(pers), True)]
        else:
            stats = ["-", "-", "-"]
        converged = sum(bool(r.converged) for r in runs)
        lines.append("| " + " | ".join([*cells, str(len(runs)), *stats, f"{converged}/{len(runs)}"]) + " |")
    return lines


def draw_curves(summary: SweepSummary, config: SweepConfig) -> Path | None:
    """`sweep.png`: every run's metric and PER against updates (`asr_gan.train.curves.plot_sweep_curves`);
    None, with a note, when no run logged the metric. A picture never fails the sweep."""
    from asr_gan.train.curves import plot_sweep_curves

    runs = {r.name: Path(r.run_dir) / "metrics.jsonl" for r in summary.runs if r.run_dir}
    try:
        return plot_sweep_curves(runs, Path(config.out) / "sweep.png", summary.selected, config.metric_key)
    except (ValueError, OSError) as err:
        print(f"[sweep] no curves picture: {err}", file=sys.stderr)
        return None


def write_report(summary: SweepSummary, config: SweepConfig) -> tuple[Path, Path]:
    out = Path(config.out)
    md, js = out / "sweep.md", out / "sweep.json"
    picture = draw_curves(summary, config)
    md.write_text(markdown_table(summary, config.metric_key)
                  + (f"\n![every run's {config.metric_key} and PER against updates]({picture.name})\n"
                     if picture else ""))
    selected = next((r for r in summary.runs if r.name == summary.selected), None)
    js.write_text(json.dumps({"selected": summary.selected,
                              "selected_run_dir": selected.run_dir if selected else None,
                              "metric_key": config.metric_key, "convergence_rule": summary.convergence_rule,
                              "converged_share": summary.converged_share,
                              "runs": [asdict(r) for r in summary.runs]}, indent=1, default=str))
    return md, js


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
