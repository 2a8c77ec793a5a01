import math

import pytest

from asr_gan.text import lm
from asr_gan.text.lm import KenLMNotFound, NgramLM, build_lm, find_kenlm_binary


def test_lm_build_and_query_prefers_seen_sequences(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("a b c\na b c\na b d\nb c a\n")
    build_lm(text, tmp_path / "lm.arpa", order=3, bin_path=tmp_path / "lm.bin")
    arpa = (tmp_path / "lm.arpa").read_text()
    assert "\\data\\" in arpa and "ngram 3=" in arpa
    for path in (tmp_path / "lm.arpa", tmp_path / "lm.bin"):
        model = NgramLM(path)
        assert model.order == 3
        seen, unseen = model.score(["a", "b", "c"]), model.score(["c", "c", "c"])
        assert seen < 0 and seen > unseen
        ppl = model.perplexity([["a", "b", "c"]])
        assert math.isclose(ppl, 10 ** (-seen / 4), rel_tol=1e-6)


def test_missing_kenlm_binaries_raise_message_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ASR_GAN_KENLM_BIN", str(tmp_path))
    monkeypatch.setattr(lm, "REPO_KENLM_BIN", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KenLMNotFound, match="tools/build_kenlm.sh"):
        find_kenlm_binary("lmplz")


def test_env_var_directory_is_searched_first(tmp_path, monkeypatch):
    fake = tmp_path / "lmplz"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ASR_GAN_KENLM_BIN", str(tmp_path))
    assert find_kenlm_binary("lmplz") == fake
