"""Recipes from corpus to RESULTS: the demo on its tiny corpus (every stage runs, a rerun skips them all, the
shipped bundle transcribes a new file), and TIMIT and LibriSpeech on their synthesised layout fixtures.

Learning itself is pinned where a few CPU seconds can show it: the GAN on the toy decipherment task
(tests/test_gan_train.py), supervised CTC on synthesised speech (tests/test_ctc_training.py), self-training
(tests/test_self_train.py). Here the 12-utterance corpus only has to give numbers in range.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_demo(exp: Path) -> str:
    result = subprocess.run(["bash", "recipes/run_demo.sh", "--size", "tiny", "--stage", "1", "--exp", str(exp),
                             "--gan-updates", "120"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str, str]:
    exp = tmp_path_factory.mktemp("demo") / "exp"
    first = run_demo(exp)
    second = run_demo(exp)
    return exp, first, second


def test_demo_recipe_writes_results_with_per_and_wer_of_every_set(demo):
    exp, first, _ = demo
    results = json.loads((exp / "RESULTS.json").read_text())
    scores = {s["name"]: s for s in results["scores"]}
    for name in ("decode/dev/score_phones", "decode/test/score_phones", "decode/dev/score_words",
                 "decode/test/score_words", "topline/score_test"):
        assert name in scores, sorted(scores)
        assert 0.0 <= scores[name]["error_rate"] <= 2.0 and scores[name]["ref_tokens"] > 0
    assert scores["decode/test/score_words"]["unit"] == "word"
    assert results["selections"], "the sweep's label-free choice is reported"
    markdown = (exp / "RESULTS.md").read_text()
    assert "Label-free model selection" in markdown and "PER" in markdown and "WER" in markdown
    assert list((exp / "pictures").glob("curves_*.png")), "training curves are drawn"
    # Spectrograms with reference (forced alignment by the topline) and hypothesis phones in time.
    assert (exp / "decode" / "test" / "align" / "ref.ctm").is_file()
    assert list((exp / "pictures").glob("alignment_*.png")), "alignment pictures are drawn"
    assert "alignment_" in markdown
    sweep = json.loads((exp / "sweep" / "sweep.json").read_text())
    assert sweep["selected"] and len(sweep["runs"]) == 1  # the baseline, one seed at --size tiny
    for run in sweep["runs"]:
        records = [json.loads(line) for line in Path(run["run_dir"], "metrics.jsonl").read_text().splitlines()]
        assert any("weighted_lm_ppl" in r for r in records) and any("d_total" in r for r in records)
    report = json.loads((exp / "self_train" / "report.json").read_text())
    assert report["rounds"], "self-training reports its rounds"
    for stage in range(1, 15):
        assert f"Stage {stage}:" in first
    # Stage 13: the default front-end (the shipped encoder's layer) beside MFCC, on train and held-out test voices.
    quality = json.loads((exp / "unit_quality.json").read_text())
    assert {(r["frontend"], r["split"]) for r in quality if "pnmi" in r} == {
        ("mfcc", "train"), ("mfcc", "test"), ("encoder", "train"), ("encoder", "test")}
    assert all(0.0 <= r["pnmi"] <= 1.0 for r in quality if "pnmi" in r)
    assert "how phone-like each front-end's units are" in markdown
    # Stage 14: the label-free chain, round by round, scored on dev and test (phones and words), shown in RESULTS.
    chain = json.loads((exp / "refine" / "report.json").read_text())
    assert [r["round"] for r in chain["rounds"]][0] == 0 and chain["final_round"] in range(len(chain["rounds"]))
    assert {"refine/final/score_test_phones", "refine/final/score_test_words", "refine/round0/score_dev_words",
            "refine/round1/score_test_phones"} <= set(scores)
    assert "refine/final/score_test_phones" in markdown
    # It learns without labels: far below the chance level of a recogniser that ignores the audio.
    assert scores["refine/final/score_test_phones"]["error_rate"] < scores["chance/score_test"]["error_rate"] - 0.15
    assert (exp / "feats" / "encoder" / "train").is_dir(), "the demo reads the shipped encoder by default"


def test_demo_recipe_rerun_skips_every_finished_stage(demo):
    _, _, second = demo
    lines = [line for line in second.splitlines() if re.search(r"\] Stage \d+:", line)]
    assert len(lines) == 14 and all("already done, skipping" in line for line in lines), lines


def test_the_demo_bundle_transcribes_a_new_audio_file(demo, tmp_path):
    exp, _, _ = demo
    wav = tmp_path / "new.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "and the lord spake unto moses"], check=True)
    result = subprocess.run([sys.executable, "-m", "asr_gan.decode", str(wav), "--model", str(exp / "bundle"),
                             "--json"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout.splitlines()[0])
    assert decoded["path"] == str(wav) and "phones" in decoded and "words" in decoded


SMOKE = ["--seeds", "1", "--gan-updates", "60", "--gan-conf", "recipes/conf/gan_demo_cpu.yaml", "--topline-epochs", "2",
         "--self-train-rounds", "1", "--self-train-epochs", "2", "--nj", "1", "--stage", "1"]


def run_recipe(script: str, *args: str) -> str:
    result = subprocess.run(["bash", f"recipes/{script}", *args, *SMOKE], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def assert_rerun_skips_every_stage(script: str, *args: str) -> None:
    """TIMIT and LibriSpeech have stages 1-12 (0, set-up, is not rerun here); the demo adds 13 and 14."""
    lines = [line for line in run_recipe(script, *args).splitlines() if re.search(r"\] Stage \d+:", line)]
    assert len(lines) == 12 and all("already done, skipping" in line for line in lines), lines


def score_names(exp: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((exp / "RESULTS.json").read_text())["scores"]}


def test_timit_recipe_runs_to_results_with_39_phone_per(timit_corpus, tmp_path):
    exp = tmp_path / "timit"
    run_recipe("run_timit.sh", "--timit", str(timit_corpus), "--exp", str(exp))
    scores = score_names(exp)
    assert {"decode/dev/score_phones", "decode/test/score_phones", "topline/score_test"} <= set(scores)
    assert not any(s["unit"] == "word" for s in scores.values())  # TIMIT: phones only
    hyp_phones = {p for line in (exp / "decode" / "test" / "hyp.phn").read_text().splitlines()
                  for p in line.split()[1:]}
    inventory = set((exp / "text" / "phones.txt").read_text().split())
    assert hyp_phones <= inventory and "sil" not in hyp_phones
    # The alignment pictures' reference row holds TIMIT's own .PHN times, not a forced alignment.
    from asr_gan.ctm import read_ctm

    true_times, drawn = read_ctm(exp / "data" / "test.ref.ctm"), read_ctm(exp / "decode" / "test" / "align" / "ref.ctm")
    assert drawn and all([p for p, _, _ in drawn[utt]] == [p for p, _, _ in true_times[utt]] for utt in drawn)
    assert all(abs(a[1] - b[1]) < 1e-3 for utt in drawn for a, b in zip(drawn[utt], true_times[utt]))
    assert len(list((exp / "pictures").glob("alignment_*.png"))) == len(drawn)
    assert_rerun_skips_every_stage("run_timit.sh", "--timit", str(timit_corpus), "--exp", str(exp))


def test_librispeech_recipe_runs_to_results_with_wer_per_subset(tmp_path):
    from tests.fixtures.librispeech_layout import LM_TEXT_NAME, make_librispeech_fixture

    corpus = make_librispeech_fixture(tmp_path / "corpus", subsets=("train-clean-100", "dev-clean", "test-clean"))
    exp = tmp_path / "librispeech"
    run_recipe("run_librispeech.sh", "--librispeech", str(corpus), "--lm-text", str(corpus.parent / LM_TEXT_NAME),
               "--min-phone-count", "1", "--exp", str(exp))
    scores = score_names(exp)
    for name in ("decode/dev-clean/score_words", "decode/test-clean/score_words", "decode/test-clean/score_phones",
                 "topline/score_test-clean"):
        assert name in scores, sorted(scores)
    assert list((exp / "pictures").glob("alignment_*.png")), "LibriSpeech has no phone times: forced alignment"
    assert_rerun_skips_every_stage("run_librispeech.sh", "--librispeech", str(corpus), "--lm-text",
                                   str(corpus.parent / LM_TEXT_NAME), "--min-phone-count", "1", "--exp", str(exp))
