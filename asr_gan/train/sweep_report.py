"""A sweep's report from its SweepSummary: the markdown tables (every run, every setting over its seeds),
the picture of every run's curves, and `sweep.md` / `sweep.json`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asr_gan.train.sweep_plan import SweepConfig
from asr_gan.train.sweep_results import RunResult, SweepSummary


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
