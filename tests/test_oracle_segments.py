"""Forced-alignment labels of rows: alignment starts, the reference phone of every row
(asr_gan.scoring.reference_rows) and the pooled oracle segments (asr_gan.lab.oracle_segments), skipped
utterances and both CLIs."""

from __future__ import annotations

import numpy as np
import torch

from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.lab.oracle_segments import main, pool_phones
from asr_gan.models.ctc_model import CTCPhoneModel
from asr_gan.scoring.reference_rows import label_rows, phone_starts
from asr_gan.scoring.reference_rows import main as reference_rows_main
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig, load_ctc_checkpoint, save_checkpoint
from asr_gan.train.ctc_outputs import log_posteriors

torch.set_num_threads(1)

PHONES = ["aa", "b", "d", "sil"]
BLANK = len(PHONES)


def _peaked(path: list[int]) -> torch.Tensor:
    """(T, C) log-probabilities that put almost all mass on path[t] at frame t."""
    probs = torch.full((len(path), BLANK + 1), 0.01)
    probs[torch.arange(len(path)), torch.tensor(path)] = 1.0
    return torch.log(probs / probs.sum(dim=1, keepdim=True))


def test_each_phone_starts_at_its_first_emission_and_a_repeat_is_two_phones():
    # blank blank b b blank b aa aa blank blank: targets b b aa; the second b starts after the blank.
    log_probs = _peaked([BLANK, BLANK, 1, 1, BLANK, 1, 0, 0, BLANK, BLANK])
    starts, last = phone_starts(log_probs, [1, 1, 0], blank=BLANK)
    assert starts == [2, 5, 6] and last == 7


def test_pooling_means_each_phone_span_and_adds_silence_rows_at_the_edges():
    frames = np.arange(10, dtype=np.float32)[:, None].repeat(2, axis=1)
    rows, labels = pool_phones(frames, ["b", "b", "aa"], [2, 5, 6], 7, "sil")
    assert labels == ["sil", "b", "b", "aa", "sil"]
    assert np.allclose(rows[:, 0], [0.5, 3.0, 5.0, 6.5, 8.5])  # frames 0-1, 2-4, 5, 6-7, 8-9
    rows, labels = pool_phones(frames[:8], ["b", "aa"], [0, 4], 7, "sil")
    assert labels == ["b", "aa"] and np.allclose(rows[:, 0], [1.5, 5.5])  # no edge frames, no silence rows


def _frames_and_model(tmp_path):
    rng = np.random.default_rng(0)
    frames = tmp_path / "frames"
    with FeatureSetWriter(frames, dim=5) as writer:
        for n, length in enumerate([30, 12, 2, 25]):
            writer.add(f"utt{n}", rng.normal(size=(length, 5)).astype(np.float32))
    torch.manual_seed(0)
    model = CTCPhoneModel("generator", 5, len(PHONES), {"kernel_size": 3})
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, model, PhoneInventory(PHONES, "sil"), CTCTrainConfig(), epoch=0, valid_per=None)
    labels = tmp_path / "refs.phn"
    # utt1 has no references, utt2 has more phones than frames: both are reported and skipped.
    labels.write_text("utt0 b aa d aa\nutt2 b aa d\nutt3 sil d d b sil\n")
    return frames, checkpoint, labels


def test_cli_writes_one_row_per_phone_and_reports_what_it_skips(tmp_path, capsys):
    frames, checkpoint, labels = _frames_and_model(tmp_path)
    out = tmp_path / "oracle"
    assert main(["--checkpoint", str(checkpoint), "--features", str(frames), "--labels", str(labels),
                 "--out", str(out), "--no-progress"]) == 0
    written, source = FeatureSet(out), FeatureSet(frames)
    assert written.utt_ids == ["utt0", "utt3"]
    rows_of = {line.split()[0]: line.split()[1:] for line in (tmp_path / "oracle.segments").read_text().splitlines()}
    assert [p for p in rows_of["utt0"] if p != "sil"] == ["b", "aa", "d", "aa"]
    assert [p for p in rows_of["utt3"] if p != "sil"] == ["d", "d", "b"]  # reference silence is not a phone
    model, _, _ = load_ctc_checkpoint(checkpoint)
    posteriors = log_posteriors(model, source, progress=False)
    for i, utt in enumerate(written.utt_ids):
        n = source.utt_ids.index(utt)
        phones = [p for p in rows_of[utt] if p != "sil"]
        starts, last = phone_starts(torch.from_numpy(posteriors[n]), [PHONES.index(p) for p in phones], BLANK)
        expected, expected_labels = pool_phones(np.asarray(source[n]), phones, starts, last, "sil")
        assert rows_of[utt] == expected_labels and np.allclose(np.asarray(written[i]), expected)
        assert len(starts) == len(phones) and starts == sorted(set(starts))
    err = capsys.readouterr().err
    assert "utt1: no reference phones" in err and "utt2: 3 phones cannot be aligned to 2 outputs" in err


def test_a_model_that_does_not_emit_one_position_per_frame_is_refused(tmp_path, capsys):
    frames, _, labels = _frames_and_model(tmp_path)
    torch.manual_seed(0)
    model = CTCPhoneModel("generator", 5, len(PHONES), {"kernel_size": 3, "stride": 2})
    checkpoint = tmp_path / "strided.pt"
    save_checkpoint(checkpoint, model, PhoneInventory(PHONES, "sil"), CTCTrainConfig(), epoch=0, valid_per=None)
    code = main(["--checkpoint", str(checkpoint), "--features", str(frames), "--labels", str(labels),
                 "--out", str(tmp_path / "oracle"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "one output per frame" in err and "utt0" in err, err


def test_label_rows_gives_every_row_the_phone_aligned_to_its_last_output():
    # 10 outputs for 5 rows (2 each): b starts at output 2, aa at 5, the last emission is output 7.
    assert label_rows(["b", "aa"], [2, 5], 7, 10, 5, "sil") == ["sil", "b", "aa", "aa", "sil"]
    assert label_rows(["b", "aa"], [0, 2], 3, 4, 4, "sil") == ["b", "b", "aa", "aa"]


def test_cli_label_rows_writes_one_phone_per_input_row_and_no_feature_set(tmp_path, capsys):
    frames, checkpoint, labels = _frames_and_model(tmp_path)
    out = tmp_path / "new" / "rows"
    assert reference_rows_main(["--checkpoint", str(checkpoint), "--features", str(frames), "--labels",
                                str(labels), "--out", str(out), "--no-progress"]) == 0
    assert not out.exists()
    source = FeatureSet(frames)
    rows_of = {line.split()[0]: line.split()[1:]
               for line in (tmp_path / "new" / "rows.segments").read_text().splitlines()}
    assert sorted(rows_of) == ["utt0", "utt3"]
    for utt, row_labels in rows_of.items():
        assert len(row_labels) == len(source[source.utt_ids.index(utt)])
    merged = [p for i, p in enumerate(rows_of["utt0"]) if p != "sil" and (i == 0 or p != rows_of["utt0"][i - 1])]
    assert merged == ["b", "aa", "d", "aa"]
    assert "utt2: 3 phones cannot be aligned" in capsys.readouterr().err
