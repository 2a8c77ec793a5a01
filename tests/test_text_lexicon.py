import pytest

from asr_gan.text.g2p import ipa_to_arpabet
from asr_gan.text.lexicon import ARPABET_PHONES, Lexicon, Pronouncer, cmudict_pronunciations


def test_cmudict_entries_lose_stress_and_keep_first_pronunciation():
    prons = cmudict_pronunciations()
    assert prons["hello"] == ["HH", "AH", "L", "OW"]  # CMUdict: HH AH0 L OW1 first, HH EH0 L OW1 second
    assert prons["measure"] == ["M", "EH", "ZH", "ER"]


def test_ipa_table_maps_rhotic_syllabic_and_flap_tokens():
    assert ipa_to_arpabet("l ɪ ɾ əl".split(), "little") == ["L", "IH", "T", "AH", "L"]
    assert ipa_to_arpabet("l æ ɾ ɚ".split(), "ladder") == ["L", "AE", "D", "ER"]
    assert ipa_to_arpabet("j ʊɹ ɹ ɪ m".split(), "urim") == ["Y", "UH", "R", "IH", "M"]
    assert ipa_to_arpabet("f aɪɚ".split(), "fire") == ["F", "AY", "ER"]
    assert ipa_to_arpabet("b ʌ ʔ n̩".split(), "button") == ["B", "AH", "T", "AH", "N"]
    assert ipa_to_arpabet("q ə".split(), "qa") is None


def test_oov_words_get_arpabet_from_espeak_g2p():
    pronouncer = Pronouncer()
    pronouncer.add_words(["the", "hiddekel", "shechem"])
    assert pronouncer.lexicon.sources == {"the": "cmudict", "hiddekel": "g2p", "shechem": "g2p"}
    assert pronouncer.lexicon["hiddekel"] == ["HH", "IH", "D", "EH", "K", "AH", "L"]
    assert set(pronouncer.lexicon["shechem"]) <= set(ARPABET_PHONES)
    assert pronouncer.missing == set()


def test_words_without_pronunciation_are_reported_and_their_sentence_refused():
    pronouncer = Pronouncer(use_g2p=False)
    assert pronouncer.sentence_prons("the hiddekel river") is None
    assert pronouncer.missing == {"hiddekel"}
    assert pronouncer.sentence_prons("the river") == [["DH", "AH"], ["R", "IH", "V", "ER"]]


def test_lexicon_file_round_trips_and_bad_lines_name_file_and_line(tmp_path):
    lexicon = Lexicon({"b": ["B", "IY"], "a": ["AH"]})
    lexicon.save(tmp_path / "lexicon.txt")
    assert (tmp_path / "lexicon.txt").read_text() == "a\tAH\nb\tB IY\n"
    assert Lexicon.load(tmp_path / "lexicon.txt").prons == lexicon.prons
    (tmp_path / "bad.txt").write_text("a\tAH\nb B IY\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        Lexicon.load(tmp_path / "bad.txt")
