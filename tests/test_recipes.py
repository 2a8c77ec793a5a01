"""Recipes end to end up to segments (demo, TIMIT layout, LibriSpeech layout) and the stage machinery.

The recipes run as a user runs them (`bash recipes/run_*.sh ...`) into temporary experiment folders, from
stage 1 (stage 0 is the set-up this test environment already has) to stage 5 (segments; the GAN stages after
it have their own tests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from asr_gan.features.segment_stats import main as segment_stats_main
from asr_gan.features.segment_stats import segment_stats
from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from tests.fixtures.librispeech_layout import LM_TEXT_NAME, make_librispeech_fixture

ROOT = Path(__file__).resolve().parents[1]
# One thread per process: the recipe's Python steps run one at a time on a shared machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_recipe(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(ROOT / "recipes" / script), *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                             f"{result.stderr[-4000:]}")
    return result


def stage_lines(output: str) -> list[str]:
    """The `Stage N: ...` log lines without their time stamps."""
    return [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in output.splitlines()
            if re.match(r"^\[\d\d:\d\d:\d\d\] Stage", line)]


def assert_feature_outputs(exp: Path, frontend: str, splits: list[str], dim: int) -> dict[str, dict]:
    """Frames, transform and segments of every split exist and agree; returns the segment_stats per split."""
    feats = exp / "feats" / frontend
    assert (feats / "transform" / "pipeline.json").is_file()
    stats = {}
    for split in splits:
        frames = FeatureSet(feats / split)
        segments = FeatureSet(feats / "segments" / split)
        assert frames.dim == dim and segments.dim == dim
        assert segments.utt_ids == frames.utt_ids
        assert (segments.lengths < frames.lengths).all() and (segments.lengths > 0).all()
        assert np.isfinite(segments.features).all()
        stats[split] = json.loads((feats / "segments" / split / "segment_stats.json").read_text())
        assert stats[split]["utterances"] == len(segments)
        assert stats[split]["segments"] == int(segments.lengths.sum())
    return stats


# ------------------------------------------------------------------- segments per phone (logged by stage 5)


def test_segment_stats_count_segments_per_reference_phone_and_short_utterances(tmp_path):
    frames = FeatureSetWriter(tmp_path / "frames", dim=2)
    segments = FeatureSetWriter(tmp_path / "segments", dim=2, meta={"source": str(tmp_path / "frames")})
    for utt_id, num_frames, num_segments in (("a", 40, 6), ("b", 30, 2), ("c", 10, 3), ("d", 20, 4)):
        frames.add(utt_id, np.zeros((num_frames, 2)))
        segments.add(utt_id, np.zeros((num_segments, 2)))
    frames.close()
    segments.close()
    # "c" has no phones (left out), "d" no line at all (counted as without labels), "x" is not in the segments.
    (tmp_path / "dev.phn").write_text("a p1 p2 p3\nb p1 p2 p3 p4\nc\nx p1\n")
    stats = segment_stats(tmp_path / "segments", tmp_path / "dev.phn")
    assert (stats.utterances, stats.utterances_without_labels, stats.segments, stats.phones) == (2, 2, 8, 7)
    assert stats.segments_per_phone == pytest.approx(8 / 7)
    assert stats.per_utterance["median"] == pytest.approx((2.0 + 0.5) / 2)
    assert stats.share_fewer_segments_than_phones == 0.5  # "b": 2 segments for 4 phones
    assert (stats.frames, stats.frames_per_phone) == (70, pytest.approx(10.0))

    assert segment_stats_main(["--segments", str(tmp_path / "segments"), "--labels", str(tmp_path / "dev.phn")]) == 0
    assert json.loads((tmp_path / "segments" / "segment_stats.json").read_text())["phones"] == 7
    (tmp_path / "other.phn").write_text("zz p1\n")
    with pytest.raises(ValueError, match=r"segments: none of its 4 utterances has reference phones in .*other\.phn"):
        segment_stats(tmp_path / "segments", tmp_path / "other.phn")
    assert segment_stats_main(["--segments", str(tmp_path / "segments"), "--labels", str(tmp_path / "none.phn")]) == 2


# ------------------------------------------------------------------------------------------- stage machinery


def _toy_recipe(tmp_path: Path) -> Path:
    """A recipe over stages.sh whose stages only write files, to pin the machinery itself."""
    script = tmp_path / "toy.sh"
    script.write_text(textwrap.dedent(f"""\
        set -euo pipefail
        cd {ROOT}
        source recipes/stages.sh
        stage=1; stop_stage=100; exp={tmp_path}/exp; word=hello; fail=no
        recipe_options="stage stop_stage exp word fail"
        parse_options "$@"
        print_settings
        two() {{
          [ -z "$stage_outputs_stale" ] || stage_cmd rm -f "$exp/two.txt"
          [ -f "$exp/two.txt" ] && echo "kept two.txt" || stage_cmd cp "$exp/one.txt" "$exp/two.txt"
          [ "$fail" = no ] || stage_cmd false
          stage_cmd touch "$exp/after_failure_point"
        }}
        ranks() {{
          run_on_gpus 2 bash -c 'echo "gpu $CUDA_VISIBLE_DEVICES: $*" > "$0/rank$CUDA_VISIBLE_DEVICES"' "$exp"
        }}
        run_stage 1 "write $word" bash -c "echo $word > $exp/one.txt"
        run_stage 2 "copy it" two
        run_stage 3 "two ranks" ranks
        """))
    return script


def _toy(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=ENV, timeout=60)


def test_stages_skip_when_done_rerun_on_changed_settings_and_redone_inputs(tmp_path):
    script = _toy_recipe(tmp_path)
    exp = tmp_path / "exp"
    first = _toy(script)
    assert first.returncode == 0, first.stderr
    assert (exp / "two.txt").read_text() == "hello\n"
    assert [line.split(" (log")[0] for line in stage_lines(first.stdout) if "done in" not in line] == \
        ["Stage 1: write hello", "Stage 2: copy it", "Stage 3: two ranks"]
    # run_on_gpus: copy i sees GPU i and gets `--shard i/2` appended, and logs beside the stage log.
    assert [(exp / f"rank{i}").read_text() for i in (0, 1)] == ["gpu 0: --shard 0/2\n", "gpu 1: --shard 1/2\n"]
    assert (exp / "logs" / "stage3.gpu1.log").is_file()

    again = _toy(script)
    assert [line.split(":")[0] for line in stage_lines(again.stdout)] == ["Stage 1", "Stage 2", "Stage 3"]
    assert all("already done, skipping" in line for line in stage_lines(again.stdout))

    # New settings redo stage 1; stage 2, whose input was redone, runs again and starts afresh.
    changed = _toy(script, "--word", "bye")
    lines = stage_lines(changed.stdout)
    assert "Stage 1: settings changed since it was done (was: write hello); running it again" in lines
    assert "Stage 2: stage 1 was redone after it; running it again" in lines
    assert (exp / "two.txt").read_text() == "bye\n" and "kept two.txt" not in changed.stdout

    # A failing command inside a stage function stops the stage there, and the stage is not marked done.
    (exp / "after_failure_point").unlink()
    (exp / ".done" / "2").unlink()
    failed = _toy(script, "--word", "bye", "--fail", "yes")
    assert failed.returncode == 1 and "Stage 2 failed; see" in failed.stdout
    assert not (exp / "after_failure_point").exists() and not (exp / ".done" / "2").exists()
    # After a failure the outputs are kept for resuming (stage_outputs_stale is empty).
    resumed = _toy(script, "--word", "bye")
    assert resumed.returncode == 0 and "kept two.txt" in resumed.stdout

    commands = (exp / "commands.sh").read_text()
    assert commands.startswith("#!/usr/bin/env bash\n")
    assert "bash -c echo\\ hello\\ \\>\\ " in commands and "cp " in commands and "\nfalse\n" in commands
    assert "env CUDA_VISIBLE_DEVICES=1 bash -c" in commands and "--shard 1/2" in commands
    timings = [line.split("\t")[0] for line in (exp / "timings.tsv").read_text().splitlines()]
    assert timings == ["1", "2", "3", "1", "2", "3", "2", "3"]  # the failed run left no timing
    assert (exp / "settings.txt").read_text() == f"stage=1\nstop_stage=100\nexp={exp}\nword=bye\nfail=no\n"


# ---------------------------------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    exp = tmp_path_factory.mktemp("recipes") / "demo"
    return exp, run_recipe("run_demo.sh", "--size", "tiny", "--train-utts", "14", "--stage", "1", "--stop-stage", "5",
                           "--exp", str(exp), "--nj", "1")


def test_demo_recipe_builds_corpus_text_frames_and_segments(demo_run):
    exp, result = demo_run
    assert [line.split(" (log")[0] for line in stage_lines(result.stdout) if "done in" not in line] == [
        "Stage 1: build the TTS demo corpus (tiny, 14 training utterances)",
        "Stage 2: text side: lexicon, phonemised text, phone and word LMs",
        "Stage 3: phone encoder frames (shipped, layer auto, utterance CMVN) of train dev test into "
        f"{exp}/feats/encoder",
        f"Stage 4: fit the segmenter on {exp}/feats/encoder/train (PCA 0, 64 clusters, pool true)",
        f"Stage 5: segments of train dev test (transform of {exp}/feats/encoder, PCA 0, 64 clusters, pool true), "
        "segments per phone",
    ]
    for path in ("data/train.jsonl", "data/test.jsonl", "text/phones.txt", "text/phone_lm.bin", "text/word_lm.bin",
                 "text/dev.phn"):
        assert (exp / path).is_file(), path
    stats = assert_feature_outputs(exp, "encoder", ["train", "dev", "test"], dim=192)  # the shipped encoder's width
    # The chosen segmenter keeps every utterance above one segment per reference phone (run_demo.sh's note).
    for split, s in stats.items():
        assert 1.1 < s["segments_per_phone"] < 2.5, (split, s["segments_per_phone"])
        assert s["share_fewer_segments_than_phones"] == 0.0
    assert "segments per reference phone" in (exp / "logs" / "stage5.log").read_text()

    commands = (exp / "commands.sh").read_text()
    assert commands.count("-m asr_gan.features extract ") == 3 and commands.count("-m asr_gan.features segment ") == 3
    assert "--clusters 64 --pool" in commands and "--frontend encoder" in commands
    assert [line.split("\t")[0] for line in (exp / "timings.tsv").read_text().splitlines()] == ["1", "2", "3", "4", "5"]
    settings = (exp / "settings.txt").read_text()
    assert "size=tiny" in settings and "train_utts=14" in settings and "clusters=64" in settings
    assert "features=encoder" in settings


def test_demo_recipe_rerun_skips_every_stage_and_the_collector_reports_it(demo_run, tmp_path):
    exp, _ = demo_run
    rerun = run_recipe("run_demo.sh", "--size", "tiny", "--train-utts", "14", "--stage", "1", "--stop-stage", "5",
                       "--exp", str(exp), "--nj", "1")
    lines = stage_lines(rerun.stdout)
    assert [line.split(":")[0] for line in lines] == [f"Stage {n}" for n in range(1, 6)]
    assert all("already done, skipping" in line for line in lines)
    assert len((exp / "timings.tsv").read_text().splitlines()) == 5

    from asr_gan.results.__main__ import main

    assert main(["--exp", str(exp), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert "| 5 | segments of train dev test" in md and "**total**" in md
    assert "| feats/encoder/segments/train | 14 |" in md
    assert "-m asr_gan.features fit-transform" in md


def test_demo_recipe_matches_text_silences_to_the_audio(demo_run, tmp_path):
    exp, _ = demo_run
    matched = tmp_path / "demo"
    shutil.copytree(exp / "data", matched / "data")
    result = run_recipe("run_demo.sh", "--size", "tiny", "--train-utts", "14", "--stage", "2", "--stop-stage", "2",
                        "--exp", str(matched), "--text-silences", "audio")
    assert "with the training audio's silences" in stage_lines(result.stdout)[0]
    stats = json.loads((matched / "text" / "audio_silences.json").read_text())
    assert stats["utterances"] == 14 and stats["trailing"] > 0.9  # every demo voice ends in a pause
    silence = json.loads((matched / "text" / "prep_report.json").read_text())["silence"]
    assert silence["start"] == stats["leading"] and silence["end"] == stats["trailing"]
    assert silence["between_words"] < 0.25  # TTS rarely pauses inside a sentence
    lines = [line.split() for line in (matched / "text" / "train_text.phn").read_text().splitlines()]
    share_leading = sum(line[0] == "<SIL>" for line in lines) / len(lines)
    assert abs(share_leading - stats["leading"]) < 0.05
    # The default keeps wav2vec-U's silences: every sentence of the shared run starts and ends with one.
    assert all(line.startswith("<SIL> ") for line in (exp / "text" / "train_text.phn").read_text().splitlines())
    assert run_recipe("run_demo.sh", "--text-silences", "maybe", check=False).returncode == 2


def test_demo_recipe_refuses_an_unknown_front_end_or_a_missing_encoder_checkpoint(tmp_path):
    bad = run_recipe("run_demo.sh", "--features", "wav2vec", "--exp", str(tmp_path / "a"), check=False)
    assert bad.returncode == 2 and "expected encoder or mfcc" in bad.stderr
    missing = run_recipe("run_demo.sh", "--encoder-checkpoint", str(tmp_path / "none.pt"), "--exp",
                         str(tmp_path / "b"), check=False)
    assert missing.returncode == 2 and "none.pt: no such file" in missing.stderr
    anchor = run_recipe("run_demo.sh", "--refine-anchor", "2", "--exp", str(tmp_path / "c"), check=False)
    assert anchor.returncode == 2 and "--refine-anchor 2: expected a number from 0 to 1" in anchor.stderr


def test_demo_recipe_speaks_every_split_with_the_voices_given(tmp_path):
    exp = tmp_path / "one_voice"
    result = run_recipe("run_demo.sh", "--size", "tiny", "--train-utts", "6", "--stage", "1", "--stop-stage", "1",
                        "--exp", str(exp), "--voices", "espeak-ng:en-us espeak-ng:en-gb")
    assert "Stage 1: build the TTS demo corpus (tiny, 6 training utterances, voices espeak-ng:en-us espeak-ng:en-gb)" \
        in stage_lines(result.stdout)[0]
    for split in ("train", "dev", "test"):
        rows = [json.loads(line) for line in (exp / "data" / f"{split}.jsonl").read_text().splitlines()]
        assert rows and {row["speaker"] for row in rows} <= {"es-en-us", "es-en-gb"}, split
    assert 'voices=espeak-ng:en-us espeak-ng:en-gb' in (exp / "settings.txt").read_text()
    bad = run_recipe("run_demo.sh", "--size", "tiny", "--stage", "1", "--stop-stage", "1",
                     "--exp", str(tmp_path / "bad"), "--voices", "espeak-ng:no-such-voice", check=False)
    assert bad.returncode != 0 and "no-such-voice" in bad.stdout + bad.stderr


# ---------------------------------------------------------------------------------------------------- TIMIT


@pytest.fixture(scope="module")
def timit_run(timit_corpus, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("recipes") / "timit"
    run_recipe("run_timit.sh", "--timit", str(timit_corpus), "--stage", "1", "--stop-stage", "5", "--nj", "1",
               "--exp", str(exp))
    return exp


def test_timit_recipe_prepares_phone_mode_text_and_mfcc_segments(timit_run):
    exp = timit_run
    assert (exp / "data" / "train_text.phn").is_file()
    phones = (exp / "text" / "phones.txt").read_text().split()
    assert "sil" in phones and "<SIL>" not in phones and len(phones) <= 39
    assert (exp / "text" / "phone_lm.bin").is_file() and not (exp / "text" / "word_lm.bin").exists()
    stats = assert_feature_outputs(exp, "mfcc", ["train", "dev", "test"], dim=39)
    assert {s: v["utterances"] for s, v in stats.items()} == {"train": 32, "dev": 16, "test": 16}
    assert all(v["segments_per_phone"] > 1.1 for v in stats.values())
    assert "--clusters 32" in (exp / "commands.sh").read_text()


def test_unit_quality_places_the_timit_recipe_frames_in_the_phn_times(timit_run, tmp_path):
    from asr_gan.scoring.unit_quality import main as unit_quality

    frames = timit_run / "feats" / "mfcc" / "train"
    out = tmp_path / "units.json"
    assert unit_quality(["--features", str(frames), "--ctm", str(timit_run / "data" / "train.ref.ctm"),
                         "--clusters", "8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    result = report["results"][0]
    assert report["skipped"] == 0 and 0 < result["pnmi"] < 1
    # every frame inside the .PHN spans (all but the dropped `q`s and the window's overhang) is measured
    assert 0.9 * FeatureSet(frames).lengths.sum() < result["rows"] <= FeatureSet(frames).lengths.sum()


def test_timit_recipe_ssl_frames_from_a_local_checkpoint_replace_the_mfcc_stages(timit_run):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    checkpoint = timit_run.parent / "tiny_wav2vec2"
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(config).eval().save_pretrained(checkpoint)

    result = run_recipe("run_timit.sh", "--stage", "3", "--stop-stage", "4", "--features", "ssl",
                        "--ssl-checkpoint", str(checkpoint), "--layer", "1", "--ngpu", "0", "--clusters", "8",
                        "--nj", "1", "--exp", str(timit_run))
    assert "Stage 3: settings changed since it was done" in result.stdout
    for split, count in (("train", 32), ("dev", 16), ("test", 16)):
        frames = FeatureSet(timit_run / "feats" / "ssl" / split)
        assert (len(frames), frames.dim, frames.dtype) == (count, 16, np.float16)
        assert frames.meta["frontend"]["layer"] == 1 and frames.meta["cmvn"] == "none"
    pipeline = json.loads((timit_run / "feats" / "ssl" / "transform" / "pipeline.json").read_text())
    assert (pipeline["clusters"], pipeline["pca_dim"]) == (8, None)  # PCA 512 is capped: 16 dims stay
    commands = (timit_run / "commands.sh").read_text()
    assert (f"--ssl-checkpoint {checkpoint} --layer 1 --cmvn none --dtype float16 --num-workers 1 "
            "--device cpu") in commands
    assert (timit_run / "feats" / "mfcc" / "segments" / "train" / "meta.json").is_file()  # MFCC outputs stay


def test_timit_recipe_names_what_is_missing(tmp_path):
    result = run_recipe("run_timit.sh", "--exp", str(tmp_path / "x"), check=False)
    assert result.returncode == 2 and "pass --timit /path/to/TIMIT" in result.stderr
    result = run_recipe("run_timit.sh", "--timit", "/x", "--features", "ssl", "--exp", str(tmp_path / "x"), check=False)
    assert result.returncode == 2 and "--features ssl needs --ssl-checkpoint" in result.stderr
    result = run_recipe("run_timit.sh", "--timit", "/x", "--bogus", "1", check=False)
    assert result.returncode == 2 and "unknown option --bogus" in result.stderr


# ----------------------------------------------------------------------------------------------- LibriSpeech


def test_librispeech_recipe_word_mode_text_and_vad_frames(tmp_path_factory):
    corpus = make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"),
                                      subsets=("train-clean-100", "dev-clean", "test-clean"))
    exp = tmp_path_factory.mktemp("recipes") / "librispeech"
    run_recipe("run_librispeech.sh", "--librispeech", str(corpus), "--lm-text", str(corpus.parent / LM_TEXT_NAME),
               "--min-phone-count", "1", "--stage", "1", "--stop-stage", "5", "--nj", "1", "--exp", str(exp),
               "--text-silences", "audio")
    subsets = ["train-clean-100", "dev-clean", "test-clean"]
    for subset in subsets:
        assert (exp / "data" / f"{subset}.jsonl").is_file() and (exp / "text" / f"{subset}.wrd").is_file()
    for path in ("text/lexicon.txt", "text/word_lm.bin", "text/phone_lm.bin", "data/text_corpus.txt"):
        assert (exp / path).is_file(), path
    stats = assert_feature_outputs(exp, "mfcc", subsets, dim=39)
    assert all(s["utterances"] == 4 for s in stats.values())
    frames = FeatureSet(exp / "feats" / "mfcc" / "train-clean-100")
    assert frames.meta["vad"] is not None
    # Silence removal shortens the audio: fewer frames than 100 per second of the recordings.
    assert frames.lengths.sum() < 100 * frames.meta["audio_seconds"] - 10
    pipeline = json.loads((exp / "feats" / "mfcc" / "transform" / "pipeline.json").read_text())
    assert pipeline["vad"] is not None  # decoding applies the same silence removal
    assert "--vad" in (exp / "commands.sh").read_text()
    # The text's silences were measured on the training audio as the frontend reads it: after the VAD.
    stats = json.loads((exp / "text" / "audio_silences.json").read_text())
    assert stats["vad"] is True and stats["utterances"] == 4
    assert json.loads((exp / "text" / "prep_report.json").read_text())["silence"]["start"] == stats["leading"]


@pytest.mark.parametrize("script", ["run_timit.sh", "run_librispeech.sh"])
def test_training_profile_sets_the_auto_sizes_and_explicit_values_win(script, tmp_path):
    def settings(*args: str) -> dict[str, str]:
        exp = tmp_path / "exp"
        # Stage 99: past every stage, so only the settings are resolved and printed.
        run_recipe(script, "--stage", "99", "--exp", str(exp), *args)
        return dict(line.split("=", 1) for line in (exp / "settings.txt").read_text().splitlines())

    cpu = settings("--profile", "cpu")
    assert (cpu["gan_updates"], cpu["seeds"], cpu["gan_conf"]) == ("2000", "1 2", "recipes/conf/gan_demo_cpu.yaml")
    assert (cpu["self_train_hidden"], cpu["self_train_layers"]) == ("96", "1")
    gpu = settings("--profile", "gpu", "--features", "ssl", "--seeds", "7")
    assert (gpu["gan_updates"], gpu["seeds"], gpu["gan_conf"]) == ("150000", "7", "recipes/conf/gan_wav2vec_u.yaml")
    assert settings("--profile", "gpu")["gan_conf"] == "recipes/conf/gan_mfcc.yaml"
    # This machine (and CI) has no GPU: auto picks the CPU sizes.
    assert settings()["profile"] == ("gpu" if subprocess.run("nvidia-smi -L", shell=True,
                                                             capture_output=True).returncode == 0
                                     else "cpu")
    bad = run_recipe(script, "--stage", "99", "--exp", str(tmp_path / "bad"), "--profile", "tpu", check=False)
    assert bad.returncode == 2 and "--profile tpu" in bad.stderr
    # The decipherment warm start is a lab tool now (docs/running.md), not a recipe option.
    bad = run_recipe(script, "--stage", "99", "--exp", str(tmp_path / "bad"), "--decipher-clusters", "8", check=False)
    assert bad.returncode != 0 and "--decipher-clusters" in bad.stderr
