import gzip

import numpy as np
import pytest
import soundfile

from asr_gan.manifest import read_manifest, validate_manifest
from data_prep.librispeech import main, prepare_librispeech
from tests.fixtures.librispeech_layout import LM_SENTENCES, LM_TEXT_NAME, TRANSCRIPTS


def test_librispeech_prep_writes_subset_manifests_with_lower_case_words_and_reader_speakers(
        librispeech_corpus, tmp_path):
    out = tmp_path / "data"
    # The parent of LibriSpeech/ is accepted too.
    assert main(["--root", str(librispeech_corpus.parent), "--subset", "train-clean-100", "--subset", "dev-clean",
                 "--out", str(out)]) == 0
    train = read_manifest(out / "train-clean-100.jsonl")
    dev = read_manifest(out / "dev-clean.jsonl")
    assert [u.utt_id for u in dev] == ["1272-128104-0000", "1272-128104-0001", "2078-142845-0000", "2078-142845-0001"]
    assert {u.speaker for u in dev} == {"1272", "2078"} and {u.speaker for u in train} == {"103", "1034"}
    # Transcripts cycle through TRANSCRIPTS in writing order: train first, then dev.
    assert [u.words for u in train] == [t.lower() for t in TRANSCRIPTS[:4]]
    assert dev[0].words == TRANSCRIPTS[4].lower() and "captain's" in dev[2].words
    for utt in train + dev:
        info = soundfile.info(utt.audio)
        assert (info.format, info.frames, info.samplerate) == ("FLAC", utt.num_samples, 16000)
    assert validate_manifest(train + dev) == []
    assert not (out / "text_corpus.txt").exists()
    assert "skipped: 0" in (out / "prep_report.txt").read_text()


def test_librispeech_lm_text_is_streamed_from_gz_normalised_capped_and_drops_non_utf8_lines(
        librispeech_corpus, tmp_path):
    lm_gz = tmp_path / (LM_TEXT_NAME + ".gz")
    lines = [s.encode() for s in LM_SENTENCES[:2]] + [b"BAD \xff LINE", b"   ", b"IT COST 42 POUNDS"] + [
        s.encode() for s in LM_SENTENCES[2:]
    ]
    lm_gz.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    out = tmp_path / "data"
    prepare_librispeech(librispeech_corpus, ["dev-clean"], out, lm_text=lm_gz, max_lm_sentences=4)
    corpus = (out / "text_corpus.txt").read_text().splitlines()
    assert corpus == [LM_SENTENCES[0].lower(), LM_SENTENCES[1].lower(), "it cost forty two pounds",
                      LM_SENTENCES[2].lower()]
    report = (out / "prep_report.txt").read_text()
    assert f"{lm_gz}:3: not UTF-8" in report and "text_corpus.txt: 4" in report

    # Plain text, no cap: every sentence of the fixture's LM file.
    prepare_librispeech(librispeech_corpus, ["dev-clean"], out, lm_text=librispeech_corpus.parent / LM_TEXT_NAME)
    assert (out / "text_corpus.txt").read_text().splitlines() == [s.lower() for s in LM_SENTENCES]


def test_librispeech_prep_skips_truncated_flac_keeps_8khz_stereo_and_reports_both(librispeech_corpus_copy, tmp_path):
    chapter = librispeech_corpus_copy / "dev-clean" / "1272" / "128104"
    flac = chapter / "1272-128104-0000.flac"
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    stereo = np.stack([np.sin(np.arange(8000) / 5.0)] * 2, axis=1).astype(np.float32) * 0.3
    soundfile.write(chapter / "1272-128104-0001.flac", stereo, 8000)
    (chapter / "1272-128104-0002.flac").write_bytes(b"")  # empty, and without a transcript line
    (chapter / "1272-128104.trans.txt").write_bytes(
        (chapter / "1272-128104.trans.txt").read_bytes() + b"1272-128104-0009 NO AUDIO HERE\n1272-128104-0003 \xc3(\n"
    )
    out = tmp_path / "data"
    manifests = prepare_librispeech(librispeech_corpus_copy, ["dev-clean"], out)
    dev = {u.utt_id: u for u in manifests["dev-clean"]}
    assert sorted(dev) == ["1272-128104-0001", "2078-142845-0000", "2078-142845-0001"]
    assert (dev["1272-128104-0001"].sample_rate, dev["1272-128104-0001"].num_samples) == (8000, 8000)
    report = (out / "prep_report.txt").read_text()
    assert "skipped [unreadable audio]: 2" in report
    assert f"{flac}: truncated or corrupt audio" in report
    assert f"{chapter / '1272-128104-0002.flac'}: empty file (0 bytes)" in report
    assert "noted (kept) [sample rate]: 1" in report and "noted (kept) [channels]: 1" in report
    assert f"{chapter / '1272-128104-0009.flac'}: transcript without audio" in report
    assert f"{chapter / '1272-128104.trans.txt'}:4: not UTF-8" in report


def test_librispeech_prep_names_a_missing_subset(librispeech_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\['test-other'\] not found"):
        prepare_librispeech(librispeech_corpus, ["dev-clean", "test-other"], tmp_path / "out")
    assert main(["--root", str(tmp_path), "--subset", "dev-clean", "--out", str(tmp_path / "out")]) == 2
