"""The label-free chain: the encoder's frame posteriors on the target phones, words through the lexicon and word LM,
then a round of the encoder fine-tuned on those words; on real espeak-ng speech with real KenLM models."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch

from asr_gan.decode.cross_lingual import CrossLingualTranscriber
from asr_gan.decode.refine import Chain, RefineConfig, main
from asr_gan.features.encoder.checkpoint import load_encoder
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.ipa_arpabet import arpabet_weights
from asr_gan.text.lm import build_lm, find_kenlm_binary
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_outputs import phone_error_rate
from asr_gan.train.encoder_student import EncoderStudent, EncoderStudentConfig, finetune

torch.set_num_threads(1)
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH "
           "<SIL>").split()
LEXICON = {"a": "AH", "big": "B IH G", "blue": "B L UW", "cat": "K AE T", "seven": "S EH V AH N",
           "oranges": "AO R AH N JH AH Z", "the": "DH AH", "sun": "S AH N", "is": "IH Z", "hot": "HH AA T",
           "green": "G R IY N", "trees": "T R IY Z", "grow": "G R OW", "we": "W IY", "sing": "S IH NG",
           "songs": "S AO NG Z"}
SPLITS = {"train": ["a big blue cat", "seven oranges", "the sun is hot", "green trees grow", "we sing songs",
                    "the blue cat is hot", "we grow green oranges"],
          "dev": ["the big cat", "seven blue trees"],
          "test": ["we sing", "the sun is green"]}
VOICES = {"train": "en-us", "dev": "en-gb", "test": "en-us+f3"}


def test_weights_give_each_encoder_phone_to_its_arpabet_readings():
    phones = ["a", "ts", "ʔ", "ɪ"]
    w = arpabet_weights(phones, ARPABET, "<SIL>")
    col = {p: i for i, p in enumerate(ARPABET)}
    assert w.shape == (5, len(ARPABET)) and w[0, col["<SIL>"]] == 1 and w[0].sum() == 1  # the blank
    assert w[1, col["AA"]] == 1 and w[1, col["AY"]] == 0.5 and w[1, col["AW"]] == 0.5  # a: AA, or a diphthong's start
    assert w[2, col["T"]] == 1 and w[2, col["S"]] == 0.5  # ts: T S
    assert w[3, col["<SIL>"]] == 1 and w[3].sum() == 1  # the glottal stop carries no English phone
    assert w[4, col["IH"]] == 1 and w[4, col["AY"]] == 0.5  # ɪ ends AY and EY
    assert (arpabet_weights(load_encoder().phones, ARPABET, "<SIL>").sum(axis=1) > 0).all()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    try:
        find_kenlm_binary("lmplz")
    except Exception as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("refine")
    data, text = root / "data", root / "text"
    data.mkdir()
    text.mkdir()
    for split, sentences in SPLITS.items():
        utts = []
        for i, sentence in enumerate(sentences):
            path = root / f"{split}{i}.wav"
            subprocess.run(["espeak-ng", "-v", VOICES[split], "-w", str(path), sentence], check=True)
            info = soundfile.info(str(path))
            utts.append(Utterance(f"{split}{i}", str(path), info.frames, info.samplerate, speaker=VOICES[split]))
        write_manifest(data / f"{split}.jsonl", utts)
        (text / f"{split}.wrd").write_text("".join(f"{split}{i} {s}\n" for i, s in enumerate(sentences)))
        (text / f"{split}.phn").write_text("".join(
            f"{split}{i} " + " ".join(LEXICON[w] for w in s.split()) + "\n" for i, s in enumerate(sentences)))
    (text / "phones.txt").write_text("\n".join(ARPABET) + "\n")
    (text / "lexicon.txt").write_text("".join(f"{w}\t{p}\n" for w, p in LEXICON.items()))
    lines = [s for sentences in SPLITS.values() for s in sentences]
    (text / "lm.txt").write_text("\n".join(lines) + "\n")
    (text / "lm.phn").write_text("".join("<SIL> " + " ".join(LEXICON[w] for w in s.split()) + " <SIL>\n"
                                         for s in lines))
    build_lm(text / "lm.txt", text / "word_lm.arpa", order=2, bin_path=text / "word_lm.bin")
    build_lm(text / "lm.phn", text / "phone_lm.arpa", order=3, bin_path=text / "phone_lm.bin")
    return root


def test_fine_tuning_the_encoder_on_target_phones_fits_them(experiment):
    inventory = PhoneInventory(ARPABET)
    transcriber = CrossLingualTranscriber(ARPABET)
    student = EncoderStudent.from_encoder(transcriber.loaded, inventory)
    pairs = []
    for i, sentence in enumerate(SPLITS["train"]):
        wave = soundfile.read(str(experiment / f"train{i}.wav"), dtype="float32")[0]
        pairs.append((transcriber.standardised_mel(np.asarray(wave)), " ".join(LEXICON[w] for w in sentence.split())
                      .split()))
    lp = student.log_probs(pairs[0][0])
    assert lp.shape[1] == len(ARPABET) and torch.allclose(lp.exp().sum(-1), torch.ones(len(lp)), atol=1e-4)
    config = EncoderStudentConfig(epochs=6, lr=1e-3, augment=False)
    history = finetune(student, pairs, pairs, config, log=lambda m: None)
    assert history[-1]["best_valid_per"] < history[0]["valid_per"] - 0.1, history
    hyps = [student.greedy(mel) for mel, _ in pairs]
    assert phone_error_rate([p for _, p in pairs], hyps, ()) == pytest.approx(history[-1]["best_valid_per"], abs=1e-5)


def test_chain_decodes_words_without_labels_and_resumes(experiment, capsys):
    text, data = experiment / "text", experiment / "data"
    corrupt = experiment / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not a wave")
    manifest = (data / "train.jsonl").read_text()
    (data / "train.jsonl").write_text(manifest + json.dumps(
        {"utt_id": "broken", "audio": str(corrupt), "num_samples": 16000, "sample_rate": 16000, "speaker": "x"}) + "\n")
    out = experiment / "refine"
    args = ["--data", str(data), "--segments", str(experiment / "none"), "--text", str(text), "--gan-config",
            str(experiment / "none.yaml"), "--references", str(text), "--rounds", "1", "--epochs", "2",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    first = report["rounds"][0]
    assert first["source"] == "phone encoder" and first["scores"]["test"]["wer"] < 0.75, first
    assert first["scores"]["dev"]["per"] < 0.5, first  # unheard voices, words the lexicon and LM allow
    assert len(report["rounds"]) == 2 and report["final_round"] in (0, 1)
    assert "broken" in (out / "round0" / "skipped.txt").read_text()
    assert (out / "final" / "test" / "hyp.wrd").read_text().startswith("test0 ")
    assert "| round |" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(args) == 0  # a finished round is read back, not run again
    printed = capsys.readouterr().out
    assert "round 0: already done" in printed and "round 1: already done" in printed
    # a round killed after its student was trained decodes with that student; round 0's decoder settings kept
    (out / "round1" / "round.json").unlink()
    assert main(args + ["--anchor", "0.5", "--decoder-settings", "round0"]) == 0
    assert "r1 student: already trained" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["rounds"][1]["decoder"] == first["decoder"] and report["config"]["anchor"] == 0.5
    assert json.loads((out / "round1" / "tune.json").read_text())["reused"] == "round 0's settings"
    with pytest.raises(ValueError, match="student"):
        Chain(RefineConfig(student="hmm"), data, out, text, out, out)
    with pytest.raises(ValueError, match="decoder-settings"):
        Chain(RefineConfig(decoder_settings="best"), data, out, text, out, out)


def test_fine_tuning_the_top_block_leaves_the_lower_ones_as_shipped(experiment):
    inventory = PhoneInventory(ARPABET)
    transcriber = CrossLingualTranscriber(ARPABET)
    student = EncoderStudent.from_encoder(transcriber.loaded, inventory)
    before = {name: p.detach().clone() for name, p in student.named_parameters()}
    wave = soundfile.read(str(experiment / "train0.wav"), dtype="float32")[0]
    pairs = [(transcriber.standardised_mel(np.asarray(wave)), " ".join(LEXICON[w] for w in SPLITS["train"][0].split())
              .split())]
    finetune(student, pairs, pairs, EncoderStudentConfig(epochs=2, lr=1e-3, augment=False, train_layers=1),
             log=lambda m: None)
    top = f"encoder.blocks.{len(student.encoder.blocks) - 1}."
    changed = {name for name, p in student.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith((top, "head.", "encoder.final_norm.")) for name in changed), changed
    assert any(name.startswith("head.") for name in changed)
    with pytest.raises(ValueError, match="train_layers"):
        finetune(student, pairs, pairs, EncoderStudentConfig(epochs=1, train_layers=-1), log=lambda m: None)
