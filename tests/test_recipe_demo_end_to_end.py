"""The demo recipe from corpus to RESULTS on the tiny corpus: every stage runs, a rerun skips them all, and the
shipped bundle transcribes a new audio file.

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
    assert list((exp / "pictures").glob("*.png")), "training curves are drawn"
    sweep = json.loads((exp / "sweep" / "sweep.json").read_text())
    assert sweep["selected"] and len(sweep["runs"]) == 2  # baseline and audio cycle
    for run in sweep["runs"]:
        records = [json.loads(line) for line in Path(run["run_dir"], "metrics.jsonl").read_text().splitlines()]
        assert any("weighted_lm_ppl" in r for r in records) and any("d_total" in r for r in records)
    report = json.loads((exp / "self_train" / "report.json").read_text())
    assert report["rounds"], "self-training reports its rounds"
    for stage in range(1, 13):
        assert f"Stage {stage}:" in first


def test_demo_recipe_rerun_skips_every_finished_stage(demo):
    _, _, second = demo
    lines = [line for line in second.splitlines() if re.search(r"\] Stage \d+:", line)]
    assert len(lines) == 12 and all("already done, skipping" in line for line in lines), lines


def test_the_demo_bundle_transcribes_a_new_audio_file(demo, tmp_path):
    exp, _, _ = demo
    wav = tmp_path / "new.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "and the lord spake unto moses"], check=True)
    result = subprocess.run([sys.executable, "-m", "asr_gan.decode", str(wav), "--model", str(exp / "bundle"),
                             "--json"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout.splitlines()[0])
    assert decoded["path"] == str(wav) and "phones" in decoded and "words" in decoded
