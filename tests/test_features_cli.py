"""`python -m asr_gan.features` on a tiny espeak-ng corpus: bad files skipped, resume, ranks, decode-time equality."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr_gan.audio import load_audio
from asr_gan.features.__main__ import main
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.storage import FeatureSet
from asr_gan.manifest import Utterance, write_manifest

torch.set_num_threads(1)

SENTENCES = ["seven oranges", "a big blue cat", "the sun is hot", "green trees grow", "we sing songs"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("corpus")
    utts = []
    for i, text in enumerate(SENTENCES):
        path = root / f"utt{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        info = soundfile.info(str(path))
        utts.append(Utterance(utt_id=f"utt{i}", audio=str(path), num_samples=info.frames,
                              sample_rate=info.samplerate, speaker=f"spk{i % 2}", words=text))
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00not really a wave file")
    utts.insert(2, Utterance(utt_id="corrupt", audio=str(corrupt), num_samples=16000, sample_rate=16000,
                             speaker="spk0"))
    manifest = root / "train.jsonl"
    write_manifest(manifest, utts)
    return root, manifest


def _extract(manifest, out, *extra):
    return main(["extract", "--manifest", str(manifest), "--out", str(out), "--shard-size", "2", *extra])


def test_extract_skips_corrupt_file_and_counts_it(corpus, tmp_path, capsys):
    _, manifest = corpus
    assert _extract(manifest, tmp_path / "train", "--vad") == 0
    fs = FeatureSet(tmp_path / "train")
    assert fs.utt_ids == [f"utt{i}" for i in range(5)]
    assert fs.dim == 39 and fs.meta["num_skipped"] == 1 and fs.meta["frame_rate"] == 100.0
    skipped = [json.loads(line) for line in (tmp_path / "train" / "skipped.jsonl").read_text().splitlines()]
    assert skipped[0]["utt_id"] == "corrupt" and "corrupt.wav" in skipped[0]["error"]
    captured = capsys.readouterr()
    assert "skipped corrupt" in captured.out + captured.err
    assert not (tmp_path / "train" / "shards").exists()
    # Each utterance: about one frame per 10 ms of kept audio.
    seconds = load_audio(Path(corpus[0]) / "utt0.wav").shape[0] / 16000
    assert 0.3 * seconds * 100 < fs.lengths[0] <= seconds * 100


def test_resume_redoes_only_unfinished_shards_and_matches_one_run(corpus, tmp_path):
    _, manifest = corpus
    assert _extract(manifest, tmp_path / "once", "--cmvn", "speaker") == 0
    out = tmp_path / "resumed"
    # Rank 0 of 2 finishes shards 0 and 2 and cannot merge.
    assert _extract(manifest, out, "--cmvn", "speaker", "--shard", "0/2") == 0
    assert not (out / "meta.json").exists()
    assert [p.name for p in sorted((out / "shards").iterdir())] == ["00000", "00002"]
    # A killed rank 1 left shard 1 half written (no meta.json).
    partial = out / "shards" / "00001"
    partial.mkdir()
    (partial / "features.npy").write_bytes(b"half")
    done_before = (out / "shards" / "00000" / "features.npy").stat().st_mtime_ns
    assert _extract(manifest, out, "--cmvn", "speaker", "--keep-shards") == 0
    assert (out / "shards" / "00000" / "features.npy").stat().st_mtime_ns == done_before
    once, resumed = FeatureSet(tmp_path / "once"), FeatureSet(out)
    assert resumed.utt_ids == once.utt_ids
    np.testing.assert_array_equal(np.asarray(resumed.features), np.asarray(once.features))
    # Speaker CMVN: statistics saved, each speaker's frames normalised to zero mean.
    assert (out / "cmvn.npz").is_file()
    spk0 = np.concatenate([resumed.get(u) for u in ["utt0", "utt2", "utt4"]])
    np.testing.assert_allclose(spk0.mean(axis=0), 0, atol=1e-4)


def test_decode_time_pipeline_reproduces_training_frames_and_segments(corpus, tmp_path, capsys):
    root, manifest = corpus
    feats, transform, segments = tmp_path / "train", tmp_path / "transform", tmp_path / "segments"
    assert _extract(manifest, feats, "--vad", "--cmvn", "speaker", "--num-workers", "2") == 0
    assert main(["fit-transform", "--features", str(feats), "--out", str(transform),
                 "--pca-dim", "12", "--clusters", "6"]) == 0
    assert main(["segment", "--transform", str(transform), "--features", str(feats), "--out", str(segments)]) == 0
    assert "segment/frame ratio" in capsys.readouterr().out
    frames, segs = FeatureSet(feats), FeatureSet(segments)
    assert segs.dim == 12 and segs.utt_ids == frames.utt_ids
    assert 0 < segs.meta["segment_frame_ratio"] < 0.5  # merging runs, then pooling pairs
    pipeline = FeaturePipeline.load(transform)
    for i in (1, 4):
        wave = load_audio(root / f"utt{i}.wav")
        decoded = pipeline.frames(wave, speaker=f"spk{i % 2}")
        np.testing.assert_allclose(decoded, frames.get(f"utt{i}"), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(pipeline.segments(decoded), segs.get(f"utt{i}"), rtol=1e-4, atol=1e-4)


def test_cli_runs_as_a_module_with_fbank_and_no_segmentation(corpus, tmp_path):
    _, manifest = corpus
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "asr_gan.features"]
    subprocess.run([*cmd, "extract", "--manifest", str(manifest), "--out", str(tmp_path / "f"), "--frontend",
                    "kaldi_fbank", "--num-mels", "40", "--cmvn", "global"], check=True, env=env, capture_output=True)
    # The other steps in-process: a second interpreter start would only cost time.
    assert main(["fit-transform", "--features", str(tmp_path / "f"), "--out", str(tmp_path / "t"),
                 "--pca-dim", "0", "--clusters", "0", "--no-pool"]) == 0
    assert main(["segment", "--transform", str(tmp_path / "t"), "--features", str(tmp_path / "f"),
                 "--out", str(tmp_path / "s")]) == 0
    frames, segs = FeatureSet(tmp_path / "f"), FeatureSet(tmp_path / "s")
    assert frames.dim == 40
    np.testing.assert_array_equal(np.asarray(segs.features), np.asarray(frames.features))  # frame level
    np.testing.assert_allclose(np.asarray(frames.features).mean(axis=0), 0, atol=1e-4)  # global CMVN


def test_torchrun_rank_and_world_size_select_shards(monkeypatch):
    from asr_gan.features.extract import my_shards

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert my_shards(7, None) == [1, 4]
    assert my_shards(7, "0/2") == [0, 2, 4, 6]  # --shard wins over the environment
    with pytest.raises(ValueError, match="expected i/n"):
        my_shards(7, "first")
    with pytest.raises(ValueError, match="rank must be"):
        my_shards(7, "2/2")


def test_second_rank_finishing_last_merges(corpus, tmp_path):
    _, manifest = corpus
    out = tmp_path / "ranks"
    assert _extract(manifest, out, "--shard", "1/2") == 0
    assert not (out / "meta.json").exists()
    assert _extract(manifest, out, "--shard", "0/2") == 0
    assert FeatureSet(out).utt_ids == [f"utt{i}" for i in range(5)]


def test_extract_refuses_a_folder_made_with_other_settings(corpus, tmp_path, capsys):
    _, manifest = corpus
    out = tmp_path / "train"
    assert _extract(manifest, out, "--cmvn", "utterance") == 0
    before = np.asarray(FeatureSet(out).features).copy()
    capsys.readouterr()
    # The same settings reuse the finished folder; other ones are an error that says what differs.
    assert _extract(manifest, out, "--cmvn", "utterance", "--num-workers", "2") == 0
    assert "already extracted" in capsys.readouterr().out
    assert _extract(manifest, out, "--cmvn", "speaker") == 2
    err = capsys.readouterr().err
    assert str(out) in err and "cmvn: 'utterance' there, 'speaker' asked" in err
    assert _extract(manifest, out, "--num-ceps", "20") == 2
    assert "frontend" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(FeatureSet(out).features), before)  # nothing was touched
    # A half-extracted folder is resumed only with its own settings and shard size.
    half = tmp_path / "half"
    assert _extract(manifest, half, "--shard", "0/2") == 0 and not (half / "meta.json").exists()
    assert _extract(manifest, half, "--no-deltas") == 2
    assert "half extracted" in capsys.readouterr().err
    assert main(["extract", "--manifest", str(manifest), "--out", str(half), "--shard-size", "3"]) == 2
    assert "shard_size: 2 there, 3 asked" in capsys.readouterr().err
    assert _extract(manifest, half) == 0 and (half / "meta.json").is_file()
