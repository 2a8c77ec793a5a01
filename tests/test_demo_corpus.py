import json
import os
from pathlib import Path

import soundfile

from asr_gan.manifest import read_manifest, validate_manifest
from asr_gan.text.lexicon import Pronouncer
from data_prep.demo import DemoConfig, main, prepare_demo


def test_tiny_demo_corpus_is_unpaired_16k_mono_with_unseen_test_voices(tmp_path):
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--size", "tiny", "--seed", "3"]) == 0
    manifests = {split: read_manifest(out / f"{split}.jsonl") for split in ("train", "dev", "test")}
    assert [len(manifests[s]) for s in ("train", "dev", "test")] == [12, 4, 4]
    for utts in manifests.values():
        assert validate_manifest(utts) == []

    # Unpaired: no spoken sentence is in the text corpus, and splits share no sentence.
    text = (out / "text_corpus.txt").read_text().splitlines()
    assert len(text) == 300 and len(set(text)) == 300
    spoken = [u.words for utts in manifests.values() for u in utts]
    assert len(set(spoken)) == len(spoken) and not set(spoken) & set(text)
    assert all(5 <= len(s.split()) <= 15 for s in spoken + text)

    # Dev and test voices are never heard in training; training has several voices.
    speakers = {split: {u.speaker for u in utts} for split, utts in manifests.items()}
    assert not speakers["train"] & (speakers["dev"] | speakers["test"])
    assert not speakers["dev"] & speakers["test"]
    assert len(speakers["train"]) >= 8

    for utt in manifests["train"] + manifests["test"]:
        info = soundfile.info(utt.audio)
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, utt.num_samples)
        assert 0.8 < utt.duration < 12.0

    # Reference phones come from our lexicon / G2P, without silence.
    pronouncer = Pronouncer()
    for utt in manifests["test"]:
        prons = pronouncer.sentence_prons(utt.words)
        assert utt.phones == " ".join(p for pron in prons for p in pron)

    # Speakers differ in speed and pitch.
    voices = json.loads((out / "speakers.json").read_text())
    settings = {(v["rate"], v["pitch"]) for vs in voices.values() for v in vs}
    assert len(settings) == sum(len(vs) for vs in voices.values())


def test_demo_corpus_is_deterministic_and_keeps_existing_audio(tmp_path):
    config = DemoConfig(out=tmp_path / "a", size="tiny", num_train_utts=3, num_dev_utts=1, num_test_utts=1,
                        num_text_sentences=20, seed=5)
    first = prepare_demo(config)
    wav = first["train"][0].audio
    stamp = os.stat(wav).st_mtime_ns
    again = prepare_demo(config)
    assert again == first and os.stat(wav).st_mtime_ns == stamp
    other = prepare_demo(DemoConfig(out=tmp_path / "b", size="tiny", num_train_utts=3, num_dev_utts=1,
                                    num_test_utts=1, num_text_sentences=20, seed=5))
    assert [u.words for u in other["train"]] == [u.words for u in first["train"]]
    assert (tmp_path / "a/text_corpus.txt").read_text() == (tmp_path / "b/text_corpus.txt").read_text()
    # The audio too, byte for byte (sox's dither is seeded).
    for a, b in zip(first["train"] + first["test"], other["train"] + other["test"]):
        assert Path(a.audio).read_bytes() == Path(b.audio).read_bytes(), (a.audio, b.audio)


def test_voices_option_speaks_every_split_with_the_named_voices_and_names_a_bad_one(tmp_path, capsys):
    args = ["--size", "tiny", "--num-train-utts", "2", "--num-dev-utts", "1", "--num-test-utts", "1",
            "--num-text-sentences", "20"]
    assert main(["--out", str(tmp_path / "one"), *args, "--voices", "espeak-ng:en-us"]) == 0
    speakers = {u.speaker for s in ("train", "dev", "test") for u in read_manifest(tmp_path / "one" / f"{s}.jsonl")}
    assert speakers == {"es-en-us"}
    assert main(["--out", str(tmp_path / "bad"), *args, "--voices", "en-us"]) == 1
    assert "--voices 'en-us'" in capsys.readouterr().err
    # A voice the engine lacks would be spoken in its default voice without a word: it is refused up front.
    for unknown in ("espeak-ng:no-such-voice", "espeak-ng:en-us+no-such-variant", "flite:no-such-voice"):
        assert main(["--out", str(tmp_path / "unknown"), *args, "--voices", unknown]) == 1
        assert f"--voices {unknown!r}" in capsys.readouterr().err
        assert not (tmp_path / "unknown" / "train.jsonl").exists()
