"""Render a Summary (asr_gan.results.collect) as RESULTS.md, draw its pictures, write RESULTS.md and RESULTS.json."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asr_gan.results.collect import Selection, Summary, as_number, latest_stage_commands, relative_name

DETAIL_KEYS = ("substitutions", "deletions", "insertions")  # shown as columns when any score has them


# ------------------------------------------------------------------------------------------------- rendering


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """Markdown table; `align` holds one of l/r per column (default left)."""
    marks = ["---:" if (align[i:i + 1] == "r") else "---" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _scores_section(summary: Summary) -> list[str]:
    lines = ["## Error rates", ""]
    if not summary.scores:
        return lines + ["_No scoring result yet (`result.json` from `python -m asr_gan.scoring`)._", ""]
    details = [k for k in DETAIL_KEYS if any(k in s.details for s in summary.scores)]
    header = ["set", "metric", "error rate", "errors / reference tokens", *details, "file"]
    rows = [[s.name, s.metric, f"**{_percent(s.error_rate, 2)}**", f"{s.errors} / {s.ref_tokens}",
             *(_cell(int(s.details[k]) if k in s.details else None) for k in details),
             f"`{relative_name(Path(s.path), Path(summary.experiment))}`"]
            for s in summary.scores]
    return lines + _table(header, rows, "llrr" + "r" * len(details) + "l") + [""]


def _selection_section(selection: Selection) -> list[str]:
    lines = [f"## Label-free model selection: `{selection.name}`", ""]
    chosen = selection.selected_run
    metric = selection.metric_key
    if chosen is None:
        lines.append(f"No run logged `{metric}`; nothing selected (`{selection.path}`).")
    else:
        at = f" at step {chosen['best_step']}" if chosen.get("best_step") is not None else ""
        lines.append(f"Selected run **{selection.selected}**: lowest `{metric}` = "
                     f"{_cell(as_number(chosen.get('best_metric')))}{at}, chosen without any transcription.")
        if as_number(chosen.get("per")) is not None:
            best_per = min((p for r in selection.runs if (p := as_number(r.get("min_per"))) is not None), default=None)
            lines.append(f"Its PER at that record is {_percent(as_number(chosen.get('per')))} (lowest PER any run "
                         f"logged: {_percent(best_per)}); the PER is shown to judge the choice, it played no part "
                         "in it.")
    share = "-" if selection.converged_share is None else f"{100 * selection.converged_share:.0f}%"
    lines += [f"Converged: {share} of {len(selection.runs)} runs "
              f"({selection.convergence_rule or 'rule not given'}).", ""]
    grid_keys = sorted({k for r in selection.runs for k in (r.get("overrides") or {})})
    header = ["run", "seed", *grid_keys, f"best {metric}", "at step", "PER (selected record)", "min PER", "converged",
              "status"]
    rows = []
    for r in selection.runs:
        name = f"**{r.get('name')}** (selected)" if r.get("name") == selection.selected else _cell(r.get("name"))
        converged = {True: "yes", False: "no"}.get(r.get("converged"), "-")
        rows.append([name, _cell(r.get("seed")), *(_cell((r.get("overrides") or {}).get(k)) for k in grid_keys),
                     _cell(as_number(r.get("best_metric"))), _cell(r.get("best_step")),
                     _percent(as_number(r.get("per"))), _percent(as_number(r.get("min_per"))), converged,
                     _cell(r.get("status"))])
    return lines + _table(header, rows, "ll" + "l" * len(grid_keys) + "rrrrll") + [""]


def _segments_section(summary: Summary) -> list[str]:
    if not summary.segment_stats:
        return []
    lines = ["## Input side: segments per reference phone", "",
             "The generator emits one phone per segment and merges repeats, so an utterance needs at least as "
             "many segments as phones (and silences).", ""]
    rows = []
    for s in summary.segment_stats:
        per = s.get("per_utterance") or {}
        spread = (f"{per['median']:.2f} ({per['p10']:.2f}-{per['p90']:.2f})"
                  if all(as_number(per.get(k)) is not None for k in ("median", "p10", "p90")) else "-")
        fewer = as_number(s.get("share_fewer_segments_than_phones"))
        rows.append([s["name"], _cell(s.get("utterances")), f"**{s['segments_per_phone']:.2f}**", spread,
                     "-" if fewer is None else f"{100 * fewer:.1f}%", _cell(as_number(s.get("frames_per_phone")))])
    header = ["segments", "utterances", "segments / phone", "per utterance: median (p10-p90)",
              "utterances with fewer segments than phones", "frames / phone"]
    return lines + _table(header, rows, "lrrrrr") + [""]


def _unit_quality_section(summary: Summary) -> list[str]:
    if not summary.unit_quality:
        return []
    from asr_gan.scoring.frontend_quality import markdown_table

    clusters = sorted({int(r["clusters"]) for r in summary.unit_quality if "clusters" in r})
    return ["## Input side: how phone-like each front-end's units are", "",
            "PNMI of k-means units (fitted on the training voices) against aligned phones, on the training voices "
            "and the held-out test voices, and the frame error of a linear probe trained on the training voices "
            "(`unit_quality.json`, `python -m asr_gan.scoring.frontend_quality`).", "",
            markdown_table(summary.unit_quality, clusters), ""]


def _timings_section(summary: Summary) -> list[str]:
    if not summary.timings:
        return []
    rows = [[t.stage, _cell(t.description), _duration(t.seconds) + (f" (ran {t.runs}x)" if t.runs > 1 else "")]
            for t in summary.timings]
    rows.append(["", "**total**", f"**{_duration(summary.total_seconds)}**"])
    return ["## Stage timings (wall clock, last run of each stage)", "",
            *_table(["stage", "what", "time"], rows, "llr"), ""]


def render_markdown(summary: Summary) -> str:
    """RESULTS.md: headline numbers first, then selection, pictures, input side, timings, settings, commands."""
    name = Path(summary.experiment).name
    version = f"code `{summary.code_version}`" if summary.code_version else "code version unknown (not a git checkout)"
    lines = [f"# Results: {name}", "",
             f"Experiment `{summary.experiment}`, collected {summary.generated}; {version}.", ""]
    lines += _scores_section(summary)
    for selection in summary.selections:
        lines += _selection_section(selection)
    curves = [p for p in summary.pictures if Path(p).name.startswith("curves_")]
    alignments = [p for p in summary.pictures if Path(p).name.startswith("alignment_")]
    if curves:
        lines += ["## Training curves", "", "The dashed line marks the step label-free selection keeps.", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in curves] + [""]
    if alignments:
        lines += ["## Alignments (test utterances)", "",
                  "Reference (blue) and hypothesis phones in time; green hypothesis phones carry the label of the "
                  "reference phone they overlap most, red ones do not.", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in alignments] + [""]
    lines += _unit_quality_section(summary)
    lines += _segments_section(summary)
    lines += _timings_section(summary)
    if summary.settings:
        rows = [[f"`{k}`", f"`{v}`" if v else "(empty)"] for k, v in summary.settings.items()]
        lines += ["## Settings", "", "Options of the last recipe invocation (`settings.txt`); the commands below show "
                  "what each stage ran.", "", *_table(["setting", "value"], rows), ""]
    if summary.commands:
        lines += ["## Commands", "", "The last run of each stage, in stage order: the commands behind the outputs "
                  "on disk (`commands.sh` keeps every run).", "", "<details><summary>commands</summary>", "",
                  "```bash", latest_stage_commands(summary.commands).rstrip("\n"), "```", "", "</details>", ""]
    if summary.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in summary.notes), ""]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "run"


def draw_pictures(summary: Summary, out_dir: Path, alignments: dict[str, Any] | None = None) -> None:
    """Training curves of `summary.curves` and, with `alignments` (manifest, reference_ctm, hypothesis_ctm,
    num), alignment pictures, under `out_dir/pictures/`; failures become notes, not errors."""
    from asr_gan.results.plots import plot_alignments
    from asr_gan.train.curves import plot_training_curves

    pictures = out_dir / "pictures"
    for name, metrics in summary.curves.items():
        metric_key = next((s.metric_key for s in summary.selections if s.metrics_file == metrics), "weighted_lm_ppl")
        try:
            png = plot_training_curves(metrics, pictures / f"curves_{_slug(name)}.png", title=name,
                                       metric_key=metric_key)
        except (ValueError, OSError) as err:
            summary.notes.append(f"training curves of {name}: {err}")
            continue
        summary.pictures.append(relative_name(png, out_dir))
    if alignments:
        try:
            pngs = plot_alignments(alignments["manifest"], alignments["reference_ctm"], alignments["hypothesis_ctm"],
                                   pictures, num=alignments.get("num", 3))
        except (ValueError, OSError) as err:
            summary.notes.append(f"alignment pictures: {err}")
        else:
            summary.pictures += [relative_name(p, out_dir) for p in pngs]


def write_summary(summary: Summary, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `out_dir/RESULTS.md` and `out_dir/RESULTS.json`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "RESULTS.md", out_dir / "RESULTS.json"
    md.write_text(render_markdown(summary), encoding="utf-8")
    data = asdict(summary)
    data["scores"] = [{**asdict(s), "error_rate_percent": round(100 * s.error_rate, 4)} for s in summary.scores]
    js.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    return md, js
