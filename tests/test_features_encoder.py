"""The cross-lingual phone encoder: espeak-ng phonemes to shared phones, training on tiny data, checkpoints, and
the shipped checkpoint as a feature frontend."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch

from asr_gan.features.__main__ import main as features_main
from asr_gan.features.encoder.__main__ import main as encoder_main
from asr_gan.features.encoder.checkpoint import ENCODER_LAYER, SHIPPED_CHECKPOINT, load_encoder, save_encoder
from asr_gan.features.encoder.corpus import read_words
from asr_gan.features.encoder.model import EncoderConfig, PhoneEncoder
from asr_gan.features.encoder.phonemes import LanguageSwitch, ipa_to_phones
from asr_gan.features.encoder.train import length_batches, warp_mel
from asr_gan.features.frontends import FrontendConfig, build_frontend
from asr_gan.features.storage import FeatureSet
from asr_gan.manifest import Utterance, write_manifest

torch.set_num_threads(1)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_ipa_keeps_base_letters_and_affricates_and_splits_diphthongs():
    # French "bonjour les enfants", Portuguese "pão", Italian "ragazzi", Polish "dzień" as espeak-ng writes them.
    assert ipa_to_phones("b_ɔ̃_ʒ_ˈu_ʁ l_e-_z ɑ̃_f_ˈɑ̃") == list("bɔʒuʁlezɑfɑ")
    assert ipa_to_phones("p_ˈɐ̃ʊ̃") == ["p", "ɐ", "ʊ"]
    assert ipa_to_phones("r_a_g_ˈa_tsː_ɪ") == ["r", "a", "ɡ", "a", "ts", "ɪ"]  # ASCII g is IPA ɡ
    assert ipa_to_phones("dʑ_ˈɛ_ɲ  tʰ_a") == ["dʑ", "ɛ", "ɲ", "t", "a"]
    assert ipa_to_phones("?_ˈa_l_ə") == ["ʔ", "a", "l", "ə"]  # German's glottal stop
    with pytest.raises(LanguageSwitch, match="switched language"):
        ipa_to_phones("m_e_ʁ_i_t_e (en)_ɪ_ð_ə(fr)")


def test_word_lists_keep_lower_case_words_and_name_a_missing_or_undecodable_file(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("Berlin\nhaus\nx\nbaum\nzwei-drei\nhaus\n", encoding="utf-8")
    assert read_words("de", str(words)) == ["baum", "haus"]
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_words("de", str(tmp_path / "nowhere.txt"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("k\xf6ra\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.txt: not utf-8"):
        read_words("sv", str(latin))


def test_warp_and_batches_keep_shapes_and_every_utterance():
    mel = torch.arange(12.0).repeat(3, 1)  # (3 frames, 12 bands)
    assert torch.equal(warp_mel(mel, 1.0), mel)
    assert warp_mel(mel, 0.5)[0, 4].item() == pytest.approx(2.0)
    lengths = np.array([50, 400, 60, 380, 70, 55])
    batches = length_batches(lengths, 800, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len(b) * lengths[b].max() <= 800 or len(b) == 1 for b in batches)


def test_encoder_layers_have_half_the_frame_rate_and_ignore_padding():
    model = PhoneEncoder(EncoderConfig(channels=16, blocks=2, num_phones=5)).eval()
    mel = torch.randn(1, 41, 80)
    padded = torch.cat([mel, torch.zeros(1, 9, 80)], dim=1)
    alone, lengths = model.layers(mel, torch.tensor([41]))
    batched, _ = model.layers(torch.cat([padded, torch.randn(1, 50, 80)]), torch.tensor([41, 50]))
    assert len(alone) == 3 and alone[-1].shape == (1, 21, 16) and lengths.tolist() == [21]
    assert torch.allclose(batched[-1][0, :21], alone[-1][0], atol=1e-5)


def test_checkpoint_round_trips_in_half_precision(tmp_path):
    model = PhoneEncoder(EncoderConfig(channels=16, blocks=2, num_phones=4)).eval()
    save_encoder(tmp_path / "enc.pt", model, ["a", "b", "c", "d"], {"seed": 3})
    loaded = load_encoder(tmp_path / "enc.pt")
    assert loaded.phones == ["a", "b", "c", "d"] and loaded.info == {"seed": 3}
    mel = torch.randn(2, 30, 80)
    lengths = torch.tensor([30, 22])
    with torch.no_grad():
        want = model(mel, lengths)[0]
        got = loaded.model(mel, lengths)[0]
    assert torch.allclose(want, got, atol=2e-2)
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a phone encoder checkpoint"):
        load_encoder(tmp_path / "other.pt")


@needs_espeak
def test_encoder_trains_on_tiny_data_and_its_loss_falls(tmp_path):
    lists = []
    for language, words in {"de": "haus baum katze hund wasser brot milch vogel", "es": "casa perro gato agua "
                            "pan leche luna sol"}.items():
        path = tmp_path / f"{language}.txt"
        path.write_text("\n".join(words.split()), encoding="utf-8")
        lists += ["--word-list", f"{language}={path}"]
    out = tmp_path / "enc"
    assert encoder_main(["train", "--out", str(out), "--languages", "de,es", "--sentences", "14", "--heldout", "2",
                         "--channels", "32", "--blocks", "2", "--epochs", "12", "--lr", "3e-3", "--batch-frames",
                         "3000", "--workers", "1", "--no-progress", *lists]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 12
    assert log[-1]["ctc_loss"] < 0.6 * log[0]["ctc_loss"]
    report = json.loads((out / "report.json").read_text())
    assert report["languages"] == ["de", "es"] and set(report["heldout_per"]) == {"de", "es", "all"}
    loaded = load_encoder(out / "encoder.pt")
    assert loaded.model.config.channels == 32 and "a" in loaded.phones
    # A second run speaks nothing again: the corpus is kept.
    assert (out / "corpus" / "de.npz").exists() and (out / "corpus" / "es.json").exists()


def test_shipped_checkpoint_gives_50_frames_a_second_of_its_width():
    assert SHIPPED_CHECKPOINT.exists(), "the package ships its phone encoder"
    loaded = load_encoder()
    assert len(loaded.phones) > 30 and "en" not in loaded.info["languages"]
    frontend = build_frontend(FrontendConfig(kind="encoder", layer=ENCODER_LAYER))
    wave = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    frames = frontend(wave)
    assert frontend.frame_rate == 50.0 and frontend.dim == loaded.model.config.channels
    # One second: 98 log-mel frames (25 ms windows every 10 ms, the last incomplete one dropped) -> 49.
    assert frames.shape == (49, frontend.dim) and np.isfinite(frames).all()
    with pytest.raises(ValueError, match="out of range"):
        build_frontend(FrontendConfig(kind="encoder", layer=loaded.model.config.blocks + 1))


@needs_espeak
def test_features_cli_extracts_encoder_frames(tmp_path):
    utts = []
    for i, text in enumerate(["seven oranges", "a big blue cat"]):
        path = tmp_path / f"utt{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        info = soundfile.info(str(path))
        utts.append(Utterance(utt_id=f"utt{i}", audio=str(path), num_samples=info.frames,
                              sample_rate=info.samplerate, speaker="spk"))
    write_manifest(tmp_path / "m.jsonl", utts)
    assert features_main(["extract", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f"),
                          "--frontend", "encoder", "--layer", "2", "--cmvn", "none"]) == 0
    features = FeatureSet(tmp_path / "f")
    assert features.meta["frame_rate"] == 50.0 and features.dim == load_encoder().model.config.channels
    seconds = utts[0].num_samples / utts[0].sample_rate
    assert abs(len(features.get(utts[0].utt_id)) - 50 * seconds) <= 2
