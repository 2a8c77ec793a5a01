import random

import pytest

from asr_gan.text.phones import SILENCE, PhoneInventory, add_silences, build_inventory


def test_silences_surround_sentence_and_fill_word_gaps_at_sil_prob():
    rng = random.Random(3)
    words = [["A"], ["B"], ["C"], ["D"], ["E"]]
    gaps_with_sil = 0
    trials = 4000
    for _ in range(trials):
        phones = add_silences(words, 0.25, rng)
        assert phones[0] == SILENCE and phones[-1] == SILENCE
        assert [p for p in phones if p != SILENCE] == ["A", "B", "C", "D", "E"]
        gaps_with_sil += phones.count(SILENCE) - 2
    rate = gaps_with_sil / (trials * 4)
    assert abs(rate - 0.25) < 0.02  # 16000 Bernoulli draws: std 0.0034


def test_silence_probability_edges_zero_and_one():
    words = [["A", "B"], ["C"]]
    assert add_silences(words, 0.0) == [SILENCE, "A", "B", "C", SILENCE]
    assert add_silences(words, 1.0) == [SILENCE, "A", "B", SILENCE, "C", SILENCE]
    with pytest.raises(ValueError):
        add_silences(words, 1.5)


def test_edge_silences_follow_their_own_probabilities():
    words = [["A"], ["B"], ["C"]]
    assert add_silences(words, 0.0, start_prob=0.0) == ["A", "B", "C", SILENCE]
    assert add_silences(words, 0.0, start_prob=0.0, end_prob=0.0) == ["A", "B", "C"]
    assert add_silences(words, 1.0, surround=False) == ["A", SILENCE, "B", SILENCE, "C"]
    # Edges at 1 draw nothing: the default text is the same draw for draw as before the edge options.
    first, second = random.Random(5), random.Random(5)
    assert [add_silences(words, 0.25, first) for _ in range(50)] == \
        [add_silences(words, 0.25, second, start_prob=1.0, end_prob=1.0) for _ in range(50)]
    rng = random.Random(7)
    sentences = [add_silences(words, 0.0, rng, start_prob=0.3, end_prob=0.9) for _ in range(4000)]
    assert abs(sum(s[0] == SILENCE for s in sentences) / 4000 - 0.3) < 0.03
    assert abs(sum(s[-1] == SILENCE for s in sentences) / 4000 - 0.9) < 0.02
    for bad in ({"start_prob": -0.1}, {"end_prob": 1.2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            add_silences(words, 0.25, **bad)


def test_inventory_drops_rare_phones_and_their_sentences():
    sentences = [["AA", "B"], ["AA", "B", "ZH"], ["B", "AA", "AA"]]
    inventory, kept, dropped, skipped = build_inventory(sentences, min_count=2)
    assert inventory.symbols == ["AA", "B", SILENCE]
    assert kept == [["AA", "B"], ["B", "AA", "AA"]]
    assert dropped == {"ZH": 1} and skipped == 1


def test_inventory_file_round_trip_index_and_silence(tmp_path):
    inventory = PhoneInventory(["AA", "B", SILENCE])
    inventory.save(tmp_path / "phones.txt")
    loaded = PhoneInventory.load(tmp_path / "phones.txt")
    assert loaded.symbols == ["AA", "B", SILENCE] and loaded.silence == SILENCE
    assert loaded.index("B") == 1 and loaded.encode(["B", SILENCE]) == [1, 2]
    (tmp_path / "timit.txt").write_text("aa\nsil\nb\n")
    assert PhoneInventory.load(tmp_path / "timit.txt").silence == "sil"
    with pytest.raises(KeyError, match="ZH"):
        loaded.index("ZH")
