import numpy as np
import soundfile

from asr_gan.manifest import Utterance, write_manifest
from data_prep.validate import main, validate_file


def _wav(path, seconds=1.0, rate=16000):
    soundfile.write(path, (np.sin(np.arange(int(seconds * rate)) / 7.0) * 0.3).astype(np.float32), rate)
    return str(path)


def test_validator_accepts_a_sound_manifest_and_exits_zero(tmp_path, capsys):
    audio = _wav(tmp_path / "a.wav")
    write_manifest(tmp_path / "ok.jsonl", [
        Utterance("u1", audio, 16000, 16000, "s1", words="hello world", phones="sil hh ah sil"),
        Utterance("u2", audio, 16000, 16000, "s1", start=0.5, end=1.0),
    ])
    assert main([str(tmp_path / "ok.jsonl"), "--check-audio"]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'ok.jsonl'}: 2 utterances, 0 problems"


def test_validator_lists_every_problem_and_exits_nonzero(tmp_path, capsys):
    audio = _wav(tmp_path / "a.wav")
    cut = tmp_path / "cut.flac"
    _wav(cut)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    manifest = tmp_path / "bad.jsonl"
    write_manifest(manifest, [
        Utterance("u1", audio, 16000, 16000, "s1"),
        Utterance("u1", audio, 16000, 16000, "s1"),  # duplicate id
        Utterance("u2", audio, 8000, 16000, "s1"),  # header disagrees
        Utterance("u3", audio, 16000, 16000, "s1", start=0.5, end=2.0),  # span past the end
        Utterance("u4", str(tmp_path / "gone.wav"), 16000, 16000, "s1"),  # missing
        Utterance("u5", str(cut), 16000, 16000, "s1"),  # truncated
        Utterance("u6", audio, 16000, 16000, "s1", words="two  spaces"),
    ])
    # Without --check-audio only the manifest itself and file presence are checked.
    assert len(validate_file(manifest)) == 3
    assert main([str(manifest), "--check-audio"]) == 1
    out = capsys.readouterr().out
    for expected in (
        "utterance u1: duplicate utterance id",
        f"utterance u2: manifest says 8000 samples at 16000 Hz, {audio} holds 16000 at 16000 Hz",
        "utterance u3: span 0.5-2.0 s outside",
        f"utterance u4: audio file {tmp_path / 'gone.wav'} not found",
        f"utterance u5: {cut}: truncated or corrupt audio",
        "utterance u6: words has empty tokens or stray whitespace",
        f"{manifest}: 7 utterances, 6 problems",
    ):
        assert expected in out
    assert all(line.startswith(str(manifest)) for line in out.splitlines())


def test_validator_exits_two_on_an_unreadable_manifest(tmp_path, capsys):
    (tmp_path / "broken.jsonl").write_text('{"utt_id": "u1"\n')
    assert main([str(tmp_path / "broken.jsonl")]) == 2
    assert f"{tmp_path / 'broken.jsonl'}:1: not JSON" in capsys.readouterr().out
