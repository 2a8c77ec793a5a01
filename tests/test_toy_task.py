"""The toy decipherment task's size option (tests/fixtures/toy_phones.py): other inventories, same construction."""

from __future__ import annotations

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
