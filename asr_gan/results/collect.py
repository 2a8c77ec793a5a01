"""Read an experiment folder (`exp/<name>/`) into a Summary (rendered by asr_gan.results.summary).

What is read (each optional; what is missing is left out, what is broken is named in the notes):

- error rates per set: `result.json` of `python -m asr_gan.scoring`, with `error_rate`, `errors`, `ref_tokens`
  and `unit` (`phone` / `word`); `metric` (PER / WER) when given, numeric extras (`substitutions`,
  `deletions`, `insertions`, ...) and a `missing` list of unscored utterances are used when present;
- label-free selection: `sweep.json` of `asr_gan.train.sweep_report.write_report` (`selected`, `selected_run_dir`,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCORE_KEYS = ("error_rate", "errors", "ref_tokens", "unit")
METRIC_OF_UNIT = {"phone": "PER", "word": "WER", "char": "CER", "character": "CER"}
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


def as_number(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
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
    errors, ref_tokens = as_number(data["errors"]), as_number(data["ref_tokens"])
    reported = as_number(data["error_rate"])
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
    details = {k: v for k, raw in data.items() if k not in SCORE_KEYS and (v := as_number(raw)) is not None}
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
    """A sweep.json (asr_gan.train.sweep_report.write_report) as a Selection; runs sorted by their best metric.

    Raises:
        ResultFileError: unreadable, or without `selected` and `runs`.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or "runs" not in data or "selected" not in data:
        raise ResultFileError(f"{path}: not a sweep report (needs 'selected' and 'runs'); "
                              "written by `python -m asr_gan.train.sweep`")
    runs = [r for r in data.get("runs") or [] if isinstance(r, dict)]
    runs.sort(key=lambda r: (as_number(r.get("best_metric")) is None, as_number(r.get("best_metric")) or 0.0))
    selection = Selection(
        name=name, path=str(path), selected=data.get("selected"), metric_key=str(data.get("metric_key", "metric")),
        convergence_rule=str(data.get("convergence_rule", "")), converged_share=as_number(data.get("converged_share")),
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


def relative_name(path: Path, exp: Path) -> str:
    """`path` relative to `exp` (how RESULTS.md names files), or as given when outside it."""
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
        summary.selections.append(read_sweep(path, relative_name(Path(path).parent, exp)))
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
                    summary.scores.append(read_score(path, relative_name(path.parent, exp), notes))
                except ResultFileError as err:
                    notes.append(f"{err}; left out")
        for path in sorted(exp.rglob("sweep.json")):
            if path.resolve() in seen:
                continue
            try:
                summary.selections.append(read_sweep(path, relative_name(path.parent, exp)))
            except ResultFileError as err:
                notes.append(f"{err}; left out")
        for path in sorted(exp.rglob("segment_stats.json")):
            try:
                stats = _read_json(path)
            except ResultFileError as err:
                notes.append(f"{err}; left out")
                continue
            if isinstance(stats, dict) and as_number(stats.get("segments_per_phone")) is not None:
                summary.segment_stats.append({"name": relative_name(path.parent, exp), **stats})

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
            summary.curves[relative_name(path.parent, exp)] = str(path)
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
