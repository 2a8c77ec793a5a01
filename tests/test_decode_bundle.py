"""The model bundle and `python -m asr_gan.decode` on a tiny real pipeline: espeak-ng speech, MFCC + VAD frames, a
fitted PCA/k-means transform, a randomly initialised generator, a lexicon and real KenLM phone and word LMs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr_gan.audio import load_audio
from asr_gan.decode.__main__ import Transcriber, main
from asr_gan.decode.bundle import Bundle, BundleError
from asr_gan.decode.greedy import greedy_decode, symbols
from asr_gan.decode.timeline import position_frames, speech_to_original
from asr_gan.decode.write_bundle import write_bundle
from asr_gan.features.__main__ import main as features_main
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.storage import FeatureSet
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.models.generator import Generator
from asr_gan.text.lm import build_lm, find_kenlm_binary
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import read_checkpoint, save_checkpoint

torch.set_num_threads(1)

SENTENCES = ["the cat sat", "a dog ran", "the dog sat down", "a cat ran"]
PHONES = "AE AH AO D DH G K N R S T <SIL>".split()
LEXICON = {"the": "DH AH", "cat": "K AE T", "sat": "S AE T", "dog": "D AO G", "a": "AH", "ran": "R AE N",
           "down": "D AO N"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict[str, Path]:
    """Corpus, features, transform, segments, checkpoint, text side and a written bundle."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox needed")
    try:
        find_kenlm_binary("lmplz")
    except Exception as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("decode_model")
    utts = []
    for i, text in enumerate(SENTENCES):
        path = root / f"utt{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)  # 22.05 kHz mono
        info = soundfile.info(str(path))
        utts.append(Utterance(utt_id=f"utt{i}", audio=str(path), num_samples=info.frames,
                              sample_rate=info.samplerate, speaker=f"spk{i % 2}", words=text))
    write_manifest(root / "train.jsonl", utts)
    assert features_main(["extract", "--manifest", str(root / "train.jsonl"), "--out", str(root / "frames"),
                          "--vad"]) == 0
    assert features_main(["fit-transform", "--features", str(root / "frames"), "--out", str(root / "transform"),
                          "--pca-dim", "12", "--clusters", "6"]) == 0
    assert features_main(["segment", "--transform", str(root / "transform"), "--features", str(root / "frames"),
                          "--out", str(root / "segments")]) == 0

    torch.manual_seed(0)
    kwargs = {"input_dim": 12, "num_phones": len(PHONES), "kernel_size": 3, "hidden_layers": 1, "hidden_dim": 16}
    generator = Generator(**kwargs)
    # A training checkpoint carries resume state too; the bundle must leave it out.
    save_checkpoint(root / "checkpoint_best.pt", {
        "generator_kwargs": kwargs, "generator": generator.state_dict(), "phones": PHONES, "silence": "<SIL>",
        "config": {}, "step": 0, "discriminator": {"w": torch.zeros(1000, 100)}, "optimizers": {"g": {}}})
    PhoneInventory(PHONES).save(root / "phones.txt")
    (root / "lexicon.txt").write_text("".join(f"{w}\t{p}\n" for w, p in sorted(LEXICON.items())), encoding="utf-8")
    (root / "text.txt").write_text("\n".join(SENTENCES * 2) + "\n", encoding="utf-8")
    build_lm(root / "text.txt", root / "word_lm.arpa", order=3, bin_path=root / "word_lm.bin")
    phonemised = ["<SIL> " + " ".join(LEXICON[w] for w in s.split()) + " <SIL>" for s in SENTENCES]
    (root / "train_text.phn").write_text("\n".join(phonemised * 2) + "\n", encoding="utf-8")
    build_lm(root / "train_text.phn", root / "phone_lm.arpa", order=3, bin_path=root / "phone_lm.bin")
    write_bundle(root / "bundle", transform_dir=root / "transform", checkpoint=root / "checkpoint_best.pt",
                 phones=root / "phones.txt", lexicon=root / "lexicon.txt", phone_lm=root / "phone_lm.bin",
                 word_lm=root / "word_lm.bin", command="python -m asr_gan.train --demo")
    return {"root": root, "bundle": root / "bundle", "generator": generator}


@pytest.fixture(scope="module")
def audio_files(model, tmp_path_factory) -> dict[str, Path]:
    """One utterance in several formats, and bad files beside them."""
    source = model["root"] / "utt0.wav"
    out = tmp_path_factory.mktemp("formats")
    files = {"wav22k": source}
    subprocess.run(["sox", str(source), "-r", "8000", str(out / "u8k.wav")], check=True)
    files["wav8k"] = out / "u8k.wav"
    subprocess.run(["sox", str(source), "-r", "44100", "-c", "2", str(out / "u44k_stereo.wav")], check=True)
    files["wav44k_stereo"] = out / "u44k_stereo.wav"
    wave = load_audio(source)  # 16 kHz mono float
    soundfile.write(out / "u.flac", wave, 16000, format="FLAC", subtype="PCM_16")
    files["flac"] = out / "u.flac"
    soundfile.write(out / "u.sph", wave, 16000, format="NIST", subtype="PCM_16")
    files["sphere"] = out / "u.sph"
    (out / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all")
    files["corrupt"] = out / "corrupt.wav"
    (out / "empty.flac").write_bytes(b"")
    files["empty"] = out / "empty.flac"
    files["missing"] = out / "missing.wav"
    clicks = np.random.default_rng(0).normal(0, 1e-3, 16000).astype(np.float32)
    clicks[::1000] += 0.5  # one-sample clicks: the VAD finds no speech, so there is nothing to decode
    soundfile.write(out / "clicks.wav", clicks, 16000)
    files["clicks"] = out / "clicks.wav"
    return files


# ----------------------------------------------------------------------------------------------------- timing


def test_position_frames_follow_segment_lengths_and_generator_stride():
    first, end = position_frames(np.array([3, 2, 4, 1, 5]), stride=1)
    assert first.tolist() == [0, 3, 5, 9, 10] and end.tolist() == [3, 5, 9, 10, 15]
    first, end = position_frames(np.array([3, 2, 4, 1, 5]), stride=2)
    assert first.tolist() == [0, 5, 10] and end.tolist() == [5, 10, 15]


def test_the_extra_output_of_wav2vec_u_padding_takes_the_last_segment_s_frames():
    generator = Generator(4, 3, kernel_size=4, conv_padding="wav2vec_u").eval()
    segments = np.array([3, 2, 4, 1, 5])
    positions = generator.output_length(len(segments))
    assert positions == 6
    first, end = position_frames(segments, stride=1, positions=positions)
    assert first.tolist() == [0, 3, 5, 9, 10, 10] and end.tolist() == [3, 5, 9, 10, 15, 15]


def test_times_in_vad_trimmed_audio_map_back_to_the_original_recording():
    spans = [(16000, 32000), (48000, 56000)]  # speech at 1-2 s and 3-3.5 s
    starts = speech_to_original(np.array([0.0, 0.5, 1.0, 1.25]), spans, is_end=False)
    ends = speech_to_original(np.array([0.5, 1.0, 1.25, 1.5]), spans, is_end=True)
    np.testing.assert_allclose(starts, [1.0, 1.5, 3.0, 3.25])
    np.testing.assert_allclose(ends, [1.5, 2.0, 3.25, 3.5])


# ----------------------------------------------------------------------------------------------------- bundle


def test_bundle_holds_everything_and_only_the_generator_of_the_checkpoint(model):
    bundle_dir = model["bundle"]
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == ["bundle.json", "generator.pt", "lexicon.txt", "phone_lm.bin", "phones.txt", "transform",
                     "word_lm.bin"]
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    assert meta["format"] == "asr_gan.bundle/1" and meta["command"] == "python -m asr_gan.train --demo"
    assert meta["torch_version"] == torch.__version__ and meta["frame_rate"] == 100.0
    assert meta["decoder_settings"]["tuned"] == []
    state = read_checkpoint(bundle_dir / "generator.pt")
    assert "discriminator" not in state and "optimizers" not in state and state["phones"] == PHONES
    assert (bundle_dir / "generator.pt").stat().st_size < (model["root"] / "checkpoint_best.pt").stat().st_size / 10


def test_bundle_round_trip_from_a_moved_folder_gives_the_same_output(model, tmp_path):
    root = model["root"]
    wave = load_audio(root / "utt2.wav")
    # Before bundling: the pieces as training left them.
    pipeline = FeaturePipeline.load(root / "transform")
    generator = model["generator"].eval()
    segments = torch.from_numpy(pipeline.segments(pipeline.frames(wave)))[None]
    with torch.no_grad():
        logits, _ = generator(segments, torch.zeros(segments.shape[:2], dtype=torch.bool))
    expected = torch.log_softmax(logits[0], dim=-1)
    # After: a bundle written from copies of the sources, moved, and the sources deleted.
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in ("transform", "checkpoint_best.pt", "phones.txt", "lexicon.txt", "word_lm.bin", "phone_lm.bin"):
        (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, sources / name)
    written = write_bundle(sources / "bundle", transform_dir=sources / "transform",
                           checkpoint=sources / "checkpoint_best.pt", phones=sources / "phones.txt",
                           lexicon=sources / "lexicon.txt", word_lm=sources / "word_lm.bin",
                           phone_lm=sources / "phone_lm.bin")
    moved = tmp_path / "elsewhere" / "my_bundle"
    moved.parent.mkdir()
    shutil.move(str(written), str(moved))
    shutil.rmtree(sources)
    bundle = Bundle.load(moved)
    log_probs, timeline = bundle.log_probs(wave)
    torch.testing.assert_close(log_probs, expected, rtol=1e-5, atol=1e-5)
    assert greedy_decode(log_probs, bundle.inventory) == greedy_decode(expected, bundle.inventory)
    assert bundle.lexicon_path.parent == moved and bundle.word_lm_path.parent == moved
    # Each position has a time span inside the recording, in order.
    assert len(timeline.starts) == len(log_probs)
    assert np.all(np.diff(timeline.starts) > 0) and np.all(timeline.ends > timeline.starts)
    assert 0.0 <= timeline.starts[0] and timeline.ends[-1] <= len(wave) / 16000 + 1e-6


def test_bundle_refuses_a_checkpoint_with_other_phones_or_dimensions(model, tmp_path):
    root = model["root"]
    other = tmp_path / "phones.txt"
    PhoneInventory(PHONES[::-1][1:] + ["<SIL>"]).save(other)
    with pytest.raises(BundleError, match="checkpoint_best.pt.*differ"):
        write_bundle(tmp_path / "b", transform_dir=root / "transform", checkpoint=root / "checkpoint_best.pt",
                     phones=other)
    state = read_checkpoint(root / "checkpoint_best.pt")
    state["generator_kwargs"] = {**state["generator_kwargs"], "input_dim": 39}
    save_checkpoint(tmp_path / "wide.pt", {k: v for k, v in state.items() if k != "format"})
    with pytest.raises(BundleError, match="input_dim 39"):
        write_bundle(tmp_path / "b", transform_dir=root / "transform", checkpoint=tmp_path / "wide.pt",
                     phones=root / "phones.txt")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="taken: exists and is not a bundle"):
        write_bundle(tmp_path / "taken", transform_dir=root / "transform", checkpoint=root / "checkpoint_best.pt",
                     phones=root / "phones.txt")


def test_bundle_without_lexicon_decodes_phones_only(model, tmp_path):
    root = model["root"]
    out = write_bundle(tmp_path / "phones_only", transform_dir=root / "transform",
                       checkpoint=root / "checkpoint_best.pt", phones=root / "phones.txt",
                       phone_lm=root / "phone_lm.arpa")
    bundle = Bundle.load(out)
    assert not bundle.can_decode_words and bundle.default_decoder() == "phone_lm"
    assert bundle.phone_lm_path.name == "phone_lm.arpa"
    with pytest.raises(BundleError, match="no lexicon and word LM"):
        Transcriber(bundle, "words")


# -------------------------------------------------------------------------------------------------------- CLI


def test_cli_decodes_every_format_and_names_the_bad_files(model, audio_files):
    good = ["wav22k", "wav8k", "wav44k_stereo", "flac", "sphere"]
    bad = ["corrupt", "empty", "missing", "clicks"]
    order = ["wav22k", "corrupt", "wav8k", "missing", "wav44k_stereo", "clicks", "flac", "empty", "sphere"]
    done = subprocess.run([sys.executable, "-m", "asr_gan.decode", *[str(audio_files[k]) for k in order],
                           "--model", str(model["bundle"])], capture_output=True, text=True, env=ENV)
    assert done.returncode == 1, done.stderr
    for key in bad:
        assert str(audio_files[key]) in done.stderr
    assert "the VAD found no speech" in done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    # Words are decoded by default (the bundle has a lexicon and a word LM): a phones line, then a words line.
    by_file: dict[str, list[str]] = {}
    for path, text in lines:
        by_file.setdefault(path, []).append(text)
    assert sorted(by_file) == sorted(str(audio_files[k]) for k in good)
    assert all(len(texts) == 2 for texts in by_file.values())
    for phones, words in by_file.values():
        assert set(phones.split()) <= set(PHONES) - {"<SIL>"}
        assert set(words.split()) <= set(LEXICON)
    # 16 kHz lossless copies of the same samples decode alike.
    assert by_file[str(audio_files["flac"])] == by_file[str(audio_files["sphere"])]


def test_cli_json_gives_phones_and_words_with_times_inside_the_file(model, audio_files, capsys):
    path = audio_files["wav44k_stereo"]
    for decoder in ("greedy", "phone_lm", "words"):
        assert main([str(path), "--model", str(model["bundle"]), "--decoder", decoder, "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["path"] == str(path) and record["decoder"] == decoder
        assert [item["phone"] for item in record["phone_times"]] == record["phones"].split()
        duration = soundfile.info(str(path)).duration
        times = [(item["start"], item["end"]) for item in record["phone_times"]]
        assert all(0 <= start < end <= duration + 1e-3 for start, end in times)
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(times, times[1:]))
        assert ("words" in record) == (decoder == "words")
        if decoder == "words":
            assert [item["word"] for item in record["word_times"]] == record["words"].split()


def test_cli_decodes_a_manifest_writes_kaldi_style_hypotheses_and_scores_them(model, tmp_path, capsys):
    root = model["root"]
    utts = [Utterance(utt_id=f"utt{i}", audio=str(root / f"utt{i}.wav"), num_samples=1, sample_rate=22050,
                      speaker="spk0") for i in range(len(SENTENCES))]
    utts.insert(1, Utterance(utt_id="broken", audio=str(tmp_path / "gone.wav"), num_samples=1, sample_rate=16000,
                             speaker="spk0"))
    write_manifest(tmp_path / "test.jsonl", utts)
    refs_phn = tmp_path / "test.phn"
    refs_phn.write_text("".join(f"utt{i} <SIL> {' '.join(LEXICON[w] for w in s.split())} <SIL>\n"
                                for i, s in enumerate(SENTENCES)))
    refs_wrd = tmp_path / "test.wrd"
    refs_wrd.write_text("".join(f"utt{i} {s}\n" for i, s in enumerate(SENTENCES)))
    out = tmp_path / "decode"
    code = main(["--manifest", str(tmp_path / "test.jsonl"), "--model", str(model["bundle"]), "--out", str(out),
                 "--ref-phones", str(refs_phn), "--ref-words", str(refs_wrd), "--json"])
    assert code == 1
    captured = capsys.readouterr()
    assert "gone.wav" in captured.err and "PER " in captured.out and "WER " in captured.out
    hyp_phn = [line.split() for line in (out / "hyp.phn").read_text().splitlines()]
    hyp_wrd = [line.split() for line in (out / "hyp.wrd").read_text().splitlines()]
    assert [h[0] for h in hyp_phn] == [h[0] for h in hyp_wrd] == [f"utt{i}" for i in range(len(SENTENCES))]
    assert all("<SIL>" not in h for h in hyp_phn)
    assert (out / "failed.tsv").read_text().startswith("broken\t")
    records = [json.loads(line) for line in (out / "hyp.jsonl").read_text().splitlines()]
    assert [r["utt_id"] for r in records] == [h[0] for h in hyp_phn]
    assert all("start" in item for r in records for item in r["phone_times"] + r["word_times"])
    result = json.loads((out / "result.json").read_text())
    assert result["decoded"] == 4 and result["failed"] == 1
    assert 0.0 <= result["phones"]["error_rate"] and 0.0 <= result["words"]["error_rate"]


def test_features_dir_mode_decodes_stored_segments_like_the_audio(model, tmp_path):
    root = model["root"]
    out_features, out_audio = tmp_path / "from_features", tmp_path / "from_audio"
    assert main(["--features-dir", str(root / "segments"), "--model", str(model["bundle"]), "--out",
                 str(out_features), "--decoder", "greedy"]) == 0
    assert not (out_features / "hyp.wrd").exists()
    assert main(["--manifest", str(root / "train.jsonl"), "--model", str(model["bundle"]), "--out", str(out_audio),
                 "--decoder", "greedy"]) == 0
    assert (out_features / "hyp.phn").read_text() == (out_audio / "hyp.phn").read_text()
    assert len((out_features / "hyp.phn").read_text().splitlines()) == len(FeatureSet(root / "segments"))


def test_cli_refuses_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    assert main([str(tmp_path / "x.wav"), "--model", str(tmp_path)]) == 2
    assert "no bundle.json" in capsys.readouterr().err


def test_transcriber_words_and_greedy_share_the_generator_output(model):
    bundle = Bundle.load(model["bundle"])
    log_probs, _ = bundle.log_probs(load_audio(model["root"] / "utt1.wav"))
    greedy = Transcriber(bundle, "greedy").decode(log_probs)
    words = Transcriber(bundle, "words").decode(log_probs)
    assert greedy.words is None and words.words is not None
    assert symbols(words.phones) == [p for w in symbols(words.words) for p in LEXICON[w].split()]


def test_ssl_bundle_carries_its_checkpoint_and_loads_after_the_original_is_gone(tmp_path):
    transformers = pytest.importorskip("transformers")
    from asr_gan.features.frontends import FrontendConfig
    from asr_gan.features.normalization import Cmvn

    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(config).eval().save_pretrained(tmp_path / "hf")
    pipeline = FeaturePipeline(FrontendConfig(kind="ssl", ssl_checkpoint=str(tmp_path / "hf"), layer=1, device="cpu"),
                               vad=None, cmvn=Cmvn(mode="utterance"))
    pipeline.save(tmp_path / "transform")
    kwargs = {"input_dim": 16, "num_phones": len(PHONES)}
    save_checkpoint(tmp_path / "g.pt", {"generator_kwargs": kwargs, "generator": Generator(**kwargs).state_dict(),
                                        "phones": PHONES, "silence": "<SIL>", "config": {}, "step": 0})
    PhoneInventory(PHONES).save(tmp_path / "phones.txt")
    written = write_bundle(tmp_path / "bundle", transform_dir=tmp_path / "transform", checkpoint=tmp_path / "g.pt",
                           phones=tmp_path / "phones.txt")
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    before = Bundle.load(written).log_probs(wave)[0]
    shutil.move(str(written), str(tmp_path / "moved"))
    shutil.rmtree(tmp_path / "hf")
    bundle = Bundle.load(tmp_path / "moved")
    assert (tmp_path / "moved" / "ssl" / "hf").is_dir()
    log_probs, timeline = bundle.log_probs(wave)
    torch.testing.assert_close(log_probs, before)
    # 10-sample conv stride: 1600 frames per second, one generator position per frame.
    assert timeline.ends[0] == pytest.approx(1 / 1600)


def test_tune_cli_writes_the_chosen_grid_setting_into_the_bundle(model, tmp_path, capsys):
    from asr_gan.decode.tune import main as tune_main

    bundle_dir = tmp_path / "bundle"
    shutil.copytree(model["bundle"], bundle_dir)
    segments = str(model["root"] / "segments")
    assert tune_main(["--model", str(bundle_dir), "--features-dir", segments, "--lm-weights", "0.5,3",
                      "--word-scores=-1,0", "--update-bundle", "--out", str(tmp_path / "tune" / "words.json")]) == 0
    assert tune_main(["--model", str(bundle_dir), "--features-dir", segments, "--decoder", "phone_lm",
                      "--lm-weights", "0,1", "--insertion-bonuses", "0", "--update-bundle"]) == 0
    assert "chosen" in capsys.readouterr().out
    report = json.loads((tmp_path / "tune" / "words.json").read_text())
    assert len(report["points"]) == 4 and (tmp_path / "tune" / "words.md").is_file()
    settings = Bundle.load(bundle_dir).settings
    assert settings.tuned == ["insertion_bonus", "lm_weight", "phone_lm_weight", "silence", "word_score"]
    assert (settings.lm_weight, settings.word_score) in {(0.5, -1.0), (0.5, 0.0), (3.0, -1.0), (3.0, 0.0)}
    assert settings.phone_lm_weight in {0.0, 1.0} and settings.silence in {"score", "skip"}
    assert settings.tuning["words"]["chosen"] == report["best"]["settings"]


# ------------------------------------------------------------------------------------- phones in time (align)


def test_ctc_token_spans_split_repeats_at_blanks_and_fill_gaps_with_silence():
    from asr_gan.decode.align import spans_to_times, token_spans
    from asr_gan.decode.timeline import Timeline

    blank = 9
    assert token_spans([blank, 3, 3, blank, 3, 5, blank], blank) == [(1, 2), (4, 4), (5, 5)]
    assert token_spans([blank, blank], blank) == []
    # Positions of 0.05 s: a one-blank gap (0.05 s) joins the earlier phone, a three-blank gap (0.15 s) is a pause.
    starts = np.arange(12) * 0.05
    timeline = Timeline(starts, starts + 0.05)
    timed = spans_to_times(["K", "AE", "T"], [(1, 2), (4, 4), (8, 9)], timeline, duration=0.65)
    assert timed == [("<SIL>", 0.0, 0.05), ("K", 0.05, 0.2), ("AE", 0.2, 0.25), ("<SIL>", 0.25, 0.4),
                     ("T", 0.4, 0.5), ("<SIL>", 0.5, 0.65)]


def _tiny_ctc_checkpoint(path: Path, input_dim: int) -> None:
    """An untrained CTC model over the bundle's segments, saved as `asr_gan.train.ctc` saves one (upsample 2)."""
    from asr_gan.models.ctc_model import CTCPhoneModel
    from asr_gan.train.ctc import CTCTrainConfig
    from asr_gan.train.ctc import save_checkpoint as save_ctc

    torch.manual_seed(0)
    model = CTCPhoneModel("generator", input_dim, len(PHONES), {"kernel_size": 3})
    save_ctc(path, model, PhoneInventory(PHONES), CTCTrainConfig(upsample=2), epoch=0, valid_per=None)


def test_align_cli_writes_hypothesis_and_forced_reference_ctms_and_skips_a_bad_utterance(model, tmp_path, capsys):
    from asr_gan.ctm import read_ctm
    from asr_gan.decode.align import main as align_main

    root = model["root"]
    utts = [Utterance(utt_id="gone", audio=str(tmp_path / "gone.wav"), num_samples=1, sample_rate=16000, speaker="x")]
    utts += [Utterance(utt_id=f"utt{i}", audio=str(root / f"utt{i}.wav"), num_samples=1, sample_rate=22050,
                       speaker=f"spk{i % 2}") for i in range(len(SENTENCES))]
    write_manifest(tmp_path / "test.jsonl", utts)
    refs = tmp_path / "test.phn"
    refs.write_text("".join(f"utt{i} {' '.join(LEXICON[w] for w in s.split())}\n" for i, s in enumerate(SENTENCES)))
    _tiny_ctc_checkpoint(tmp_path / "ctc.pt", input_dim=12)
    out = tmp_path / "align"
    assert align_main(["--manifest", str(tmp_path / "test.jsonl"), "--model", str(model["bundle"]), "--ctc-checkpoint",
                       str(tmp_path / "ctc.pt"), "--references", str(refs), "--num", "2", "--out", str(out),
                       "--decoder", "greedy"]) == 0
    captured = capsys.readouterr()
    assert "gone.wav" in captured.err and "aligned 2 utterances" in captured.out
    ref, hyp = read_ctm(out / "ref.ctm"), read_ctm(out / "hyp.ctm")
    assert list(ref) == ["utt0", "utt1"] and set(hyp) <= {"utt0", "utt1"}
    for i, utt_id in enumerate(ref):
        duration = soundfile.info(str(root / f"{utt_id}.wav")).duration
        phones = [p for p, _, _ in ref[utt_id] if p != "<SIL>"]
        assert phones == " ".join(LEXICON[w] for w in SENTENCES[i].split()).split()
        # One gapless tier from 0 to the end of the audio.
        assert ref[utt_id][0][1] == 0.0 and ref[utt_id][-1][2] == pytest.approx(duration, abs=2e-3)
        assert all(abs(a[2] - b[1]) < 2e-3 and a[1] < a[2] for a, b in zip(ref[utt_id], ref[utt_id][1:]))
        assert all(0 <= start < end <= duration + 1e-3 for _, start, end in hyp.get(utt_id, []))

    # True times instead of a forced alignment: the given CTM is kept as the reference.
    given = tmp_path / "given.ctm"
    given.write_text("utt3 1 0.00 0.30 sil\nutt3 1 0.30 0.20 AH\n")
    assert align_main(["--manifest", str(tmp_path / "test.jsonl"), "--model", str(model["bundle"]),
                       "--reference-ctm", str(given), "--out", str(tmp_path / "given_out")]) == 0
    assert read_ctm(tmp_path / "given_out" / "ref.ctm") == {"utt3": [("sil", 0.0, 0.3), ("AH", 0.3, 0.5)]}
    # A reference the CTC model cannot hold is named, and no utterance left means a failure.
    refs.write_text("utt0 ZZ\n")
    assert align_main(["--manifest", str(tmp_path / "test.jsonl"), "--model", str(model["bundle"]), "--ctc-checkpoint",
                       str(tmp_path / "ctc.pt"), "--references", str(refs), "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "utt0" in err and "ZZ" in err and "no reference phones for utt1" in err
