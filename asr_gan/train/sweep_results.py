"""Reading each sweep run's metrics.jsonl (RunResult), the label-free choice of the run and which runs
converged (SweepSummary); the definitions are in `asr_gan.train.sweep`'s docstring."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr_gan.train.sweep_plan import RunSpec, SweepConfig


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
    """Pick the lowest-metric run and mark convergence (`asr_gan.train.sweep`'s docstring has the definition)."""
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
