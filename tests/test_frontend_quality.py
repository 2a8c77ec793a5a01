"""frontend_quality: units fitted on training voices, measured on training and held-out ones, and a linear probe;
RESULTS.md shows its table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asr_gan.results.collect import ResultSpec, collect
from asr_gan.results.summary import render_markdown
from asr_gan.scoring.frontend_quality import FrontendSpec, main, markdown_table
from tests.test_unit_quality import PHONES, utterances, write_labels, write_set


def test_phone_like_frontend_beats_noise_on_held_out_frames_and_the_probe_reads_it(tmp_path):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(len(PHONES), 8)) * 4
    train, test = utterances(seed=0), utterances(seed=1, count=12)
    args = ["--out", str(tmp_path / "uq.json"), "--clusters", "4", "8"]
    for split, utts in (("train", train), ("test", test)):
        shift = 0.0 if split == "train" else 0.5  # a held-out voice: the same phones, a little displaced
        write_set(tmp_path / "like" / split, [centres[u] + shift + rng.normal(size=(len(u), 8)) for u in utts])
        write_set(tmp_path / "noise" / split, [rng.normal(size=(len(u), 8)) for u in utts])
        write_labels(tmp_path / f"{split}.segments", [[PHONES[p] for p in u] for u in utts])
    args += ["--train-labels", str(tmp_path / "train.segments"), "--test-labels", str(tmp_path / "test.segments"),
             "--label-frames", str(tmp_path / "like" / "train"), str(tmp_path / "like" / "test")]
    for name in ("like", "noise"):
        args += ["--frontend", f"{name}:-:{tmp_path / name / 'train'}:{tmp_path / name / 'test'}"]
    assert main(args) == 0
    rows = json.loads((tmp_path / "uq.json").read_text())
    pnmi = {(r["frontend"], r["split"], r["clusters"]): r["pnmi"] for r in rows if "pnmi" in r}
    assert pnmi[("like", "test", 8)] > 0.8 and pnmi[("noise", "test", 8)] < 0.1
    probe = {r["frontend"]: r["probe_frame_error"] for r in rows if "probe_frame_error" in r}
    assert probe["like"] < 5.0 and probe["noise"] > 50.0
    assert set(rows[0]) == {"frontend", "layer", "clusters", "split", "purity", "pnmi"}
    # The experiment's RESULTS.md renders the same rows.
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "unit_quality.json").write_text(json.dumps(rows))
    markdown = render_markdown(collect(ResultSpec(exp=tmp_path / "exp")))
    assert "how phone-like each front-end's units are" in markdown
    assert markdown_table(rows, [4, 8]).splitlines()[2].startswith("| like |  | ")


def test_frontend_spec_names_its_layer_and_refuses_a_malformed_one():
    assert FrontendSpec.parse("encoder:4:a/train:a/test") == FrontendSpec("encoder", 4, "a/train", "a/test")
    assert FrontendSpec.parse("mfcc:-:m/train:m/test").layer is None
    with pytest.raises(ValueError, match="NAME:LAYER:TRAIN_FEATURES:TEST_FEATURES"):
        FrontendSpec.parse("mfcc:m/train")
