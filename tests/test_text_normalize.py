from asr_gan.text.normalize import normalize_sentence, number_to_words, ordinal_to_words, read_normalized_sentences


def test_normalize_lowercases_strips_punctuation_keeps_inner_apostrophes():
    assert normalize_sentence("Don't stop, 'til JACOB'S sons' return!") == "don't stop til jacob's sons return"


def test_normalize_spells_out_numbers_ordinals_and_decimals():
    assert normalize_sentence("1,024 men; the 21st day; 3.5 cubits") == (
        "one thousand twenty four men the twenty first day three point five cubits"
    )
    assert number_to_words(1_000_017) == "one million seventeen"
    assert ordinal_to_words(40) == "fortieth"
    assert ordinal_to_words(12) == "twelfth"


def test_normalize_folds_accents_splits_hyphens_collapses_whitespace():
    assert normalize_sentence("  Café\tself-evident   caf\u00e9 \u2019tis  ") == "cafe self evident cafe tis"
    assert normalize_sentence("?!...") == ""


def test_reading_skips_non_utf8_lines_and_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"\xef\xbb\xbfFirst line.\r\nCaf\xe9 in latin-1\nThird, line\n\n")
    problems: list[str] = []
    assert read_normalized_sentences(path, problems) == ["first line", "third line"]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2:")
