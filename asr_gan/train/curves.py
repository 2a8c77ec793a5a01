"""Training curves of a run's `metrics.jsonl`, and of every run of a sweep in one picture.

A run's `metrics.jsonl` holds one JSON object per line, each with `step` (`update` or `epoch` are accepted
instead): every numeric key with `loss` in its name goes in one panel (a GAN run's discriminator terms `d_*` and
generator terms `g_*`, `cycle_*` in one panel each), the label-free selection metric (`weighted_lm_ppl`, and other
`*ppl*` keys) in a log-scale panel with the selected step marked, and the phone error rate (`per`, `valid_per`,
`*_uer`, ... as fractions) in percent when logged.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

STEP_KEYS = ("step", "update", "epoch")  # x axis, in order of preference
SELECTION_METRIC = "weighted_lm_ppl"  # wav2vec-U's unsupervised model selection criterion
_PER_KEY = re.compile(r"(^|_)(per|uer)$")
# Losses logged every update are noisy; past this many points an exponential average is drawn over them.
_SMOOTH_ABOVE = 100
_SMOOTHING = 0.9


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl, in order.

    Lines that are not a JSON object (the last line of a run killed while writing) are skipped.

    Raises:
        FileNotFoundError: the file is missing (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metrics file not found (written by `python -m asr_gan.train`)")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _number(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def step_key(records: list[dict]) -> str | None:
    """The x-axis key: the first of STEP_KEYS that some record carries."""
    return next((k for k in STEP_KEYS if any(_number(r.get(k)) is not None for r in records)), None)


def series(records: list[dict], key: str, x_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the records holding a finite `key` and `x_key`, both (n,) float64."""
    points = [(_number(r.get(x_key)), _number(r.get(key))) for r in records]
    points = [(x, y) for x, y in points if x is not None and y is not None]
    if not points:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*points)
    return np.asarray(xs), np.asarray(ys)


def curve_panels(records: list[dict], metric_key: str = SELECTION_METRIC) -> dict[str, list[str]]:
    """Keys per panel: {"loss", "d_loss", "g_loss", "metric", "per": [...]}; empty panels are left out."""
    keys = sorted({k for r in records for k, v in r.items() if _number(v) is not None and k not in STEP_KEYS})
    panels = {
        "loss": [k for k in keys if "loss" in k],
        # The GAN loop's terms (asr_gan/train/gan_step.py): discriminator d_*, generator g_* and the cycle losses.
        "d_loss": [k for k in keys if k.startswith("d_")],
        "g_loss": [k for k in keys if k.startswith(("g_", "cycle_"))],
        "metric": [k for k in keys if k == metric_key or "ppl" in k],
        "per": [k for k in keys if _PER_KEY.search(k)],
    }
    return {name: ks for name, ks in panels.items() if ks}


def selected_step(records: list[dict], metric_key: str = SELECTION_METRIC) -> float | None:
    """Step of the record with the lowest `metric_key` (the label-free choice), None when never logged.
    Records marked `"selectable": false` (before the run's select_after) are not candidates."""
    x_key = step_key(records)
    if x_key is None:
        return None
    steps, values = series([r for r in records if r.get("selectable") is not False], metric_key, x_key)
    return float(steps[int(np.argmin(values))]) if len(values) else None


def _smooth(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    average = values[0]
    for i, v in enumerate(values):
        average = _SMOOTHING * average + (1 - _SMOOTHING) * v
        out[i] = average
    return out


def plot_training_curves(
    metrics_path: str | Path,
    out_png: str | Path,
    title: str = "",
    metric_key: str = SELECTION_METRIC,
) -> Path:
    """Losses, the label-free selection metric and (when logged) PER against updates, one panel each.

    The step with the lowest `metric_key` is marked in every panel: that is the checkpoint label-free
    selection keeps, so the PER panel shows what the choice costs against the best PER.

    Raises:
        FileNotFoundError: no metrics file.
        ValueError: the file holds no record with a step and a numeric value (the message names it).
    """
    records = read_metrics(metrics_path)
    x_key = step_key(records)
    panels = curve_panels(records, metric_key)
    if x_key is None or not panels:
        raise ValueError(f"{metrics_path}: no record with a step ({'/'.join(STEP_KEYS)}) and a loss, ppl or PER value")
    chosen = selected_step(records, metric_key)
    labels = {"loss": "loss", "d_loss": "discriminator\nlosses", "g_loss": "generator\nlosses",
              "metric": "label-free metric\n(lower is better)", "per": "PER % (references)"}
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels) + 0.4), sharex=True, squeeze=False)
    for ax, (panel, keys) in zip(axes[:, 0], panels.items()):
        for key in keys:
            steps, values = series(records, key, x_key)
            if panel == "per":
                values = 100 * values
            if len(values) > _SMOOTH_ABOVE:
                line = ax.plot(steps, values, linewidth=0.6, alpha=0.3)[0]
                ax.plot(steps, _smooth(values), linewidth=1.2, color=line.get_color(), label=f"{key} (smoothed)")
            else:
                ax.plot(steps, values, linewidth=1.2, marker="." if len(values) < 30 else None, label=key)
        # Log scale where every value is positive: perplexities, and GAN terms that span orders of magnitude
        # (a gradient penalty of 30 at the start beside a smoothness term of 0.03).
        if panel in ("metric", "d_loss", "g_loss") and all((series(records, k, x_key)[1] > 0).all() for k in keys):
            ax.set_yscale("log")
            if panel == "metric":
                # Plain numbers: a perplexity axis spanning 30..80 reads badly as 3x10^1 .. 8x10^1.
                plain = FuncFormatter(lambda value, _: f"{value:g}")
                ax.yaxis.set_major_formatter(plain)
                ax.yaxis.set_minor_formatter(plain)
        if chosen is not None:
            ax.axvline(chosen, color="0.3", linestyle="--", linewidth=0.8)
        ax.set_ylabel(labels[panel])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="best")
    if chosen is not None:
        # Text on the side of the marker with more room, so it is not cut at the picture's edge.
        low, high = axes[0, 0].get_xlim()
        right = chosen > (low + high) / 2
        axes[0, 0].annotate(f"selected: lowest {metric_key} at {x_key} {chosen:g}", xy=(chosen, 1.0),
                            xycoords=("data", "axes fraction"), xytext=(-3 if right else 3, -10),
                            textcoords="offset points", ha="right" if right else "left", fontsize=7, color="0.3")
    axes[-1, 0].set_xlabel(x_key)
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_sweep_curves(runs: dict[str, str | Path], out_png: str | Path, selected: str | None = None,
                      metric_key: str = SELECTION_METRIC) -> Path:
    """Every run of a sweep in one picture: the label-free metric and (when logged) PER against updates, a line
    per run, each run's label-free choice marked with a dot, and the run the metric selects across the sweep
    drawn bold. A picture shows what the sweep's table cannot: which runs learn and then leave what they learnt.

    Raises:
        ValueError: no run has a record with a step and `metric_key` (the message names the picture).
    """
    curves = {}
    for name, path in runs.items():
        try:
            records = read_metrics(path)
        except FileNotFoundError:
            continue  # a failed run: the sweep's table reports it
        x_key = step_key(records)
        if x_key is not None and len(series(records, metric_key, x_key)[1]):
            curves[name] = (records, x_key)
    if not curves:
        raise ValueError(f"{out_png}: no run logged {metric_key} with a step")
    per_keys = sorted({k for records, _ in curves.values() for r in records for k in r
                       if _PER_KEY.search(k) and _number(r[k]) is not None})
    panels = ["metric"] + (["per"] if per_keys else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.0 * len(panels) + 0.6), sharex=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, (records, x_key)) in enumerate(sorted(curves.items())):
        color = colors[i % len(colors)]
        bold = name == selected
        chosen = selected_step(records, metric_key)
        for ax, panel in zip(axes[:, 0], panels):
            key = metric_key if panel == "metric" else next((k for k in per_keys if len(series(records, k, x_key)[1])),
                                                             None)
            if key is None:
                continue
            steps, values = series(records, key, x_key)
            if panel == "per":
                values = 100 * values
            ax.plot(steps, values, color=color, linewidth=2.2 if bold else 1.0,
                    label=name + (" (selected)" if bold else ""))
            if chosen is not None and chosen in steps:
                ax.plot([chosen], [values[list(steps).index(chosen)]], "o", color=color, markersize=4)
    axes[0, 0].set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes[0, 0].yaxis.set_major_formatter(plain)
    axes[0, 0].yaxis.set_minor_formatter(plain)
    axes[0, 0].set_ylabel(f"{metric_key}\n(label-free, lower is better)")
    if per_keys:
        axes[1, 0].set_ylabel("PER % (references)")
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2, loc="best")
    axes[-1, 0].set_xlabel(next(iter(curves.values()))[1])
    axes[0, 0].set_title("dots: each run's label-free choice", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png)


def save_figure(fig, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
