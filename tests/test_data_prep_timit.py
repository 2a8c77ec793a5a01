import collections
import logging

import numpy as np
import pytest
import soundfile

from asr_gan.manifest import read_manifest, validate_manifest
from asr_gan.text.normalize import normalize_sentence
from data_prep.timit import main, prepare_timit
from data_prep.timit_labels import fold_timit_phones
from tests.fixtures.timit_layout import expected_phones_39, fixture_utterances, make_timit_fixture

# The session corpus: 4 TRAIN speakers, 2 dev, 2 core test, 1 other TEST speaker, 10 utterances each.
FIXTURE = {f"{u.speaker.lower()}_{u.sentence}": u for u in fixture_utterances()}


def _sentence_id(utt_id: str) -> str:
    return utt_id.rsplit("_", 1)[1]


def test_fold_timit_phones_to_39_deletes_q_and_maps_closures_and_pauses_to_sil():
    phones = ["h#", "bcl", "b", "q", "ao", "zh", "ax-h", "pau", "epi", "ix", "tcl", "ch", "h#"]
    assert fold_timit_phones(phones, to=39) == ["sil", "sil", "b", "aa", "sh", "ah", "sil", "sil", "ih", "sil",
                                                "ch", "sil"]
    assert fold_timit_phones(phones, to=48) == ["sil", "vcl", "b", "ao", "zh", "ax", "sil", "epi", "ix", "cl",
                                                "ch", "sil"]
    # Kaldi-style 48-set transcripts fold to the scoring set too.
    assert fold_timit_phones(["vcl", "cl", "ix", "el"], to=39) == ["sil", "sil", "ih", "l"]
    with pytest.raises(ValueError, match="'xx'"):
        fold_timit_phones(["aa", "xx"])


def test_timit_prep_builds_standard_sets_without_sa_and_39_phone_transcripts(timit_corpus, tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING):
        assert main(["--timit", str(timit_corpus.parent), "--out", str(out)]) == 0
    sets = {name: read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test")}

    # 8 SI+SX per speaker; SA excluded; the TEST speaker in neither list is in no set.
    assert [len(sets[n]) for n in ("train", "dev", "test")] == [32, 16, 16]
    assert {u.speaker for u in sets["train"]} == {"fcjf0", "mcpm0", "fdaw0", "mdac0"}
    assert {u.speaker for u in sets["dev"]} == {"faks0", "mgwt0"}
    assert {u.speaker for u in sets["test"]} == {"mdab0", "felc0"}
    all_utts = [u for utts in sets.values() for u in utts]
    assert not any(_sentence_id(u.utt_id).startswith("sa") for u in all_utts)
    assert {_sentence_id(u.utt_id)[:2] for u in all_utts} == {"si", "sx"}

    for utt in all_utts:
        source = FIXTURE[utt.utt_id]
        assert utt.phones == expected_phones_39(source.text)
        assert utt.words == normalize_sentence(source.text)
        info = soundfile.info(utt.audio)
        assert (info.format, info.frames, info.samplerate) == ("NIST", utt.num_samples, 16000)
    assert validate_manifest(all_utts) == []
    phones_39 = {p for u in all_utts for p in u.phones.split()}
    assert "sil" in phones_39 and not phones_39 & {"q", "h#", "pau", "bcl", "tcl", "ao", "zh"}

    # Reference phones with their .PHN times, for the alignment pictures: the manifest's phones, in time order.
    from asr_gan.ctm import read_ctm

    for name, utts in sets.items():
        timed = read_ctm(out / f"{name}.ref.ctm")
        assert list(timed) == [u.utt_id for u in utts]
        for utt in utts:
            assert [p for p, _, _ in timed[utt.utt_id]] == utt.phones.split()
            times = [(start, end) for _, start, end in timed[utt.utt_id]]
            assert all(0 <= a <= b <= utt.num_samples / 16000 + 0.05 for a, b in times)
            assert all(x[1] <= y[0] + 1e-3 for x, y in zip(times, times[1:]))  # 4 decimals in the CTM

    # Matched text: the train transcripts, one per line, unpaired (shuffled).
    text = (out / "train_text.phn").read_text().splitlines()
    assert collections.Counter(text) == collections.Counter(u.phones for u in sets["train"])
    assert text != [u.phones for u in sets["train"]]

    report = (out / "prep_report.txt").read_text()
    assert "train: 32 utterances of 4 speakers, the standard set has 3696 of 462" in report
    assert "test: 16 utterances of 2 speakers, the standard set has 192 of 24" in report
    assert any("3696" in r.message for r in caplog.records if r.levelno == logging.WARNING)


def test_timit_prep_reads_lower_case_layout_and_ignores_wav_wav_copies(timit_corpus, tmp_path):
    lower = make_timit_fixture(tmp_path / "lower", upper_case=False)
    assert lower.name == "timit" and (lower / "train" / "dr1" / "fcjf0" / "si453.wav").is_file()
    # A Kaggle-style RIFF conversion beside a SPHERE file must not become a second utterance.
    spare = lower / "train" / "dr1" / "fcjf0" / "si453.wav.wav"
    soundfile.write(spare, np.zeros(1600, dtype=np.int16), 16000)
    lower_sets = prepare_timit(lower, tmp_path / "out_lower")
    upper_sets = prepare_timit(timit_corpus, tmp_path / "out_upper")
    for name in ("train", "dev", "test"):
        assert [u.utt_id for u in lower_sets[name]] == [u.utt_id for u in upper_sets[name]]
        assert [u.phones for u in lower_sets[name]] == [u.phones for u in upper_sets[name]]
    audio = {u.utt_id: u.audio for u in lower_sets["train"]}
    assert audio["fcjf0_si453"].endswith("/si453.wav")


def test_timit_unmatched_text_shares_no_sentence_id_with_the_training_audio(timit_corpus, tmp_path):
    out = tmp_path / "unmatched"
    sets = prepare_timit(timit_corpus, out, setting="unmatched", text_fraction=0.3, seed=1)
    audio_part = read_manifest(out / "train.jsonl")
    assert [u.utt_id for u in audio_part] == [u.utt_id for u in sets["train"]]
    text = (out / "train_text.phn").read_text().splitlines()

    train_ids = {key for key, u in FIXTURE.items() if u.usage == "TRAIN" and not u.sentence.startswith("sa")}
    text_ids = train_ids - {u.utt_id for u in audio_part}
    assert len(audio_part) + len(text) == 32 and 6 <= len(text) <= 14  # about 30 %, whole sentence groups
    assert collections.Counter(text) == collections.Counter(expected_phones_39(FIXTURE[i].text) for i in text_ids)
    assert not {_sentence_id(i) for i in text_ids} & {_sentence_id(u.utt_id) for u in audio_part}
    # dev and test stay the standard sets.
    assert [len(sets["dev"]), len(sets["test"])] == [16, 16]


def test_timit_prep_skips_corrupt_truncated_missing_and_non_utf8_files_and_names_them(timit_corpus_copy, tmp_path):
    speaker = timit_corpus_copy / "TRAIN" / "DR1" / "FCJF0"
    (speaker / "SI453.WAV").write_bytes(b"not audio at all" * 64)  # corrupt
    full = (speaker / "SI454.WAV").read_bytes()
    (speaker / "SI454.WAV").write_bytes(full[: 1024 + (len(full) - 1024) // 2])  # truncated SPHERE
    (speaker / "SX3.PHN").unlink()  # missing
    (speaker / "SX4.PHN").write_bytes((speaker / "SX4.PHN").read_bytes() + b"100 200 \xe9\n")  # latin-1 byte
    # .WRD not UTF-8 but .TXT fine: kept, words from .TXT. Both bad: skipped.
    (speaker / "SX5.WRD").write_bytes(b"0 100 caf\xe9\n")
    (speaker / "SX6.WRD").write_bytes(b"0 100 caf\xe9\n")
    (speaker / "SX6.TXT").write_bytes(b"0 100 caf\xe9\n")

    out = tmp_path / "data"
    sets = prepare_timit(timit_corpus_copy, out)
    kept = {u.utt_id: u for u in sets["train"]}
    assert len(kept) == 32 - 5
    assert not {"fcjf0_si453", "fcjf0_si454", "fcjf0_sx3", "fcjf0_sx4", "fcjf0_sx6"} & set(kept)
    assert kept["fcjf0_sx5"].words == normalize_sentence(FIXTURE["fcjf0_sx5"].text)

    report = (out / "prep_report.txt").read_text()
    assert "skipped: 5" in report
    assert "skipped [unreadable audio]: 2" in report
    assert f"{speaker / 'SI453.WAV'}: unreadable audio" in report
    assert f"{speaker / 'SI454.WAV'}: truncated SPHERE file" in report
    assert "skipped [missing file]: 1" in report and "no .PHN file for fcjf0_sx3" in report
    assert f"{speaker / 'SX4.PHN'}: not UTF-8 (byte 0xe9" in report
    assert "skipped [no usable words]: 1" in report and f"{speaker / 'SX6.TXT'}: not UTF-8" in report
    assert "noted (kept) [words from .TXT]: 1" in report and f"{speaker / 'SX5.WRD'}: not UTF-8" in report
    assert len(sets["dev"]) == 16 and len(sets["test"]) == 16


def test_timit_prep_notes_8khz_audio_and_skips_audio_shorter_than_its_phn(timit_corpus_copy, tmp_path):
    from tests.fixtures.timit_layout import write_sphere

    speaker = timit_corpus_copy / "TRAIN" / "DR1" / "FCJF0"
    samples = soundfile.read(speaker / "SI455.WAV", dtype="int16")[0]
    write_sphere(speaker / "SI455.WAV", samples[::2], rate=8000)  # same duration at 8 kHz: kept, noted
    write_sphere(speaker / "SX7.WAV",
                 soundfile.read(speaker / "SX7.WAV", dtype="int16")[0][:4000])  # consistent but short
    sets = prepare_timit(timit_corpus_copy, tmp_path / "data")
    kept = {u.utt_id: u for u in sets["train"]}
    assert kept["fcjf0_si455"].sample_rate == 8000
    assert "fcjf0_sx7" not in kept
    report = (tmp_path / "data" / "prep_report.txt").read_text()
    assert "noted (kept) [sample rate]: 1" in report and "SI455.WAV: 8000 Hz" in report
    assert "skipped [audio shorter than .PHN]: 1" in report


def test_timit_cli_names_a_folder_without_train_or_test(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--timit", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no TRAIN/ or TEST/ folder" in capsys.readouterr().err
