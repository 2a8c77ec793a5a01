"""The renaming diagnosis (asr_gan.lab.rename_phones): a decipherment whose phones were renamed is renamed back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asr_gan.lab import decipher, rename_phones
from tests.fixtures.toy_phones import make_toy_task


def test_greedy_renaming_takes_the_largest_counts_first_and_names_every_phone_once():
    confusion = np.array([[1.0, 9.0, 0.0], [8.0, 7.0, 0.0], [0.0, 0.0, 2.0]])
    assert rename_phones.greedy_renaming(confusion).tolist() == [1, 0, 2]


def test_a_decipherment_with_its_phones_renamed_is_renamed_back(tmp_path, capsys):
    toy = make_toy_task(tmp_path / "toy", noise=0.3)
    truth = tmp_path / "truth"
    decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), truth, clusters=40, iterations=10,
                 progress=False, start_labels=str(toy["train_segments"]))
    with np.load(truth / "model.npz") as stored:
        model = {k: stored[k] for k in stored.files}
    phones = len(model["emissions"])
    shuffle = np.random.default_rng(0).permutation(phones)
    wrong = dict(model, emissions=model["emissions"][shuffle])
    np.savez(tmp_path / "wrong.npz", **wrong)
    args = ["--model", str(tmp_path / "wrong.npz"), "--features", str(toy["train"]), "--labels",
            str(toy["train_segments"]), "--phones", str(toy["phones"]), "--out", str(tmp_path / "renamed.npz")]
    assert rename_phones.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept_before"] < 0.5 and summary["kept_after"] > 0.95, summary
    assert summary["phones_renamed"] == int((shuffle != np.arange(phones)).sum())
    with np.load(tmp_path / "renamed.npz") as renamed:
        assert np.array_equal(renamed["emissions"], model["emissions"])
        assert np.array_equal(renamed["centroids"], model["centroids"])


def test_rename_names_a_missing_model_and_refuses_next_phone_emissions(tmp_path, capsys):
    args = ["--model", str(tmp_path / "none.npz"), "--features", "f", "--labels", "l", "--phones", "p",
            "--out", str(tmp_path / "o.npz")]
    assert rename_phones.main(args) == 1
    assert "none.npz: decipherment model (model.npz) not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="context next"):
        rename_phones.rename({"emissions": np.ones((2, 3, 4))}, np.ones((2, 4)))
