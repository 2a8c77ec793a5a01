"""Collect an experiment folder (`exp/<name>/`) into RESULTS.md and RESULTS.json.

What is read (each optional; what is missing is left out, what is broken is named in the notes):

- error rates per set: `result.json` of `python -m asr_gan.scoring`, with `error_rate`, `errors`, `ref_tokens`
  and `unit` (`phone` / `word`); `metric` (PER / WER) when given, numeric extras (`substitutions`,
  `deletions`, `insertions`, ...) and a `missing` list of unscored utterances are used when present;
- label-free selection: `sweep.json` of `asr_gan.train.sweep.write_report` (`selected`, `selected_run_dir`,
  `metric_key`, `convergence_rule`, `converged_share`, `runs`);
- training curves: `metrics.jsonl` of each sweep's selected run, and of runs outside a sweep (the topline);
- segments per phone: `segment_stats.json` of `python -m asr_gan.features.segment_stats`;
- from `recipes/stages.sh`: `timings.tsv` (`stage<TAB>description<TAB>seconds`; a stage run twice keeps its
  last time), `settings.txt` (`key=value`) and `commands.sh`.

Files are given explicitly (`ResultSpec`) and/or found under the experiment folder (`discover=True`): every
`result.json` carrying the four scoring keys (others, like the CTC trainer's, are skipped), every
`sweep.json`, every `segment_stats.json`, and every `metrics.jsonl` not inside a sweep folder.
Scores found by discovery are named by their folder relative to the experiment (`decode/test`).

Error rates are recomputed as errors / ref_tokens (a fraction in RESULTS.json, percent in RESULTS.md), so a
`result.json` that writes `error_rate` as a fraction or as a percentage reads the same; a disagreement
between the counts and `error_rate` is noted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCORE_KEYS = ("error_rate", "errors", "ref_tokens", "unit")
METRIC_OF_UNIT = {"phone": "PER", "word": "WER", "char": "CER", "character": "CER"}
DETAIL_KEYS = ("substitutions", "deletions", "insertions")  # shown as columns when any score has them
MAX_DISCOVERED_CURVES = 8  # a big sweep has dozens of runs; its selected run is what the reader wants


class ResultFileError(ValueError):
    """A result file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Score:
    """One scoring result. `error_rate` is a fraction (errors / ref_tokens)."""

    name: str
    path: str
    unit: str
    metric: str  # PER, WER, ...
    errors: int
    ref_tokens: int
    error_rate: float
    details: dict[str, float] = field(default_factory=dict)  # numeric extra keys of the file


@dataclass
class Selection:
    """A sweep's label-free choice (sweep.json), with the selected run's metrics file when it exists."""

    name: str
    path: str
    selected: str | None
    metric_key: str
    convergence_rule: str
    converged_share: float | None
    runs: list[dict[str, Any]]
    metrics_file: str | None = None

    @property
    def selected_run(self) -> dict[str, Any] | None:
        return next((r for r in self.runs if r.get("name") == self.selected), None)


@dataclass
class StageTiming:
    stage: str
    description: str
    seconds: float
    runs: int = 1  # times the stage ran (the last one is shown)


@dataclass
class ResultSpec:
    """Which files to include: explicit ones by name, plus discovery under the experiment folder."""

    exp: Path
    scores: dict[str, Path] = field(default_factory=dict)
    sweeps: list[Path] = field(default_factory=list)
    metrics: dict[str, Path] = field(default_factory=dict)
    discover: bool = True


@dataclass
class Summary:
    experiment: str
    generated: str
    code_version: str | None
    scores: list[Score] = field(default_factory=list)
    selections: list[Selection] = field(default_factory=list)
    segment_stats: list[dict[str, Any]] = field(default_factory=list)
    # rows of asr_gan.scoring.frontend_quality (unit_quality.json): front-ends' purity, PNMI, linear probe
    unit_quality: list[dict[str, Any]] = field(default_factory=list)
    timings: list[StageTiming] = field(default_factory=list)
    total_seconds: float = 0.0
    settings: dict[str, str] = field(default_factory=dict)
    commands: str | None = None
    curves: dict[str, str] = field(default_factory=dict)  # name -> metrics.jsonl to plot
    pictures: list[str] = field(default_factory=list)  # relative to the output folder
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- readers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultFileError(f"{path}: not valid JSON ({err})") from None


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def is_score_file(data: Any) -> bool:
    return isinstance(data, dict) and all(k in data for k in SCORE_KEYS)


def read_score(path: str | Path, name: str, notes: list[str] | None = None) -> Score:
    """A scoring result.json as a Score.

    Raises:
        ResultFileError: unreadable, a required key missing, or non-numeric counts (the message names the file).
    """
    path = Path(path)
    data = _read_json(path)
    if not is_score_file(data):
        missing = [k for k in SCORE_KEYS if not isinstance(data, dict) or k not in data]
        raise ResultFileError(f"{path}: not a scoring result (missing {', '.join(missing)}); "
                              "write it with `python -m asr_gan.scoring`")
    errors, ref_tokens, reported = _number(data["errors"]), _number(data["ref_tokens"]), _number(data["error_rate"])
    if errors is None or ref_tokens is None or ref_tokens < 0:
        raise ResultFileError(f"{path}: errors={data['errors']!r}, ref_tokens={data['ref_tokens']!r}: expected counts")
    if ref_tokens > 0:
        rate = errors / ref_tokens
        # The scorer may write a fraction or a percentage; the counts decide which, and say so if neither fits.
        if reported is not None and notes is not None and not (
            math.isclose(reported, rate, abs_tol=5e-4) or math.isclose(reported, 100 * rate, abs_tol=5e-2)
        ):
            notes.append(f"{path}: error_rate {reported:g} disagrees with errors / ref_tokens = {rate:.4f}; "
                         "the counts are used")
    elif reported is not None:
        rate = reported
    else:
        raise ResultFileError(f"{path}: ref_tokens is 0 and error_rate is not a number")
    unit = str(data["unit"])
    details = {k: v for k, raw in data.items() if k not in SCORE_KEYS and (v := _number(raw)) is not None}
    missing = data.get("missing")
    if isinstance(missing, list) and missing and notes is not None:
        notes.append(f"{path}: {len(missing)} reference utterances have no hypothesis (scored as deletions)")
    metric = data.get("metric") if isinstance(data.get("metric"), str) else METRIC_OF_UNIT.get(unit, f"{unit} ER")
    return Score(name=name, path=str(path), unit=unit, metric=metric, errors=int(errors), ref_tokens=int(ref_tokens),
                 error_rate=rate, details=details)


def _resolve_run_dir(sweep_path: Path, selected: str | None, run_dir: str | None) -> Path | None:
    """The selected run's folder: as written (absolute or relative to here), else beside sweep.json."""
    candidates = []
    if run_dir:
        candidates += [Path(run_dir), sweep_path.parent / Path(run_dir).name]
    if selected:
        candidates.append(sweep_path.parent / selected)
    return next((c for c in candidates if c.is_dir()), None)


def read_sweep(path: str | Path, name: str) -> Selection:
    """A sweep.json (asr_gan.train.sweep.write_report) as a Selection; runs sorted by their best metric.

    Raises:
        ResultFileError: unreadable, or without `selected` and `runs`.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or "runs" not in data or "selected" not in data:
        raise ResultFileError(f"{path}: not a sweep report (needs 'selected' and 'runs'); "
                              "written by `python -m asr_gan.train.sweep`")
    runs = [r for r in data.get("runs") or [] if isinstance(r, dict)]
    runs.sort(key=lambda r: (_number(r.get("best_metric")) is None, _number(r.get("best_metric")) or 0.0))
    selection = Selection(
        name=name, path=str(path), selected=data.get("selected"), metric_key=str(data.get("metric_key", "metric")),
        convergence_rule=str(data.get("convergence_rule", "")), converged_share=_number(data.get("converged_share")),
        runs=runs,
    )
    run_dir = _resolve_run_dir(path, selection.selected, data.get("selected_run_dir"))
    if run_dir is not None and (run_dir / "metrics.jsonl").is_file():
        selection.metrics_file = str(run_dir / "metrics.jsonl")
    return selection


def read_timings(path: str | Path) -> list[StageTiming]:
    """timings.tsv rows (`stage<TAB>description<TAB>seconds`), the last run of each stage, in stage order.

    Raises:
        ResultFileError: a row without three fields or with non-numeric seconds (file:line).
    """
    path = Path(path)
    latest: dict[str, StageTiming] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            stage, description, seconds = parts[0], parts[1], float(parts[2])
        except (IndexError, ValueError):
            raise ResultFileError(f"{path}:{lineno}: expected 'stage<TAB>description<TAB>seconds', "
                                  f"got {line!r}") from None
        runs = latest[stage].runs + 1 if stage in latest else 1
        latest[stage] = StageTiming(stage, description, seconds, runs)
    return sorted(latest.values(),
                  key=lambda t: (not t.stage.isdigit(), int(t.stage) if t.stage.isdigit() else 0, t.stage))


def read_settings(path: str | Path) -> dict[str, str]:
    """settings.txt `key=value` lines (values may hold '=')."""
    settings = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            settings[key.strip()] = value
    return settings


_STAGE_HEADER = re.compile(r"^# Stage (\S+?): ")


def latest_stage_commands(commands: str) -> str:
    """commands.sh reduced to its preamble and the last run of each stage, in stage order: the commands that
    made the outputs now on disk (the file itself keeps every run)."""
    preamble: list[str] = []
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in commands.splitlines():
        header = _STAGE_HEADER.match(line)
        if header:
            current = blocks[header.group(1)] = [line]  # a rerun replaces the stage's earlier block
        elif current is None:
            preamble.append(line)
        elif line.strip():
            current.append(line)
    order = sorted(blocks, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    return "\n".join([*[l for l in preamble if l.strip()], *("\n" + "\n".join(blocks[k]) for k in order)]) + "\n"


def code_version(repo: Path = Path(__file__).resolve().parents[2]) -> str | None:
    """`<commit>` of the code, with ` (uncommitted changes)` when tracked files differ; None outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (" (uncommitted changes)" if dirty else "")


# ------------------------------------------------------------------------------------------------- discovery


def _relative_name(path: Path, exp: Path) -> str:
    try:
        return str(path.relative_to(exp)) or "."
    except ValueError:
        return str(path)


def _inside_sweep(path: Path, exp: Path) -> bool:
    """Is `path` within a folder that holds a sweep.json (its runs are shown through the sweep)?"""
    for parent in path.parents:
        if (parent / "sweep.json").is_file():
            return True
        if parent == exp:
            return False
    return False


def collect(spec: ResultSpec) -> Summary:
    """Read everything `spec` asks for (see the module docstring) into a Summary.

    Raises:
        ResultFileError: an explicitly named file is unusable (discovered ones are noted and skipped instead).
        FileNotFoundError: the experiment folder does not exist.
    """
    exp = Path(spec.exp)
    if not exp.is_dir():
        raise FileNotFoundError(f"{exp}: experiment folder not found")
    summary = Summary(experiment=str(exp), generated=dt.datetime.now().isoformat(timespec="seconds"),
                      code_version=code_version())
    notes = summary.notes

    seen: set[Path] = set()
    for name, path in spec.scores.items():
        summary.scores.append(read_score(path, name, notes))
        seen.add(Path(path).resolve())
    for path in spec.sweeps:
        summary.selections.append(read_sweep(path, _relative_name(Path(path).parent, exp)))
        seen.add(Path(path).resolve())

    if spec.discover:
        for path in sorted(exp.rglob("result.json")):
            if path.resolve() in seen:
                continue
            try:
                data = _read_json(path)
            except ResultFileError as err:
                notes.append(f"{err}; left out")
                continue
            if is_score_file(data):  # other result.json files (the CTC trainer's) are not scores
                try:
                    summary.scores.append(read_score(path, _relative_name(path.parent, exp), notes))
                except ResultFileError as err:
                    notes.append(f"{err}; left out")
        for path in sorted(exp.rglob("sweep.json")):
            if path.resolve() in seen:
                continue
            try:
                summary.selections.append(read_sweep(path, _relative_name(path.parent, exp)))
            except ResultFileError as err:
                notes.append(f"{err}; left out")
        for path in sorted(exp.rglob("segment_stats.json")):
            try:
                stats = _read_json(path)
            except ResultFileError as err:
                notes.append(f"{err}; left out")
                continue
            if isinstance(stats, dict) and _number(stats.get("segments_per_phone")) is not None:
                summary.segment_stats.append({"name": _relative_name(path.parent, exp), **stats})

    summary.scores.sort(key=lambda s: (s.metric, s.name))
    for selection in summary.selections:
        if selection.metrics_file:
            summary.curves[f"{selection.name}: {selection.selected}"] = selection.metrics_file
    for name, path in spec.metrics.items():
        if not Path(path).is_file():
            raise ResultFileError(f"{path}: metrics file not found")
        summary.curves[name] = str(path)
    if spec.discover:
        loose = [p for p in sorted(exp.rglob("metrics.jsonl"))
                 if not _inside_sweep(p, exp) and str(p) not in summary.curves.values()]
        for path in loose[:MAX_DISCOVERED_CURVES]:
            summary.curves[_relative_name(path.parent, exp)] = str(path)
        if len(loose) > MAX_DISCOVERED_CURVES:
            notes.append(f"{len(loose)} metrics.jsonl files outside sweeps; curves drawn for the first "
                         f"{MAX_DISCOVERED_CURVES} (pass --metrics NAME=PATH for others)")

    if spec.discover and (exp / "unit_quality.json").is_file():
        try:
            rows = _read_json(exp / "unit_quality.json")
        except ResultFileError as err:
            notes.append(f"{err}; left out")
        else:
            if isinstance(rows, list) and all(isinstance(r, dict) and "frontend" in r for r in rows):
                summary.unit_quality = rows
            else:
                notes.append(f"{exp / 'unit_quality.json'}: not a list of front-end rows; left out")
    if (exp / "timings.tsv").is_file():
        summary.timings = read_timings(exp / "timings.tsv")
        summary.total_seconds = sum(t.seconds for t in summary.timings)
    if (exp / "settings.txt").is_file():
        summary.settings = read_settings(exp / "settings.txt")
    if (exp / "commands.sh").is_file():
        summary.commands = (exp / "commands.sh").read_text(encoding="utf-8")
    return summary


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
             f"`{_relative_name(Path(s.path), Path(summary.experiment))}`"]
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
                     f"{_cell(_number(chosen.get('best_metric')))}{at}, chosen without any transcription.")
        if _number(chosen.get("per")) is not None:
            best_per = min((p for r in selection.runs if (p := _number(r.get("min_per"))) is not None), default=None)
            lines.append(f"Its PER at that record is {_percent(_number(chosen.get('per')))} (lowest PER any run "
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
                     _cell(_number(r.get("best_metric"))), _cell(r.get("best_step")), _percent(_number(r.get("per"))),
                     _percent(_number(r.get("min_per"))), converged, _cell(r.get("status"))])
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
                  if all(_number(per.get(k)) is not None for k in ("median", "p10", "p90")) else "-")
        fewer = _number(s.get("share_fewer_segments_than_phones"))
        rows.append([s["name"], _cell(s.get("utterances")), f"**{s['segments_per_phone']:.2f}**", spread,
                     "-" if fewer is None else f"{100 * fewer:.1f}%", _cell(_number(s.get("frames_per_phone")))])
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
        summary.pictures.append(_relative_name(png, out_dir))
    if alignments:
        try:
            pngs = plot_alignments(alignments["manifest"], alignments["reference_ctm"], alignments["hypothesis_ctm"],
                                   pictures, num=alignments.get("num", 3))
        except (ValueError, OSError) as err:
            summary.notes.append(f"alignment pictures: {err}")
        else:
            summary.pictures += [_relative_name(p, out_dir) for p in pngs]


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
