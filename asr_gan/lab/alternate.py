"""Refine a label-free reading of the rows by alternating a decipherment and a CTC student.

Start: one or more `.segments` files (one phone per row), e.g. GAN runs' readings (`asr_gan.lab.row_labels`).
Each start begins one EM run of the decipherment (`asr_gan.lab.decipher`, its `--start-labels`), and the most
likely of them is kept: the decipherment's log-likelihood ranks readings without a transcription, where the
GAN's phone-LM metric does not (docs/gan_investigation.md, "Alternating a decipherment and a student").

Then every round: a CTC student (the GAN's generator shape, `asr_gan.train.ctc --model generator`, or a BiLSTM)
learns the decipherment's merged phones; its greedy transcripts, aligned back to its own rows (one phone per row, as
`asr_gan.scoring.reference_rows` does with references), start the next decipherment. The student
reads the rows' features where the decipherment reads only their k-means clusters, so each fixes some of the
other's errors. The loop stops when a round's decipherment is not more likely than the best so far, and the
most likely round's labels are the result (`train.segments`, `train.phn`).

Every stage is a folder of its own (`start<i>/`, `round<r>/decipher`, `round<r>/student`,
`round<r>/rows.segments`); a rerun reuses the finished ones, so an interrupted run resumes where it stopped
(other settings need another `--out`).
`--labels` adds each stage's PER to the report; nothing is fitted or selected on it.

CLI: python -m asr_gan.lab.alternate --features exp/feats/segments_nopool/train --text exp/text/train_text.phn
        --phones exp/text/phones.txt --gan-config exp/gan.yaml --start-labels run1.segments run2.segments
        --out exp/alternate [--clusters 100 --context next --stay text --rounds 4] [--labels exp/text/train.phn]
        [--context none --order 3: the decipherment follows the text's phone trigram]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from asr_gan.lab import decipher
from asr_gan.scoring.reference_rows import write_reference_rows
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig, train_ctc, write_hypotheses
from asr_gan.train.ctc_data import load_labelled, read_phone_labels, write_phone_labels
from asr_gan.train.ctc_outputs import per_on_common


@dataclass
class AlternateConfig:
    features: str
    text: str
    phones: str
    gan_config: str | None  # the student's generator settings (a GAN run's config.yaml); bilstm needs none
    start_labels: list[str]
    out: str
    clusters: int = 100
    context: str = "next"
    stay: str = "text"
    iterations: int = 100
    rounds: int = 4
    student_model: str = "generator"  # or "bilstm": reads the whole utterance where the generator sees 3 rows
    student_hidden: int = 128  # bilstm: hidden size per direction (one layer)
    student_epochs: int = 15
    upsample: int = 2
    batch_frames: int = 1500
    seed: int = 1
    labels: str | None = None  # references: PER in the report only
    progress: bool = True
    order: int = 2  # the decipherment's phone n-gram: 2, or 3 (its trigram; with context "none" only)


def _decipher(config: AlternateConfig, start: str, out: Path) -> dict:
    """One EM run from `start`, or the report of a finished one in `out`."""
    report_path = out / "report.json"
    if report_path.is_file() and (out / "train.segments").is_file():
        return json.loads(report_path.read_text(encoding="utf-8"))
    # Seed 0 for every stage (not the student's `seed`): the same k-means clusters, so the likelihoods compare.
    return decipher.run(config.features, config.text, config.phones, out, clusters=config.clusters, restarts=1,
                        iterations=config.iterations, seed=0, labels=config.labels, progress=config.progress,
                        start_labels=start, context=config.context, stay=config.stay, order=config.order)


def _student_rows(config: AlternateConfig, reading: Path, out: Path, inventory: PhoneInventory) -> tuple[Path, dict]:
    """Train the student on `reading/train.phn`; write its greedy transcripts aligned to its rows; return the
    `.segments` path and what the report says of the student."""
    rows = out / "rows.segments"
    student = out / "student"
    summary_path = out / "student.json"
    if rows.is_file() and summary_path.is_file():
        return rows, json.loads(summary_path.read_text(encoding="utf-8"))
    ctc = CTCTrainConfig(features=config.features, labels=str(reading / "train.phn"), phones=config.phones,
                         out=str(student), model=config.student_model,
                         gan_config=config.gan_config if config.student_model == "generator" else None,
                         encoder_kwargs={} if config.student_model == "generator" else
                         {"hidden_dim": config.student_hidden, "num_layers": 1},
                         epochs=config.student_epochs, batch_frames=config.batch_frames, upsample=config.upsample,
                         seed=config.seed)
    data = load_labelled(config.features, ctc.labels, inventory)
    result = train_ctc(ctc, data, inventory, None, out=student, progress=config.progress, log_prefix="[student]")
    hyp = student / "train_hyp.phn"
    write_hypotheses(result.model, data, inventory, ctc, hyp)
    written, problems = write_reference_rows(result.checkpoint, config.features, hyp, out / "rows",
                                             progress=config.progress)
    # An utterance the student cannot align keeps the decipherment's own labels, so every row has one.
    aligned = read_phone_labels(rows)
    own = read_phone_labels(reading / "train.segments")
    kept = {u: aligned.get(u, own[u]) for u in own}
    write_phone_labels(rows, kept)
    summary = {"utterances": len(data), "aligned": written, "kept_from_decipherment": len(own) - len(aligned)}
    scored = per_on_common(read_phone_labels(config.labels), read_phone_labels(hyp), inventory.silence) \
        if config.labels else None
    if scored is not None:
        summary["per"] = round(scored[0], 5)
    for problem in problems:
        print(f"[alternate] {problem}", file=sys.stderr)
    summary_path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return rows, summary


def _stage(report: dict) -> dict:
    stage = {"log_likelihood": report["log_likelihoods"][0]}
    for key in ("per_at_start", "per"):  # the start labels' reading and the decipherment's, with --labels
        if key in report:
            stage[key] = report[key]
    return stage


def run(config: AlternateConfig) -> dict:
    """Run the starts and the rounds; writes `report.json`, `report.md` and the kept labels to `config.out`."""
    if not config.start_labels:
        raise ValueError("alternate: give at least one start (--start-labels)")
    for path in config.start_labels:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: start labels not found")
    if config.rounds < 0:
        raise ValueError(f"rounds {config.rounds}: expected 0 or more")
    if config.student_model not in ("generator", "bilstm"):
        raise ValueError(f"student model {config.student_model!r}: expected generator or bilstm")
    if config.order not in (2, 3) or (config.order == 3 and config.context != "none"):
        raise ValueError(f"order {config.order} with context {config.context}: expected order 2, or 3 with "
                         "--context none (the trigram HMM has no next-phone emissions)")
    if config.rounds and config.student_model == "generator" and not config.gan_config:
        raise ValueError("a generator student needs --gan-config (a GAN run's config.yaml with its generator)")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    inventory = PhoneInventory.load(config.phones)
    starts = []
    for i, path in enumerate(config.start_labels):
        try:
            stage = _stage(_decipher(config, path, out / f"start{i}"))
        except ValueError as err:  # labels that do not fit the rows: report, and go on with the other starts
            print(f"[alternate] start {i} skipped: {err}", file=sys.stderr)
            starts.append({"labels": str(path), "folder": f"start{i}", "error": str(err)})
            continue
        starts.append({"labels": str(path), "folder": f"start{i}", **stage})
        print(f"[alternate] start {i} ({path}): log-likelihood {stage['log_likelihood']}", flush=True)
    usable = [i for i, start in enumerate(starts) if "error" not in start]
    if not usable:
        raise ValueError("alternate: no start labels fit the rows of " + config.features)
    selected = max(usable, key=lambda i: starts[i]["log_likelihood"])
    best = {"round": 0, "folder": f"start{selected}", "log_likelihood": starts[selected]["log_likelihood"]}
    rounds = []
    reading = out / best["folder"]
    for r in range(1, config.rounds + 1):
        folder = out / f"round{r}"
        rows, student = _student_rows(config, reading, folder, inventory)
        stage = _stage(_decipher(config, str(rows), folder / "decipher"))
        rounds.append({"round": r, "student": student, **stage})
        print(f"[alternate] round {r}: log-likelihood {stage['log_likelihood']}", flush=True)
        if stage["log_likelihood"] <= best["log_likelihood"]:
            break
        best = {"round": r, "folder": f"round{r}/decipher", "log_likelihood": stage["log_likelihood"]}
        reading = folder / "decipher"
    for name in ("train.segments", "train.phn"):
        shutil.copyfile(out / best["folder"] / name, out / name)
    report = {"features": config.features, "clusters": config.clusters, "context": config.context,
              "order": config.order, "stay": config.stay, "student_model": config.student_model, "starts": starts,
              "selected_start": selected, "rounds": rounds, "kept": best["folder"]}
    if config.labels:
        final = per_on_common(read_phone_labels(config.labels), read_phone_labels(out / "train.phn"),
                              inventory.silence)
        report["per"] = round(final[0], 5) if final else None
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.md").write_text(_markdown(report), encoding="utf-8")
    return report


def _percent(stage: dict, key: str = "per") -> str:
    return f"{100 * stage[key]:.1f}%" if key in stage else "-"


def _markdown(report: dict) -> str:
    lines = ["| stage | start labels | student PER | PER of the start | log-likelihood after EM | PER after EM |",
             "|---|---|---:|---:|---:|---:|"]
    for i, start in enumerate(report["starts"]):
        if "error" in start:
            lines.append(f"| start {i} (skipped: {start['error']}) | {start['labels']} | | | | |")
            continue
        mark = " (selected)" if i == report["selected_start"] else ""
        lines.append(f"| start {i}{mark} | {start['labels']} | | {_percent(start, 'per_at_start')} | "
                     f"{start['log_likelihood']} | {_percent(start)} |")
    for stage in report["rounds"]:
        lines.append(f"| round {stage['round']} | the student's, aligned | {_percent(stage['student'])} | "
                     f"{_percent(stage, 'per_at_start')} | {stage['log_likelihood']} | {_percent(stage)} |")
    lines += ["", f"Kept: `{report['kept']}` (the most likely decipherment)."]
    if report.get("per") is not None:
        lines.append(f"PER of the kept labels: {100 * report['per']:.1f}% (references read for scoring only).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.alternate", description=__doc__.split("\n")[0])
    parser.add_argument("--features", required=True, help="FeatureSet of the rows (e.g. unpooled k-means runs)")
    parser.add_argument("--text", required=True, help="phonemised unpaired text (train_text.phn)")
    parser.add_argument("--phones", required=True, help="phones.txt")
    parser.add_argument("--gan-config", help="a GAN config.yaml: the generator student's settings")
    parser.add_argument("--start-labels", nargs="+", required=True,
                        help="one or more .segments files (one phone per row); the most likely start is kept")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--clusters", type=int, default=100, help="the decipherment's k-means clusters")
    parser.add_argument("--context", choices=["none", "next"], default="next", help="the decipherment's HMM")
    parser.add_argument("--order", type=int, choices=[2, 3], default=2,
                        help="the decipherment's moves follow the text's phone bigram (2) or trigram (3, with "
                             "--context none)")
    parser.add_argument("--stay", default="text", help="the decipherment's self-loop (learn, text or a number)")
    parser.add_argument("--iterations", type=int, default=100, help="EM iterations per decipherment")
    parser.add_argument("--rounds", type=int, default=4, help="most student + decipherment rounds")
    parser.add_argument("--student-model", choices=["generator", "bilstm"], default="generator",
                        help="the CTC student: the GAN's generator shape, or a one-layer BiLSTM")
    parser.add_argument("--student-hidden", type=int, default=128, help="bilstm student: hidden size")
    parser.add_argument("--student-epochs", type=int, default=15)
    parser.add_argument("--upsample", type=int, default=2, help="the student's outputs per row (CTC)")
    parser.add_argument("--batch-frames", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1, help="the student's seed")
    parser.add_argument("--labels", help="reference phones: PER in the report, never used to fit or select")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = AlternateConfig(args.features, args.text, args.phones, args.gan_config, args.start_labels, args.out,
                             args.clusters, args.context, args.stay, args.iterations, args.rounds,
                             args.student_model, args.student_hidden, args.student_epochs, args.upsample,
                             args.batch_frames, args.seed, args.labels, not args.no_progress, args.order)
    try:
        report = run(config)
    except (FileNotFoundError, ValueError) as err:
        print(f"[alternate] error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
