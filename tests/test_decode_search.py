"""Decoders and the label-free tuner on hand-made generator output, with real KenLM models and the real flashlight
decoder: greedy merging, the phone-LM beam search, lexicon + word LM decoding, and wav2vec-U's selection rule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from asr_gan.decode.bundle import DecoderSettings
from asr_gan.decode.greedy import greedy_decode, merge_path, symbols
from asr_gan.decode.phone_beam import PhoneBeamConfig, PhoneLMScorer, phone_beam_search
from asr_gan.decode.tune import apply_tuning, selection_score, tune_phone_decoding, tune_word_decoding
from asr_gan.decode.words import DecoderLexicon, WordDecoder, WordDecoderConfig, merge_runs
from asr_gan.text.lm import build_lm, find_kenlm_binary
from asr_gan.text.phones import PhoneInventory

torch.set_num_threads(1)

INVENTORY = PhoneInventory("AE AH AO D DH G IH K N R S T <SIL>".split())
LEXICON = {"the": "DH AH", "cat": "K AE T", "sat": "S AE T", "dog": "D AO G", "a": "AH", "ran": "R AE N",
           "kit": "K IH T"}
WORD_TEXT = ["the cat sat", "the dog sat", "a cat ran", "the cat ran", "a dog sat", "the cat sat",
             "the dog ran", "a cat sat"]


def emissions(spec: list[dict[str, float] | str], floor: float = -8.0) -> torch.Tensor:
    """(T, P) log-softmax from per-position specs: a phone (certain) or {phone: logit} (the rest at `floor`)."""
    logits = torch.full((len(spec), len(INVENTORY)), floor)
    for t, item in enumerate(spec):
        for phone, value in ({item: 0.0} if isinstance(item, str) else item).items():
            logits[t, INVENTORY.index(phone)] = value
    return torch.log_softmax(logits, dim=-1)


@pytest.fixture(scope="module")
def kenlm_ready():
    try:
        find_kenlm_binary("lmplz")
    except Exception as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def word_side(tmp_path_factory, kenlm_ready) -> tuple[Path, Path]:
    """A tiny lexicon.txt and a 3-gram word LM (binary) on WORD_TEXT."""
    root = tmp_path_factory.mktemp("words")
    lexicon = root / "lexicon.txt"
    lexicon.write_text("".join(f"{w}\t{p}\n" for w, p in sorted(LEXICON.items())), encoding="utf-8")
    (root / "text.txt").write_text("\n".join(WORD_TEXT) + "\n", encoding="utf-8")
    build_lm(root / "text.txt", root / "word_lm.arpa", order=3, bin_path=root / "word_lm.bin")
    return lexicon, root / "word_lm.bin"


@pytest.fixture(scope="module")
def phone_lm(tmp_path_factory, kenlm_ready) -> Path:
    """A 3-gram phone LM on phonemised WORD_TEXT with <SIL> at both edges (as asr_gan.text writes it)."""
    root = tmp_path_factory.mktemp("phones")
    lines = ["<SIL> " + " ".join(LEXICON[w] for w in s.split()) + " <SIL>" for s in WORD_TEXT]
    (root / "train_text.phn").write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    build_lm(root / "train_text.phn", root / "phone_lm.arpa", order=3, bin_path=root / "phone_lm.bin")
    return root / "phone_lm.bin"


# ------------------------------------------------------------------------------------------------------ greedy


def test_merge_path_collapses_runs_and_silence_separates_equal_phones():
    assert merge_path([3, 3, 5, 5, 5, 3], silence=5) == [(3, 0, 1), (3, 5, 5)]
    assert merge_path([], silence=5) == []


def test_greedy_merges_repeats_drops_silence_and_keeps_positions():
    log_probs = emissions(["<SIL>", "DH", "DH", "AH", "<SIL>", "K", "AE", "AE", "T", "T", "<SIL>"])
    tokens = greedy_decode(log_probs, INVENTORY)
    assert symbols(tokens) == ["DH", "AH", "K", "AE", "T"]
    assert [(t.first, t.last) for t in tokens] == [(1, 2), (3, 3), (5, 5), (6, 7), (8, 9)]
    # Padding beyond `length` is ignored; logits give the same answer as log-probs.
    assert symbols(greedy_decode(log_probs[:4] * 3.0, INVENTORY, length=3)) == ["DH"]


def test_greedy_rejects_logits_of_another_inventory():
    with pytest.raises(ValueError, match="13 phones"):
        greedy_decode(torch.zeros(4, 5), INVENTORY)


# -------------------------------------------------------------------------------------------------- phone LM


def _ambiguous_cat() -> torch.Tensor:
    """'the cat' where the vowel of cat sounds slightly more like AO (K AO T is no word of the LM's text)."""
    return emissions(["<SIL>", "DH", "AH", "K", {"AO": 0.0, "AE": -0.4}, "T", "<SIL>"])


def test_phone_beam_without_lm_weight_is_the_greedy_path():
    log_probs = _ambiguous_cat()
    beam = phone_beam_search(log_probs, INVENTORY, None, PhoneBeamConfig(lm_weight=0.0))
    assert beam == greedy_decode(log_probs, INVENTORY)


def test_phone_lm_changes_the_answer_to_the_lm_consistent_phones(phone_lm):
    scorer = PhoneLMScorer(phone_lm)
    log_probs = _ambiguous_cat()
    assert symbols(greedy_decode(log_probs, INVENTORY)) == ["DH", "AH", "K", "AO", "T"]
    for silence in ("score", "skip"):
        tokens = phone_beam_search(log_probs, INVENTORY, scorer, PhoneBeamConfig(lm_weight=1.0, silence=silence))
        assert symbols(tokens) == ["DH", "AH", "K", "AE", "T"], silence
        assert [(t.first, t.last) for t in tokens] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    # A small weight leaves the acoustically clear choice alone.
    weak = phone_beam_search(log_probs, INVENTORY, scorer, PhoneBeamConfig(lm_weight=0.01))
    assert symbols(weak) == ["DH", "AH", "K", "AO", "T"]


def test_phone_beam_insertion_bonus_trades_deletions_for_insertions(phone_lm):
    # The second AH is half silence: a bonus per phone decides whether it is a phone of its own.
    log_probs = emissions(["DH", "AH", {"<SIL>": 0.0, "AH": -0.5}, "AH"])
    config = PhoneBeamConfig(lm_weight=0.0, insertion_bonus=0.0)
    assert symbols(phone_beam_search(log_probs, INVENTORY, None, config)) == ["DH", "AH", "AH"]
    config = PhoneBeamConfig(lm_weight=0.0, insertion_bonus=-1.0)
    assert symbols(phone_beam_search(log_probs, INVENTORY, None, config)) == ["DH", "AH"]


def test_phone_beam_score_mode_needs_the_silence_token_in_the_lm(tmp_path, kenlm_ready):
    (tmp_path / "t.txt").write_text("DH AH K AE T\nK AE T\n", encoding="utf-8")
    build_lm(tmp_path / "t.txt", tmp_path / "lm.arpa", order=2)
    scorer = PhoneLMScorer(tmp_path / "lm.arpa")
    with pytest.raises(ValueError, match="lm.arpa.*'skip'"):
        phone_beam_search(_ambiguous_cat(), INVENTORY, scorer, PhoneBeamConfig(silence="score"))
    tokens = phone_beam_search(_ambiguous_cat(), INVENTORY, scorer, PhoneBeamConfig(silence="skip"))
    assert symbols(tokens) == ["DH", "AH", "K", "AE", "T"]


# ------------------------------------------------------------------------------------------------------- words


def test_word_decoder_reads_the_phones_of_a_word_sequence_as_those_words(word_side):
    lexicon, word_lm = word_side
    decoder = WordDecoder(lexicon, word_lm, INVENTORY)
    # Segment-level output: phones spread over several positions, word-final ones included, silences between
    # some words only.
    spec = ["<SIL>", "DH", "AH", "AH", "K", "K", "AE", "T", "T", "<SIL>", "S", "AE", "AE", "T", "<SIL>"]
    hypothesis = decoder.decode(emissions(spec))
    assert symbols(hypothesis.words) == ["the", "cat", "sat"]
    assert symbols(hypothesis.phones) == ["DH", "AH", "K", "AE", "T", "S", "AE", "T"]
    assert [(w.first, w.last) for w in hypothesis.words] == [(1, 3), (4, 8), (10, 13)]
    assert math.isfinite(hypothesis.score)


def test_word_lm_picks_the_word_the_text_supports_when_the_sound_is_ambiguous(word_side):
    lexicon, word_lm = word_side
    # "the k?t sat": IH (kit) a little likelier than AE (cat) to the ear; only "cat" occurs in the LM's text.
    spec = ["DH", "AH", "K", {"IH": 0.0, "AE": -0.3}, "T", "S", "AE", "T"]
    heard = WordDecoder(lexicon, word_lm, INVENTORY, WordDecoderConfig(lm_weight=0.0)).decode(emissions(spec))
    read = WordDecoder(lexicon, word_lm, INVENTORY, WordDecoderConfig(lm_weight=2.0)).decode(emissions(spec))
    assert symbols(heard.words) == ["the", "kit", "sat"]
    assert symbols(read.words) == ["the", "cat", "sat"]


def test_word_decoder_skips_and_counts_words_spelled_outside_the_inventory(tmp_path, word_side):
    _, word_lm = word_side
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cat\tK AE T\nzoo\tZ UW\nthe\tDH AH\n", encoding="utf-8")
    restricted = DecoderLexicon(lexicon, INVENTORY)
    assert restricted.skipped == 1 and len(restricted) == 2
    bad = tmp_path / "none.txt"
    bad.write_text("zoo\tZ UW\n", encoding="utf-8")
    with pytest.raises(ValueError, match="none.txt"):
        WordDecoder(bad, word_lm, INVENTORY)


def test_run_merging_averages_each_argmax_run_and_remembers_its_positions():
    log_probs = emissions(["DH", "DH", "AH", "<SIL>", "<SIL>"])
    merged, first, last = merge_runs(log_probs)
    assert merged.shape == (3, len(INVENTORY))
    assert first.tolist() == [0, 2, 3] and last.tolist() == [1, 2, 4]
    torch.testing.assert_close(merged.exp().sum(dim=-1), torch.ones(3))


# ------------------------------------------------------------------------------------------------------ tuning


def test_selection_score_is_log_perplexity_times_floored_disagreement():
    assert selection_score(100.0, 0.2, 0.05) == pytest.approx(math.log(100.0) * 0.2)
    assert selection_score(100.0, 0.0, 0.05) == pytest.approx(math.log(100.0) * 0.05)


def test_word_tuner_returns_a_grid_setting_and_prefers_the_lm_consistent_one(word_side):
    lexicon, word_lm = word_side
    # The generator hears neither word well at the vowel (AO wins, and K AO T is no word); "kit" beats "cat" a
    # little by sound. Both word outputs differ from the greedy phones by one vowel; "cat" reads better.
    utterances = [emissions(["DH", "AH", "K", {"AO": 0.0, "IH": -0.2, "AE": -0.5}, "T", "S", "AE", "T"]),
                  emissions(["<SIL>", "AH", "D", "AO", "G", "R", "AE", "N", "<SIL>"])]
    grid = dict(lm_weights=[0.0, 3.0], word_scores=[0.0, -1.0])
    result = tune_word_decoding(utterances, INVENTORY, lexicon, word_lm, **grid, min_disagreement=0.0)
    assert [p.settings for p in result.points] == [
        {"lm_weight": 0.0, "word_score": 0.0}, {"lm_weight": 0.0, "word_score": -1.0},
        {"lm_weight": 3.0, "word_score": 0.0}, {"lm_weight": 3.0, "word_score": -1.0}]
    assert result.best.settings["lm_weight"] == 3.0
    best_ppl = result.best.lm_ppl
    assert all(best_ppl < p.lm_ppl for p in result.points if p.settings["lm_weight"] == 0.0)
    assert result.best.disagreement == pytest.approx(1 / 15)  # one vowel of 15 greedy phones
    settings = apply_tuning(DecoderSettings(), result)
    assert settings.lm_weight == 3.0 and settings.tuned == ["lm_weight", "word_score"]
    assert settings.tuning["words"]["chosen"] == result.best.settings


def test_phone_tuner_prefers_the_lm_setting_when_its_corrections_stay_within_the_floor(phone_lm):
    # Five clear utterances and one with an ambiguous vowel that the LM corrects: 1 change in 25 greedy phones
    # (0.04) is within the 0.05 floor, so the lower perplexity decides.
    clear = emissions(["<SIL>", "DH", "AH", "K", "AE", "T", "<SIL>"])
    utterances = [clear] * 4 + [_ambiguous_cat()]
    result = tune_phone_decoding(utterances, INVENTORY, phone_lm, lm_weights=[0.0, 1.0], insertion_bonuses=[0.0],
                                 silence_modes=["score"])
    by_weight = {p.settings["lm_weight"]: p for p in result.points}
    assert by_weight[0.0].disagreement == 0.0
    assert by_weight[1.0].disagreement == pytest.approx(1 / 25)
    assert result.best is by_weight[1.0]
    # Without the floor, the greedy-identical setting (disagreement 0) would always win.
    strict = tune_phone_decoding(utterances, INVENTORY, phone_lm, lm_weights=[0.0, 1.0], insertion_bonuses=[0.0],
                                 silence_modes=["score"], min_disagreement=0.0)
    assert strict.best.settings["lm_weight"] == 0.0
