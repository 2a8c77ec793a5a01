"""Silence statistics of the training audio, and the text silences they set (asr_gan.features.silence_stats)."""

import json

import numpy as np
import soundfile

from asr_gan.features.silence_stats import main, measure, utterance_silences
from asr_gan.manifest import Utterance, write_manifest
from tests.fixtures.tts import SAMPLE_RATE, EspeakVoice, synthesise


def _speech(text: str, trim: bool = True) -> np.ndarray:
    """espeak-ng's audio of `text`, cut to its first and last audible sample unless `trim` is False."""
    wave = synthesise(text, EspeakVoice()).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(wave) > 0.01)
    return wave[loud[0]:loud[-1] + 1] if trim else wave


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def test_espeak_speaks_from_the_first_sample_and_ends_in_a_pause():
    # The TTS fact behind the option: the demo's espeak voices have no leading silence.
    lead, trail, inner = utterance_silences(_speech("seven oranges and a big blue cat", trim=False))
    assert (lead, trail) == (False, True)
    assert inner <= 1  # a stop closure at most; espeak does not pause between these words


def test_edges_and_pauses_counted_at_their_thresholds():
    a, b = _speech("we were all"), _speech("near a lonely river")
    padded = np.concatenate([_silence(0.3), a, _silence(0.4), b, _silence(0.6)])
    assert utterance_silences(padded) == (True, True, 1)
    # a 0.4 s pause is no pause when pauses must last 0.5 s, and a 0.3 s lead no edge silence at 0.5 s
    assert utterance_silences(padded, min_edge=0.5, min_pause=0.5) == (False, True, 0)
    assert utterance_silences(np.concatenate([a, b])) == (False, False, 0)
    assert utterance_silences(_silence(1.0)) == (False, False, 0)  # nothing to measure against


def _manifest(tmp_path, waves: dict[str, np.ndarray | bytes]):
    rows = []
    for utt_id, wave in waves.items():
        path = tmp_path / f"{utt_id}.wav"
        if isinstance(wave, bytes):
            path.write_bytes(wave)
            samples = 16000
        else:
            soundfile.write(path, wave, SAMPLE_RATE)
            samples = len(wave)
        rows.append(Utterance(utt_id, str(path), samples, SAMPLE_RATE, "spk"))
    manifest = tmp_path / "train.jsonl"
    write_manifest(manifest, rows)
    return manifest


def test_cli_reports_shares_and_skips_unreadable_audio(tmp_path, capsys):
    speech = _speech("near a lonely river")
    manifest = _manifest(tmp_path, {
        "u1": np.concatenate([speech, _silence(0.2)]),  # trailing only
        "u2": np.concatenate([_silence(0.2), speech, _silence(0.2)]),  # both
        "u3": np.concatenate([_silence(0.2), speech, _silence(0.3), speech, _silence(0.2)]),  # both + a pause
        "u4": b"RIFF\x00\x00not a wav",  # corrupt
    })
    out = tmp_path / "stats" / "audio_silences.json"
    assert main(["--manifest", str(manifest), "--out", str(out), "--no-progress"]) == 0
    stats = json.loads(out.read_text())
    assert stats["utterances"] == 3
    assert abs(stats["leading"] - 2 / 3) < 1e-3 and stats["trailing"] == 1.0
    assert abs(stats["inner_per_utterance"] - 1 / 3) < 1e-3
    assert [s["utt_id"] for s in stats["skipped"]] == ["u4"] and "u4.wav" in stats["skipped"][0]["reason"]
    assert "skipped u4" in capsys.readouterr().err

    # --vad measures what `extract --vad` feeds the frontend: its 150 ms hangover leaves short edge silences.
    assert main(["--manifest", str(manifest), "--out", str(out), "--no-progress", "--vad"]) == 0
    assert json.loads(out.read_text())["vad"] is True


def test_sample_draws_a_subset_and_all_unreadable_is_an_error(tmp_path, capsys):
    manifest = _manifest(tmp_path, {f"u{i}": _speech("near a lonely river") for i in range(4)})
    assert measure(manifest, sample=2, progress=False).utterances == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    manifest = _manifest(broken, {"x": b"junk"})
    assert main(["--manifest", str(manifest), "--out", str(tmp_path / "s.json"), "--no-progress"]) == 1
    assert "x.wav" in capsys.readouterr().err and not (tmp_path / "s.json").exists()
