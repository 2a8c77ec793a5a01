"""The runs of a sweep: its settings (SweepConfig), `--grid`/`--settings` parsing, every setting with every
seed (RunSpec), and each run's config (the base YAML with dotted keys set)."""

from __future__ import annotations

import copy
import itertools
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

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
