"""The toy decipherment task's options (tests/fixtures/toy_phones.py): other inventories and several voices."""

from __future__ import annotations

import numpy as np
import pytest

from asr_gan.features.storage import FeatureSet
from asr_gan.text.phones import PhoneInventory
from tests.fixtures.toy_phones import PHONES, make_toy_task, toy_phones


def test_toy_task_with_twelve_phones_uses_all_and_only_them(tmp_path):
    paths = make_toy_task(tmp_path, num_audio=20, num_valid=5, num_text=200, num_phones=12)
    inventory = PhoneInventory.load(paths["phones"])
    assert inventory.symbols == [f"p{i:02d}" for i in range(12)] + ["<SIL>"]
    used = {p for line in paths["text"].read_text().splitlines() for p in line.split()}
    assert used == set(inventory.symbols)  # 200 sentences of a 12-phone chain reach every phone
    refs = [line.split()[1:] for line in paths["valid_labels"].read_text().splitlines()]
    assert len(refs) == 5 and all(set(r) <= set(inventory.symbols) - {"<SIL>"} for r in refs)
    assert FeatureSet(paths["train"]).dim == 16 and len(FeatureSet(paths["train"])) == 20


def test_toy_phones_keeps_the_named_ten_and_rejects_a_single_phone():
    assert toy_phones(10) == PHONES
    with pytest.raises(ValueError, match="at least 2"):
        toy_phones(1)


def _phone_means(paths, utterance: int) -> dict[str, np.ndarray]:
    """Mean training row of each phone in one training utterance (from `train.segments`)."""
    rows = FeatureSet(paths["train"])[utterance]
    labels = paths["train_segments"].read_text().splitlines()[utterance].split()[1:]
    return {p: rows[[i for i, q in enumerate(labels) if q == p]].mean(axis=0) for p in set(labels)}


@pytest.mark.parametrize("share", [1.0, 0.0])
def test_toy_voices_take_turns_and_the_share_sets_how_far_their_phone_vectors_lie_apart(tmp_path, share):
    paths = make_toy_task(tmp_path, num_audio=40, num_valid=5, num_text=200, voices=2, voice_share=share)
    # Utterances 0 and 2 have voice 0, utterance 1 voice 1: compare the phones each pair shares.
    same, other = _phone_means(paths, 0), _phone_means(paths, 2)
    across = _phone_means(paths, 1)
    same_gap = np.mean([np.linalg.norm(same[p] - other[p]) for p in same.keys() & other.keys()])
    across_gap = np.mean([np.linalg.norm(same[p] - across[p]) for p in same.keys() & across.keys()])
    # Means of 1-3 rows with noise of std 0.3 in 16 dimensions lie about 1 apart (0.99 here); independent
    # N(0, 1) phone vectors about sqrt(2 * 16) = 5.7 (6.9 here).
    assert same_gap < 2.0
    if share == 1.0:
        assert across_gap > 4.0
    else:
        assert across_gap < 2.0


def test_one_voice_is_the_original_task_and_bad_voice_settings_are_refused(tmp_path):
    one = make_toy_task(tmp_path / "one", num_audio=10, num_valid=2, num_text=50)
    again = make_toy_task(tmp_path / "again", num_audio=10, num_valid=2, num_text=50, voices=1, voice_share=0.3)
    assert np.array_equal(FeatureSet(one["train"])[3], FeatureSet(again["train"])[3])
    # The first row the toy wrote before voices existed: the documented toy numbers depend on this stream.
    assert np.allclose(FeatureSet(one["train"])[0][0, :4], [-0.323495, -0.281155, -0.350760, -0.284628], atol=1e-5)
    with pytest.raises(ValueError, match="voices 0"):
        make_toy_task(tmp_path / "bad", voices=0)
    with pytest.raises(ValueError, match="voice_share 1.5"):
        make_toy_task(tmp_path / "bad", voices=2, voice_share=1.5)
