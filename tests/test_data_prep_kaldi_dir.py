import numpy as np
import pytest
import soundfile

from asr_gan.audio import load_audio
from asr_gan.manifest import read_manifest
from data_prep.kaldi_dir import main, prepare_kaldi_dir, resolve_known_command
from tests.fixtures.timit_layout import write_sphere

RATE = 16000


def _tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.4 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def _write_data_dir(path, files: dict[str, str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (path / name).write_text(content, encoding="utf-8")


def test_resolve_known_command_finds_the_file_only_for_pass_through_commands():
    assert str(resolve_known_command("sph2pipe -f wav /c/TRAIN/DR1/FCJF0/SA1.WAV |")) == "/c/TRAIN/DR1/FCJF0/SA1.WAV"
    assert str(resolve_known_command("/opt/kaldi/tools/sph2pipe -p -f wav a.sph |")) == "a.sph"
    assert str(resolve_known_command("flac -c -d -s /d/1272-128104-0000.flac |")) == "/d/1272-128104-0000.flac"
    assert str(resolve_known_command("sox x.flac -t wav - |")) == "x.flac"
    # Options that change the audio, effects, several inputs or other programs: run the command instead.
    assert resolve_known_command("sph2pipe -f wav -t 1.0:2.0 a.sph |") is None
    assert resolve_known_command("sph2pipe -f wav -c 2 a.sph |") is None
    assert resolve_known_command("sox x.flac -t wav - rate 8000 |") is None
    assert resolve_known_command("cat a.wav b.wav |") is None
    assert resolve_known_command("ffmpeg -i x.mp3 -f wav - |") is None


def test_kaldi_dir_with_segments_and_piped_wav_scp_entries(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    soundfile.write(audio / "long.wav", _tone(2.0), RATE)
    write_sphere(audio / "SA1.WAV", _tone(1.0, 330.0))
    soundfile.write(audio / "b.flac", _tone(1.5, 440.0), RATE)
    data = tmp_path / "data" / "train"
    _write_data_dir(data, {
        "wav.scp": (
            f"rec1 {audio / 'long.wav'}\n"
            f"rec2 sph2pipe -f wav {audio / 'SA1.WAV'} |\n"  # resolved to the file (sph2pipe is not even installed)
            f"rec3 flac -c -d -s {audio / 'b.flac'} |\n"
            f"rec4 sox {audio / 'b.flac'} -t wav - gain -6 |\n"  # effects: run, output cached
            "rec5 false |\n"
            f"rec6 {audio / 'missing.wav'}\n"
        ),
        "segments": (
            "spk1-a rec1 0.0 1.0\nspk1-b rec1 1.0 -1\nspk1-c rec1 1.5 3.0\n"
            "spk2-a rec2 0.0 1.0\nspk2-b rec3 0.25 1.5\nspk2-c rec4 0 -1\nspk2-d rec5 0 1\nspk2-e rec6 0 1\n"
        ),
        "text": "spk1-a HELLO   there\nspk1-b second part\nspk2-a a b\nspk2-b c\nspk2-c d\nspk9-x no audio\n",
        "utt2spk": "spk1-a spk1\nspk1-b spk1\nspk1-c spk1\nspk2-a spk2\nspk2-b spk2\n",
    })
    out = tmp_path / "exp" / "train.jsonl"
    assert main(["--data-dir", str(data), "--out", str(out)]) == 0
    utts = {u.utt_id: u for u in read_manifest(out)}
    assert sorted(utts) == ["spk1-a", "spk1-b", "spk2-a", "spk2-b", "spk2-c"]

    a, b = utts["spk1-a"], utts["spk1-b"]
    assert (a.audio, a.start, a.end, a.num_samples, a.words, a.speaker) == (
        str(audio / "long.wav"), 0.0, 1.0, 32000, "HELLO there", "spk1")
    assert (b.start, b.end, b.duration) == (1.0, None, 1.0)
    assert utts["spk2-a"].audio == str(audio / "SA1.WAV") and utts["spk2-a"].num_samples == 16000
    assert utts["spk2-b"].audio == str(audio / "b.flac") and utts["spk2-b"].duration == pytest.approx(1.25)
    assert len(load_audio(utts["spk2-b"].audio, start=0.25, end=1.5)) == 20000

    # The sox command ran; its output sits in the cache beside the manifest, 6 dB quieter than its input.
    cached = utts["spk2-c"]
    assert cached.audio == str(out.parent / "train.jsonl.wav_cache" / "rec4.wav")
    ratio = np.abs(load_audio(cached.audio)).max() / np.abs(load_audio(audio / "b.flac")).max()
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=0.02)
    # No utt2spk line: speaker = utterance id.
    assert cached.speaker == "spk2-c"

    report = (out.parent / "train.prep_report.txt").read_text()
    assert "skipped [unreadable audio]: 2" in report
    assert "command failed (exit 1): false |" in report
    assert f"{audio / 'missing.wav'}: file not found" in report
    assert "skipped [no audio]: 2" in report  # spk2-d, spk2-e lost their recordings
    assert "skipped [segment outside recording]: 1" in report and "spk1-c 1.5-3.0 s" in report
    assert "noted (kept) [text without audio]: 1" in report and "spk9-x" in report

    # A rerun reuses the cached output instead of running the command again.
    mtime = (out.parent / "train.jsonl.wav_cache" / "rec4.wav").stat().st_mtime_ns
    prepare_kaldi_dir(data, out)
    assert (out.parent / "train.jsonl.wav_cache" / "rec4.wav").stat().st_mtime_ns == mtime


def test_kaldi_dir_phones_from_text_without_segments_or_utt2spk_and_non_utf8_lines(tmp_path):
    soundfile.write(tmp_path / "u1.wav", _tone(0.5), RATE)
    soundfile.write(tmp_path / "u2.wav", _tone(0.5), RATE)
    data = tmp_path / "dir"
    _write_data_dir(data, {"wav.scp": f"u1 {tmp_path / 'u1.wav'}\nu2 {tmp_path / 'u2.wav'}\n"})
    (data / "text").write_bytes(b"u1 sil dh ah sil\nu2 caf\xe9\n")
    utts = prepare_kaldi_dir(data, tmp_path / "out.jsonl", phones_from_text=True)
    assert [(u.utt_id, u.phones, u.words, u.speaker) for u in utts] == [
        ("u1", "sil dh ah sil", None, "u1"), ("u2", None, None, "u2")]
    report = (tmp_path / "out.prep_report.txt").read_text()
    assert f"{data / 'text'}:2: not UTF-8" in report and "noted (kept) [no utt2spk]: 1" in report


def test_kaldi_dir_cli_names_a_folder_without_wav_scp(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert f"{tmp_path / 'wav.scp'}: not found" in capsys.readouterr().err
