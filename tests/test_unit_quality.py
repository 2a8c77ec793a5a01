"""Unit quality (purity, PNMI of k-means units against phone labels) on frames the tests make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asr_gan.features.frontends import FrontendConfig
from asr_gan.features.normalization import Cmvn
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.scoring.unit_quality import ctm_frame_labels, frame_labels, main, measure, splice

PHONES = ["a", "b", "c", "d"]


def utterances(seed: int = 0, count: int = 30) -> list[list[int]]:
    """Phone ids per frame: runs of 3-8 frames of random phones."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        frames: list[int] = []
        while len(frames) < 60:
            frames += [int(rng.integers(len(PHONES)))] * int(rng.integers(3, 9))
        out.append(frames)
    return out


def write_set(path: Path, rows: list[np.ndarray], rate: float = 100.0) -> FeatureSet:
    with FeatureSetWriter(path, rows[0].shape[1], meta={"frame_rate": rate}) as writer:
        for i, r in enumerate(rows):
            writer.add(f"u{i}", r)
    return FeatureSet(path)


def write_labels(path: Path, labels: list[list[str]]) -> Path:
    path.write_text("".join(f"u{i} {' '.join(lab)}\n" for i, lab in enumerate(labels)), encoding="utf-8")
    return path


def test_measure_is_one_for_units_that_determine_the_phone_and_zero_for_independent_ones():
    phones = np.repeat(np.arange(4), 50)
    assert measure(phones * 2 + np.arange(200) % 2, phones, 8, 4) == pytest.approx((1.0, 1.0))
    # every cluster holds each phone equally often: no information
    assert measure(np.tile(np.arange(5), 40), phones, 5, 4) == pytest.approx((0.25, 0.0), abs=1e-9)


def test_phone_like_frames_score_high_and_noise_scores_low(tmp_path):
    utts = utterances()
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(len(PHONES), 6)) * 4
    phone_like = [centres[u] + rng.normal(size=(len(u), 6)) for u in utts]
    noise = [rng.normal(size=(len(u), 6)) for u in utts]
    labels = write_labels(tmp_path / "frames.segments", [[PHONES[p] for p in u] for u in utts])
    reports = {}
    for name, rows in (("phone_like", phone_like), ("noise", noise)):
        write_set(tmp_path / name, rows)
        out = tmp_path / f"{name}.json"
        assert main(["--features", str(tmp_path / name), "--labels", str(labels), "--clusters", "4", "8",
                     "--out", str(out)]) == 0
        reports[name] = json.loads(out.read_text())["results"]
    assert [r["clusters"] for r in reports["noise"]] == [4, 8]
    assert all(r["pnmi"] > 0.85 and r["purity"] > 0.9 for r in reports["phone_like"]), reports
    assert all(r["pnmi"] < 0.1 for r in reports["noise"]), reports


def test_row_labels_spread_over_the_frames_of_each_run_and_a_half_rate_reads_every_second(tmp_path, capsys):
    utts = utterances(count=12)
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(len(PHONES), 5)) * 4
    frames = write_set(tmp_path / "frames", [centres[u] + 0.1 * rng.normal(size=(len(u), 5)) for u in utts])
    # a segmenter whose clusters are the phones: its runs are the phone runs
    pipeline = FeaturePipeline(FrontendConfig(), None, Cmvn(mode="none"), centroids=centres.astype(np.float32))
    pipeline.save(tmp_path / "transform")
    runs = [[PHONES[u[0]]] + [PHONES[b] for a, b in zip(u, u[1:]) if a != b] for u in utts]
    runs[3] = runs[3][:-1]  # one label short: that utterance is named and skipped
    labels = write_labels(tmp_path / "rows.segments", runs)

    skipped: list[str] = []
    spread = frame_labels({f"u{i}": r for i, r in enumerate(runs)}, frames, pipeline, skipped)
    assert skipped == [f"u3: {len(runs[3])} labels for {len(runs[3]) + 1} rows"]
    assert list(spread["u0"]) == [PHONES[p] for p in utts[0]]

    write_set(tmp_path / "half", [(centres[u] + 0.1 * rng.normal(size=(len(u), 5)))[::2] for u in utts], rate=50.0)
    out = tmp_path / "half.json"
    assert main(["--features", str(tmp_path / "half"), "--labels", str(labels), "--label-transform",
                 str(tmp_path / "transform"), "--label-frames", str(tmp_path / "frames"), "--clusters", "4",
                 "--splice", "1", "--out", str(out)]) == 0
    assert "skipped u3" in capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["skipped"] == 1
    # every second frame of the 11 kept utterances, each read with its own phone
    assert result["results"][0]["rows"] == sum((len(u) + 1) // 2 for i, u in enumerate(utts) if i != 3)
    assert result["results"][0]["pnmi"] > 0.8


def test_splice_puts_each_frame_beside_its_neighbours():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert splice(x, 1).tolist() == [[0, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 4, 5]]


def test_missing_labels_and_a_rate_that_does_not_divide_are_named(tmp_path, capsys):
    write_set(tmp_path / "frames", [np.zeros((10, 2), dtype=np.float32)])
    assert main(["--features", str(tmp_path / "frames"), "--labels", str(tmp_path / "none.segments")]) == 1
    assert "none.segments" in capsys.readouterr().err
    write_labels(tmp_path / "l.segments", [["a"] * 10])
    write_set(tmp_path / "odd", [np.zeros((4, 2), dtype=np.float32)], rate=30.0)
    assert main(["--features", str(tmp_path / "odd"), "--labels", str(tmp_path / "l.segments"),
                 "--label-frames", str(tmp_path / "frames")]) == 1
    assert "30.0 Hz does not divide" in capsys.readouterr().err
    assert main(["--features", str(tmp_path / "frames"), "--labels", str(write_labels(tmp_path / "x.segments",
                 [["a"] * 9]))]) == 1
    assert "no utterance has labels" in capsys.readouterr().err


def test_time_marks_label_each_frame_by_its_centre_and_leave_gaps_out(tmp_path, capsys):
    meta = {"frame_rate": 100.0, "frontend": {"kind": "mfcc", "frame_length_ms": 25.0}}
    rng = np.random.default_rng(3)
    with FeatureSetWriter(tmp_path / "frames", 3, meta=meta) as writer:
        writer.add("u0", rng.normal(size=(10, 3)))
        writer.add("u1", rng.normal(size=(400, 3)))
        writer.add("u2", rng.normal(size=(5, 3)))
    frames = FeatureSet(tmp_path / "frames")
    # centres at 12.5, 22.5, ... ms; nothing between 80 and 100 ms
    ctm = {"u0": [("a", 0.0, 0.05), ("b", 0.05, 0.08), ("c", 0.10, 0.20)],
           "u1": [(PHONES[i % 4], i * 0.1, (i + 1) * 0.1) for i in range(41)]}
    skipped: list[str] = []
    labels = ctm_frame_labels(ctm, frames, skipped)
    assert list(labels["u0"]) == ["a"] * 4 + ["b"] * 3 + ["", ""] + ["c"]
    assert skipped == ["u2: not in the CTM"]

    lines = [f"{u} 1 {start:.3f} {end - start:.3f} {p}\n" for u, spans in ctm.items() for p, start, end in spans]
    (tmp_path / "ref.ctm").write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "q.json"
    assert main(["--features", str(tmp_path / "frames"), "--ctm", str(tmp_path / "ref.ctm"), "--clusters", "4",
                 "--out", str(out)]) == 0
    assert "skipped u2: not in the CTM" in capsys.readouterr().err
    assert json.loads(out.read_text())["results"][0]["rows"] == 8 + 400  # the two gap frames left out

    assert main(["--features", str(tmp_path / "frames"), "--ctm", str(tmp_path / "ref.ctm"), "--label-frames",
                 str(tmp_path / "frames")]) == 1
    assert "--label-transform and --label-frames are for --labels" in capsys.readouterr().err
    with FeatureSetWriter(tmp_path / "vad", 3, meta={**meta, "vad": {"threshold": 0.1}}) as writer:
        writer.add("u0", rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="VAD removed frames"):
        ctm_frame_labels(ctm, FeatureSet(tmp_path / "vad"), [])
