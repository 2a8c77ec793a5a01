"""The topline's log-posteriors as a feature set (asr_gan.lab.posteriors): rows, order and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.lab.posteriors import main
from asr_gan.models.ctc_model import CTCPhoneModel
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig, save_checkpoint
from asr_gan.train.ctc_outputs import ctc_greedy_decode, transcribe
from asr_gan.train.data import load_feature_sequences

torch.set_num_threads(1)

PHONES = ["AA", "B", "D", "<SIL>"]


def _segments_and_checkpoint(tmp_path):
    """Utterances of very different lengths (so length batching reorders them) and a random generator model."""
    rng = np.random.default_rng(0)
    segments = tmp_path / "segments"
    with FeatureSetWriter(segments, dim=6) as writer:
        for n, length in enumerate([9, 40, 3, 25, 12]):
            writer.add(f"utt{n}", rng.normal(size=(length, 6)).astype(np.float32))
    torch.manual_seed(0)
    model = CTCPhoneModel("generator", 6, len(PHONES), {"kernel_size": 3, "hidden_layers": 1, "hidden_dim": 8})
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, model, PhoneInventory(PHONES), CTCTrainConfig(), epoch=0, valid_per=None)
    return segments, checkpoint, model


def test_posteriors_keep_utterance_order_and_decode_like_the_model(tmp_path):
    segments, checkpoint, model = _segments_and_checkpoint(tmp_path)
    out = tmp_path / "oracle"
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(out)]) == 0

    written, source = FeatureSet(out), FeatureSet(segments)
    assert written.utt_ids == source.utt_ids
    assert written.features.shape[1] == len(PHONES) + 1  # every phone and the blank
    assert [len(written[i]) for i in range(len(written))] == [9, 40, 3, 25, 12]
    for i in range(len(written)):
        assert np.allclose(np.exp(written[i]).sum(axis=1), 1.0, atol=1e-4)  # log-probabilities per row
    # The greedy CTC reading of the stored rows is the model's own transcription of each utterance.
    expected = transcribe(model, source, list(range(len(source))), torch.device("cpu"))
    assert sum(len(h) for h in expected) > 10  # the random model emits phones, not only blanks
    for i in range(len(written)):
        rows = torch.tensor(np.array(written[i]))
        assert ctc_greedy_decode(rows, len(rows), blank=len(PHONES)) == expected[i]
    # The GAN trainer reads the folder like segment features.
    sequences, ids = load_feature_sequences(str(out))
    assert ids == source.utt_ids and sequences[1].shape == (40, len(PHONES) + 1)


def test_posteriors_cli_refuses_to_overwrite_and_names_a_missing_checkpoint(tmp_path, capsys):
    segments, checkpoint, _ = _segments_and_checkpoint(tmp_path)
    out = tmp_path / "oracle"
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(out)]) == 0
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    missing = tmp_path / "nope.pt"
    assert main(["--checkpoint", str(missing), "--features", str(segments), "--out", str(tmp_path / "o2")]) == 1
    assert str(missing) in capsys.readouterr().err


def test_greedy_per_of_the_posteriors_is_the_models_per(tmp_path):
    segments, checkpoint, model = _segments_and_checkpoint(tmp_path)
    source = FeatureSet(segments)
    hyps = transcribe(model, source, list(range(len(source))), torch.device("cpu"))
    # References: the model's own reading for utt0-utt2 (0 errors), one phone appended to utt3's (1 insertion
    # deleted from the hypothesis), utt4 left out (not scored).
    refs = {u: [PHONES[i] for i in h] for u, h in zip(source.utt_ids[:3], hyps[:3])}
    refs["utt3"] = [PHONES[i] for i in hyps[3]] + ["AA"]
    labels = tmp_path / "refs.phn"
    labels.write_text("".join(f"{u} {' '.join(p)}\n" for u, p in refs.items()))
    out = tmp_path / "oracle"
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(out),
                 "--labels", str(labels)]) == 0
    meta = FeatureSet(out).meta
    non_silence = sum(len([p for p in r if p != "<SIL>"]) for r in refs.values())
    assert meta["greedy_per_utterances"] == 4
    assert meta["greedy_per"] == pytest.approx(1 / non_silence)


def test_no_blank_renormalises_over_the_phones(tmp_path):
    segments, checkpoint, model = _segments_and_checkpoint(tmp_path)
    with_blank, without = tmp_path / "with", tmp_path / "without"
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(with_blank)]) == 0
    assert main(["--checkpoint", str(checkpoint), "--features", str(segments), "--out", str(without),
                 "--no-blank"]) == 0
    full, phones = FeatureSet(with_blank), FeatureSet(without)
    assert phones.features.shape[1] == len(PHONES) and phones.meta["columns"] == PHONES
    for i in range(len(full)):
        kept = np.exp(np.asarray(full[i])[:, :-1])
        np.testing.assert_allclose(np.exp(phones[i]), kept / kept.sum(axis=1, keepdims=True), atol=1e-5)
