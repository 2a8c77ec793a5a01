"""Results collector (RESULTS.md / RESULTS.json) and pictures (training curves, phone alignments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import soundfile

from asr_gan.ctm import read_ctm
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.results.__main__ import main
from asr_gan.results.collect import (
    ResultFileError,
    ResultSpec,
    collect,
    latest_stage_commands,
    read_score,
    read_timings,
)
from asr_gan.results.plots import hypothesis_matches, plot_alignments
from asr_gan.train.curves import plot_training_curves, read_metrics, selected_step
from asr_gan.train.sweep_plan import SweepConfig, expand_runs
from asr_gan.train.sweep_report import write_report
from asr_gan.train.sweep_results import collect_results, summarise

# ------------------------------------------------------------------------------------------------- fixtures


def gan_metrics(seed: int, best_step: int) -> list[dict]:
    """A GAN-like metrics.jsonl: losses every 10 updates, validation (ppl, PER) every 200; best ppl at best_step."""
    rng = np.random.default_rng(seed)
    records = []
    for step in range(0, 2001, 10):
        records.append({"step": step, "loss_g": 2.0 * math.exp(-step / 800) + 0.1 * rng.random(),
                        "loss_d": 0.7 + 0.05 * rng.standard_normal()})
        if step % 200 == 0:
            ppl = 30.0 + seed + abs(step - best_step) / 20
            records.append({"step": step, "weighted_lm_ppl": ppl, "valid_per": 0.3 + abs(step - best_step) / 5000})
    return records


def write_jsonl(path: Path, records: list[dict], truncated_tail: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text + ('{"step": 2010, "loss_' if truncated_tail else ""))  # a run killed mid-write
    return path


def assert_real_png(path: Path, min_bytes: int = 15_000) -> np.ndarray:
    """A PNG that decodes, is not tiny and is not one flat colour."""
    assert path.is_file() and path.stat().st_size > min_bytes, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05
    return image


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """An experiment folder as the recipe, the sweep, the scorer and segment_stats leave it."""
    exp = tmp_path_factory.mktemp("exp") / "demo"
    sweep_dir = exp / "gan" / "sweep"
    config = SweepConfig(config="gan.yaml", out=str(sweep_dir), seeds=[0, 1], grid={"code_penalty": [0, 4]})
    specs = expand_runs(config.grid, config.seeds)
    for i, spec in enumerate(specs):
        write_jsonl(sweep_dir / spec.name / "metrics.jsonl", gan_metrics(i, best_step=400 * (i + 1)),
                    truncated_tail=(i == 0))
    write_report(summarise(collect_results(specs, {s.name: 0 for s in specs}, config), config), config)

    (exp / "decode" / "test").mkdir(parents=True)
    (exp / "decode" / "test" / "result.json").write_text(json.dumps(
        {"error_rate": 0.25, "errors": 50, "ref_tokens": 200, "unit": "phone", "substitutions": 30,
         "deletions": 15, "insertions": 5, "utterances": 20, "aligned_pairs": [["a", "b"]]}))
    (exp / "decode" / "test_words").mkdir(parents=True)
    # A percentage instead of a fraction reads the same: the counts decide.
    (exp / "decode" / "test_words" / "result.json").write_text(json.dumps(
        {"error_rate": 40.0, "errors": 20, "ref_tokens": 50, "unit": "word"}))
    (exp / "ctc").mkdir()
    (exp / "ctc" / "result.json").write_text(json.dumps({"best_valid_per": 0.2, "best_epoch": 3}))  # not a score

    segments = exp / "feats" / "mfcc" / "segments" / "train"
    segments.mkdir(parents=True)
    (segments / "segment_stats.json").write_text(json.dumps(
        {"utterances": 600, "segments": 32488, "phones": 19873, "segments_per_phone": 1.6348,
         "per_utterance": {"median": 1.63, "p10": 1.45, "p90": 1.88}, "share_fewer_segments_than_phones": 0.0,
         "frames_per_phone": 9.24}))
    (exp / "timings.tsv").write_text("1\tbuild the corpus\t65\n2\ttext side\t12\n3\tMFCC frames\t30\n"
                                     "3\tMFCC frames\t31\n")
    (exp / "settings.txt").write_text("stage=1\nsize=default\nexp=exp/demo\nnote=a=b\n")
    (exp / "commands.sh").write_text(
        "#!/usr/bin/env bash\ncd /repo\n\n# Stage 1: build the corpus (2026-01-01 10:00:00)\n"
        "python -m data_prep.demo\n\n"
        "# Stage 3: MFCC frames (2026-01-01 10:01:00)\npython -m asr_gan.features extract --old\n\n"
        "# Stage 2: text side (2026-01-01 10:02:00)\npython -m asr_gan.text\n\n"
        "# Stage 3: MFCC frames (2026-01-01 10:03:00)\npython -m asr_gan.features extract --new\n")
    return exp


# ---------------------------------------------------------------------------------------------------- readers


def test_score_rate_comes_from_the_counts_whether_error_rate_is_a_fraction_or_a_percentage(experiment, tmp_path):
    notes: list[str] = []
    phone = read_score(experiment / "decode/test/result.json", "test", notes)
    word = read_score(experiment / "decode/test_words/result.json", "test_words", notes)
    assert (phone.metric, phone.error_rate, phone.errors, phone.ref_tokens) == ("PER", 0.25, 50, 200)
    assert phone.details == {"substitutions": 30, "deletions": 15, "insertions": 5, "utterances": 20}
    assert (word.metric, word.error_rate) == ("WER", 0.4)
    assert notes == []

    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"error_rate": 0.9, "errors": 1, "ref_tokens": 10, "unit": "phone"}))
    assert read_score(odd, "odd", notes).error_rate == pytest.approx(0.1)
    assert len(notes) == 1 and str(odd) in notes[0] and "disagrees" in notes[0]

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"error_rate": 0.1, "unit": "phone"}))
    with pytest.raises(ResultFileError, match=r"broken\.json: not a scoring result \(missing errors, ref_tokens\)"):
        read_score(broken, "broken")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultFileError, match=r"bad\.json: not valid JSON"):
        read_score(tmp_path / "bad.json", "bad")


def test_score_reads_what_the_scoring_cli_writes(tmp_path):
    from asr_gan.scoring.__main__ import main as scoring_main

    (tmp_path / "test.phn").write_text("u1 dh ah k ae t\nu2 s ae t\nu3 aa\n")
    (tmp_path / "hyp.phn").write_text("u1 dh ah k eh t\nu2 s ae t ah\n")
    assert scoring_main(["--ref", str(tmp_path / "test.phn"), "--hyp", str(tmp_path / "hyp.phn"),
                         "--out", str(tmp_path / "score")]) == 0
    notes: list[str] = []
    score = read_score(tmp_path / "score" / "result.json", "test", notes)
    # u1: 1 substitution, u2: 1 insertion, u3 missing: 1 deletion, over 9 reference phones.
    assert (score.metric, score.unit, score.errors, score.ref_tokens) == ("PER", "phone", 3, 9)
    assert score.error_rate == pytest.approx(3 / 9)
    assert {k: score.details[k] for k in ("substitutions", "deletions", "insertions")} == \
        {"substitutions": 1, "deletions": 1, "insertions": 1}
    assert notes == [f"{tmp_path / 'score' / 'result.json'}: 1 reference utterances have no hypothesis "
                     "(scored as deletions)"]


def test_timings_keep_the_last_run_of_each_stage_in_stage_order(tmp_path):
    path = tmp_path / "timings.tsv"
    path.write_text("10\tten\t5\n2\ttwo\t1\n2\ttwo again\t3\n")
    timings = read_timings(path)
    assert [(t.stage, t.description, t.seconds, t.runs) for t in timings] == [("2", "two again", 3.0, 2),
                                                                               ("10", "ten", 5.0, 1)]
    path.write_text("1\tno seconds\n")
    with pytest.raises(ResultFileError, match=r"timings\.tsv:1: expected"):
        read_timings(path)


def test_latest_stage_commands_keep_the_last_block_of_each_stage_in_order(experiment):
    text = latest_stage_commands((experiment / "commands.sh").read_text())
    assert "--old" not in text and "--new" in text
    assert text.index("# Stage 1:") < text.index("# Stage 2:") < text.index("# Stage 3:")
    assert text.startswith("#!/usr/bin/env bash\ncd /repo\n")


# ------------------------------------------------------------------------------------------------- collector


def test_collect_discovers_scores_sweep_segments_timings_settings_and_skips_other_result_files(experiment):
    summary = collect(ResultSpec(exp=experiment))
    assert [(s.name, s.metric, s.error_rate) for s in summary.scores] == [("decode/test", "PER", 0.25),
                                                                          ("decode/test_words", "WER", 0.4)]
    (selection,) = summary.selections
    # Run i reaches its lowest ppl, 30 + i, at step 400 (i + 1): run 0 is chosen, at step 400.
    assert selection.name == "gan/sweep" and selection.metric_key == "weighted_lm_ppl"
    assert selection.selected == "code_penalty=0_seed0"
    assert selection.metrics_file.endswith("gan/sweep/code_penalty=0_seed0/metrics.jsonl")
    assert [r["best_metric"] for r in selection.runs] == [30.0, 31.0, 32.0, 33.0]
    assert selection.selected_run["best_step"] == 400
    # runs of a sweep: only the chosen
    assert summary.curves == {"gan/sweep: code_penalty=0_seed0": selection.metrics_file}
    assert [s["name"] for s in summary.segment_stats] == ["feats/mfcc/segments/train"]
    assert [(t.stage, t.seconds) for t in summary.timings] == [("1", 65.0), ("2", 12.0), ("3", 31.0)]
    assert summary.total_seconds == 108.0
    assert summary.settings["note"] == "a=b"
    assert summary.notes == []


def test_explicit_scores_are_named_and_a_broken_one_is_an_error_naming_the_file(experiment, tmp_path):
    spec = ResultSpec(exp=experiment, scores={"TEST": experiment / "decode/test/result.json"}, discover=False)
    summary = collect(spec)
    assert [s.name for s in summary.scores] == ["TEST"] and summary.selections == [] and summary.curves == {}
    broken = tmp_path / "result.json"
    broken.write_text(json.dumps({"unit": "phone"}))
    with pytest.raises(ResultFileError, match=str(broken)):
        collect(ResultSpec(exp=experiment, scores={"x": broken}, discover=False))


def test_results_cli_writes_markdown_json_and_pictures(experiment, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["--exp", str(experiment), "--out", str(out), "--scores",
                 f"main-test={experiment / 'decode/test/result.json'}"]) == 0
    printed = capsys.readouterr().out
    assert "main-test: PER 25.00% (50/200)" in printed and "selected code_penalty=0_seed0" in printed

    md = (out / "RESULTS.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections == ["## Error rates", "## Label-free model selection: `gan/sweep`", "## Training curves",
                        "## Input side: segments per reference phone",
                        "## Stage timings (wall clock, last run of each stage)", "## Settings", "## Commands"]
    assert "| main-test | PER | **25.00%** | 50 / 200 | 30 | 15 | 5 | `decode/test/result.json` |" in md
    assert "| decode/test_words | WER | **40.00%** | 20 / 50 | - | - | - | `decode/test_words/result.json` |" in md
    assert "decode/test |" not in md  # the explicit name replaces the discovered one for the same file
    assert "Selected run **code_penalty=0_seed0**: lowest `weighted_lm_ppl` = 30 at step 400" in md
    assert "| feats/mfcc/segments/train | 600 | **1.63** | 1.63 (1.45-1.88) | 0.0% | 9.24 |" in md
    assert "| 3 | MFCC frames | 0:31 (ran 2x) |" in md and "**1:48**" in md
    assert "--old" not in md and "--new" in md

    data = json.loads((out / "RESULTS.json").read_text())
    assert data["scores"][0]["name"] == "main-test" and data["scores"][0]["error_rate_percent"] == 25.0
    assert data["selections"][0]["selected"] == "code_penalty=0_seed0"
    assert data["total_seconds"] == 108.0
    (picture,) = data["pictures"]
    assert f"]({picture})" in md
    assert_real_png(out / picture)


def test_results_cli_names_a_missing_file():
    with pytest.raises(SystemExit):
        main(["--exp", ".", "--scores", "x=/nonexistent/result.json"])


# ---------------------------------------------------------------------------------------------------- pictures


def test_training_curves_mark_the_label_free_choice_and_survive_a_truncated_line(tmp_path):
    metrics = write_jsonl(tmp_path / "metrics.jsonl", gan_metrics(0, best_step=1200), truncated_tail=True)
    records = read_metrics(metrics)
    assert len(records) == 201 + 11  # the half-written last line is skipped
    assert selected_step(records) == 1200
    early = [{"step": 100, "weighted_lm_ppl": 0.5, "selectable": False}]  # before the run's select_after
    assert selected_step(early + records) == 1200
    png = plot_training_curves(metrics, tmp_path / "curves.png", title="seed 0")
    image = assert_real_png(png)
    assert image.shape[0] > 600  # three panels: losses, metric, PER

    # The GAN loop's own names (no "loss" in them) get a discriminator and a generator panel.
    from asr_gan.train.curves import curve_panels

    gan_log = [{"step": 50 * i, "d_adversarial": 1.5, "d_gradient_penalty": 30.0 / i, "g_adversarial": 0.6,
                "g_smoothness": 0.03, "cycle_audio": 0.9, "updates_per_second": 26.0} for i in range(1, 5)]
    gan_log.append({"step": 200, "weighted_lm_ppl": 140.0, "valid_per": 0.95})
    panels = curve_panels(gan_log)
    assert panels["d_loss"] == ["d_adversarial", "d_gradient_penalty"]
    assert panels["g_loss"] == ["cycle_audio", "g_adversarial", "g_smoothness"]
    assert "updates_per_second" not in sum(panels.values(), [])
    gan_png = plot_training_curves(write_jsonl(tmp_path / "gan.jsonl", gan_log), tmp_path / "gan.png")
    assert assert_real_png(gan_png).shape[0] > image.shape[0]  # four panels

    epochs = write_jsonl(tmp_path / "ctc" / "metrics.jsonl",
                         [{"epoch": e, "train_loss": 3 - e / 3, "valid_per": 0.6 - e / 20} for e in range(1, 9)])
    assert_real_png(plot_training_curves(epochs, tmp_path / "ctc.png"), min_bytes=10_000)
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"note": "nothing numeric"}])
    with pytest.raises(ValueError, match=r"empty\.jsonl: no record with a step"):
        plot_training_curves(empty, tmp_path / "none.png")


def test_ctm_reading_and_time_matching(tmp_path):
    ctm = tmp_path / "ref.ctm"
    ctm.write_text(";; comment\nu1 1 0.30 0.20 b\nu1 1 0.00 0.30 <SIL>\nu1 1 0.50 0.25 aa\n")
    assert read_ctm(ctm) == {"u1": [("<SIL>", 0.0, 0.3), ("b", 0.3, 0.5), ("aa", 0.5, 0.75)]}
    hyp = [("<SIL>", 0.0, 0.28), ("p", 0.28, 0.52), ("aa", 0.52, 0.8)]
    assert hypothesis_matches(read_ctm(ctm)["u1"], hyp) == [True, False, True]
    ctm.write_text("u1 1 zero 0.2 b\n")
    with pytest.raises(ValueError, match=r"ref\.ctm:1: expected"):
        read_ctm(ctm)


def _chirp(seconds: float, seed: int) -> np.ndarray:
    """Harmonic tones stepping in pitch every 0.15 s with silence at both ends: stripes a spectrogram shows."""
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 40 * ((t // 0.15 + seed) % 5)
    wave = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 8))
    envelope = ((t > 0.2) & (t < seconds - 0.2)).astype(float)
    return (0.2 * wave * envelope).astype(np.float32)


def test_alignment_pictures_show_spectrogram_and_both_phone_rows(tmp_path):
    utts, ref_lines, hyp_lines = [], [], []
    phones = ["<SIL>", "dh", "ah", "k", "ae", "t", "s", "ae", "t", "<SIL>"]
    for n in range(4):
        wav = tmp_path / f"u{n}.wav"
        wave = _chirp(1.6, n)
        soundfile.write(wav, wave, 16000)
        utts.append(Utterance(f"u{n}", str(wav), len(wave), 16000, "spk"))
        bounds = np.linspace(0, 1.6, len(phones) + 1)
        for i, phone in enumerate(phones):
            ref_lines.append(f"u{n} 1 {bounds[i]:.3f} {bounds[i + 1] - bounds[i]:.3f} {phone}")
            hyp = "eh" if i == 4 else phone  # one substitution
            shift = 0.03 if 0 < i < len(phones) - 1 else 0.0
            hyp_lines.append(f"u{n} 1 {bounds[i] + shift:.3f} {bounds[i + 1] - bounds[i]:.3f} {hyp}")
    manifest = tmp_path / "test.jsonl"
    write_manifest(manifest, utts)
    (tmp_path / "ref.ctm").write_text("\n".join(ref_lines) + "\n")
    (tmp_path / "hyp.ctm").write_text("\n".join(hyp_lines[: -len(phones)]) + "\n")  # u3's transcript is empty

    pictures = plot_alignments(manifest, tmp_path / "ref.ctm", tmp_path / "hyp.ctm", tmp_path / "pictures", num=3)
    assert [p.name for p in pictures] == ["alignment_u0.png", "alignment_u1.png", "alignment_u2.png"]
    for picture in pictures:
        assert_real_png(picture)
    # An empty transcript has no CTM line; it is still drawn, with an empty hypothesis row.
    empty = plot_alignments(manifest, tmp_path / "ref.ctm", tmp_path / "hyp.ctm", tmp_path / "pictures",
                            utt_ids=["u3"])
    assert_real_png(empty[0])
    (tmp_path / "empty.ctm").write_text("")  # every transcript empty, as an untrained model may give
    assert len(plot_alignments(manifest, tmp_path / "ref.ctm", tmp_path / "empty.ctm", tmp_path / "pictures")) == 3
    with pytest.raises(ValueError, match=r"test\.jsonl: no utterance 'u9'"):
        plot_alignments(manifest, tmp_path / "ref.ctm", tmp_path / "hyp.ctm", tmp_path / "pictures", utt_ids=["u9"])
    (tmp_path / "other.ctm").write_text("x1 1 0.0 0.5 ah\n")
    with pytest.raises(ValueError, match=r"other\.ctm: no utterance of .*ref\.ctm"):
        plot_alignments(manifest, tmp_path / "ref.ctm", tmp_path / "other.ctm", tmp_path / "pictures")

    # Through the collector's CLI the pictures land beside RESULTS.md and are linked from it.
    exp = tmp_path / "exp"
    exp.mkdir()
    assert main(["--exp", str(exp), "--manifest", str(manifest), "--ref-ctm", str(tmp_path / "ref.ctm"),
                 "--hyp-ctm", str(tmp_path / "hyp.ctm"), "--num-alignments", "2"]) == 0
    md = (exp / "RESULTS.md").read_text()
    assert "## Alignments (test utterances)" in md and "](pictures/alignment_u1.png)" in md
    assert "_No scoring result yet" in md


def test_sweep_curves_draw_every_run_that_logged_the_metric_and_refuse_when_none_did(tmp_path):
    from asr_gan.train.curves import plot_sweep_curves

    for name, per in (("a", 0.5), ("b", 0.3)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("".join(
            json.dumps({"step": step, "weighted_lm_ppl": 10.0 / step, "valid_per": per / step}) + "\n"
            for step in (1, 2, 3)))
    runs = {"a": tmp_path / "a" / "metrics.jsonl", "b": tmp_path / "b" / "metrics.jsonl",
            "failed": tmp_path / "failed" / "metrics.jsonl"}
    png = plot_sweep_curves(runs, tmp_path / "pictures" / "sweep.png", selected="b")
    image = matplotlib.image.imread(png)[..., :3]
    for color in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):  # the first two runs' lines (matplotlib's C0, C1)
        close = np.abs(image - np.array(color) / 255).max(-1) < 0.05
        assert close.sum() > 100, f"no line of color {color}"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    with pytest.raises(ValueError, match="no run logged weighted_lm_ppl"):
        plot_sweep_curves({"c": tmp_path / "c" / "metrics.jsonl"}, tmp_path / "none.png")
