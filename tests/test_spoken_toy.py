"""The toy language spoken by espeak-ng (tests/fixtures/spoken_toy.py): audio, manifests, text side, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr_gan.manifest import read_manifest
from tests.fixtures import tts
from tests.fixtures.spoken_toy import ESPEAK_PHONEMES, espeak_input, main, make_spoken_toy
from tests.fixtures.toy_phones import PHONES


def test_spoken_toy_writes_padded_16k_audio_of_the_toy_language_and_its_text_side(tmp_path):
    paths = make_spoken_toy(tmp_path / "toy", num_audio=4, num_dev=2, num_text=40, pad=0.2, progress=False)
    train, dev = read_manifest(paths["train"]), read_manifest(paths["dev"])
    assert [u.utt_id for u in train] == [f"train{n:04d}" for n in range(4)] and len(dev) == 2
    for utt in train + dev:
        audio, rate = sf.read(utt.audio, dtype="int16")
        assert rate == 16000 and audio.ndim == 1 and len(audio) == utt.num_samples
        assert not audio[:3200].any() and not audio[-3200:].any()  # 0.2 s of silence at both ends
        assert np.abs(audio[3200:-3200]).max() > 1000  # and speech between them
        phones = utt.phones.split()
        assert 6 <= len(phones) <= 13 and set(phones) <= set(PHONES)
        assert all(a != b for a, b in zip(phones, phones[1:]))  # the toy chain never repeats a phone
    text = [line.split() for line in paths["text"].read_text().splitlines()]
    assert len(text) == 40 and all(s[0] == s[-1] == "sil" and set(s[1:-1]) <= set(PHONES) for s in text)
    spoken = {tuple(u.phones.split()) for u in train + dev}
    assert not spoken & {tuple(s[1:-1]) for s in text}, "audio and text sentences are separate draws"
    assert espeak_input(["b", "aa", "d"]) == "[[bA:d]]" and set(ESPEAK_PHONEMES) == set(PHONES)


def test_spoken_toy_is_deterministic_and_names_a_voice_espeak_does_not_know(tmp_path, capsys):
    first = make_spoken_toy(tmp_path / "a", num_audio=2, num_dev=1, num_text=5, progress=False)
    tts._CACHE.clear()  # synthesise again rather than reuse this process's cached audio
    second = make_spoken_toy(tmp_path / "b", num_audio=2, num_dev=1, num_text=5, progress=False)
    assert first["text"].read_bytes() == second["text"].read_bytes()
    for name in ("train", "dev"):
        wavs_a = sorted((tmp_path / "a" / "wav" / name).glob("*.wav"))
        assert wavs_a and all(w.read_bytes() == Path(tmp_path / "b" / "wav" / name / w.name).read_bytes()
                              for w in wavs_a)
    assert main(["--out", str(tmp_path / "c"), "--voices", "en-us+f2", "no-such-voice", "--no-progress"]) == 1
    assert "['no-such-voice']: not espeak-ng voices" in capsys.readouterr().err
    assert not (tmp_path / "c").exists(), "a bad voice is refused before anything is written"
    assert main(["--out", str(tmp_path / "c"), "--voices", "en-us+f2", "en-us+nonesuch", "--no-progress"]) == 1
    assert "['en-us+nonesuch']: not espeak-ng voices" in capsys.readouterr().err
    make_spoken_toy(tmp_path / "d", num_audio=1, num_dev=1, num_text=1, voices=["gmw/en", "en-us+f2"],
                    progress=False)
    unpadded = make_spoken_toy(tmp_path / "e", num_audio=2, num_dev=1, num_text=5, pad=0.0, progress=False)
    lengths = [[u.num_samples for u in read_manifest(p[name])] for p in (first, unpadded) for name in ("train", "dev")]
    assert [a - b for a, b in zip(sum(lengths[:2], []), sum(lengths[2:], []))] == [6400, 6400, 6400]
