import json

from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.__main__ import main
from asr_gan.text.lexicon import Lexicon
from asr_gan.text.lm import NgramLM
from asr_gan.text.phones import SILENCE, PhoneInventory


def _corpus(tmp_path):
    corpus = tmp_path / "text_corpus.txt"
    corpus.write_bytes(
        b"In the beginning God created the heaven and the earth.\n"
        b"And the earth was without form, and void.\n"
        b"Caf\xe9 is latin-1 here\n"
        b"And Hiddekel went toward the east of Assyria.\n"
        b"And God saw the light, that it was good.\n"
    )
    dev = tmp_path / "dev.jsonl"
    write_manifest(dev, [
        Utterance("spk1-001", "/a.wav", 16000, 16000, "spk1", words="Let there be LIGHT"),
        Utterance("spk1-002", "/b.wav", 16000, 16000, "spk1", words="the river", phones="DH AH R IH V ER"),
        Utterance("spk1-003", "/c.wav", 16000, 16000, "spk1"),
    ])
    return corpus, dev


def test_text_prepare_cli_writes_design_outputs_end_to_end(tmp_path, capsys):
    corpus, dev = _corpus(tmp_path)
    out = tmp_path / "text"
    argv = ["--corpus-text", str(corpus), "--manifests", str(dev), "--out", str(out), "--sil-prob", "0.5",
            "--phone-lm-order", "3", "--word-lm-order", "2"]
    assert main(argv) == 0
    for name in ("lexicon.txt", "phones.txt", "train_text.phn", "phone_lm.arpa", "phone_lm.bin",
                 "word_lm.arpa", "word_lm.bin", "dev.wrd", "dev.phn"):
        assert (out / name).stat().st_size > 0, name

    inventory = PhoneInventory.load(out / "phones.txt")
    assert inventory.symbols[-1] == SILENCE and "HH" in inventory and len(inventory) < 41
    lines = (out / "train_text.phn").read_text().splitlines()
    assert len(lines) == 4  # the latin-1 line is skipped, reported
    assert all(l.split()[0] == SILENCE and l.split()[-1] == SILENCE for l in lines)
    assert all(p in inventory for l in lines for p in l.split())
    lexicon = Lexicon.load(out / "lexicon.txt")
    assert lexicon["hiddekel"] == ["HH", "IH", "D", "EH", "K", "AH", "L"]  # G2P
    assert lexicon["earth"] == ["ER", "TH"]  # CMUdict
    assert (out / "dev.wrd").read_text() == "spk1-001 let there be light\nspk1-002 the river\n"
    assert (out / "dev.phn").read_text() == "spk1-001 L EH T DH EH R B IY L AY T\nspk1-002 DH AH R IH V ER\n"
    report = json.loads((out / "prep_report.json").read_text())
    assert report["lines_not_utf8"] == 1 and report["references_skipped"] == {"dev": 1}
    assert NgramLM(out / "phone_lm.bin").order == 3 and NgramLM(out / "word_lm.bin").order == 2
    assert (NgramLM(out / "word_lm.bin").score("and god saw".split())
            > NgramLM(out / "word_lm.bin").score("saw god and".split()))

    # A rerun skips everything; --force rebuilds.
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("up to date, skipped") == 5
    assert main(argv + ["--force"]) == 0
    assert "up to date" not in capsys.readouterr().out


def test_text_prepare_skips_sentences_with_unpronounceable_words_only(tmp_path):
    corpus, dev = _corpus(tmp_path)
    out = tmp_path / "text"
    assert main(["--corpus-text", str(corpus), "--out", str(out), "--no-g2p"]) == 0
    missing = (out / "no_pronunciation.txt").read_text().splitlines()
    assert missing == [f"{corpus}:4\thiddekel"]  # source line 4 of the file
    assert len((out / "train_text.phn").read_text().splitlines()) == 3
    assert "hiddekel" not in Lexicon.load(out / "lexicon.txt")


def test_phone_text_mode_builds_inventory_and_phone_lm_without_lexicon(tmp_path):
    phone_text = tmp_path / "train_text.phn"
    phone_text.write_text("sil dh ah sil\nsil k ae t sil\nsil dh ah k ae t sil\nsil zh sil\n")
    train = tmp_path / "train.jsonl"
    write_manifest(train, [Utterance("fadg0-sa1", "/a.wav", 16000, 16000, "fadg0", words="the cat",
                                     phones="sil dh ah k ae t sil")])
    out = tmp_path / "text"
    assert main(["--phone-text", str(phone_text), "--manifests", str(train), "--out", str(out),
                 "--min-phone-count", "2"]) == 0
    inventory = PhoneInventory.load(out / "phones.txt")
    assert inventory.symbols == ["ae", "ah", "dh", "k", "t", "sil"] and inventory.silence == "sil"
    assert (out / "train_text.phn").read_text().splitlines()[-1] == "sil dh ah k ae t sil"
    assert len((out / "train_text.phn").read_text().splitlines()) == 3
    assert (out / "train.phn").read_text() == "fadg0-sa1 sil dh ah k ae t sil\n"
    assert not (out / "lexicon.txt").exists() and not (out / "word_lm.arpa").exists()
    assert NgramLM(out / "phone_lm.bin").order == 4


def test_silence_stats_set_the_text_silences_and_rerun_the_phonemiser(tmp_path, capsys):
    corpus, _ = _corpus(tmp_path)
    stats = tmp_path / "audio_silences.json"
    # No leading silence, always a trailing one, 0.5 pauses per utterance (sentences here have 6-9 words).
    stats.write_text(json.dumps({"leading": 0.0, "trailing": 1.0, "inner_per_utterance": 0.5}))
    out = tmp_path / "text"
    argv = ["--corpus-text", str(corpus), "--out", str(out), "--silence-stats", str(stats)]
    assert main(argv) == 0
    lines = [line.split() for line in (out / "train_text.phn").read_text().splitlines()]
    assert all(line[0] != SILENCE and line[-1] == SILENCE for line in lines)
    report = json.loads((out / "prep_report.json").read_text())["silence"]
    words = [len(line.split()) for line in (out / "train_text.wrd").read_text().splitlines()]
    gaps = sum(n - 1 for n in words) / len(words)
    assert report["start"] == 0.0 and report["end"] == 1.0 and report["source"] == str(stats)
    assert abs(report["between_words"] - 0.5 / gaps) < 1e-3

    # New statistics redo the phonemised text (not the word normalisation).
    stats.write_text(json.dumps({"leading": 1.0, "trailing": 1.0, "inner_per_utterance": 0.0}))
    capsys.readouterr()
    assert main(argv) == 0
    assert "phonemise: building" in capsys.readouterr().out
    lines = [line.split() for line in (out / "train_text.phn").read_text().splitlines()]
    assert all(line[0] == SILENCE and line[-1] == SILENCE and line.count(SILENCE) == 2 for line in lines)


def test_bad_silence_stats_name_the_file(tmp_path, capsys):
    corpus, _ = _corpus(tmp_path)
    missing = tmp_path / "nope.json"
    assert main(["--corpus-text", str(corpus), "--out", str(tmp_path / "a"), "--silence-stats", str(missing)]) == 1
    assert "nope.json: silence statistics not found" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"leading": 0.5}')
    assert main(["--corpus-text", str(corpus), "--out", str(tmp_path / "b"), "--silence-stats", str(broken)]) == 1
    assert "broken.json: not a silence_stats report" in capsys.readouterr().err
    phone_text = tmp_path / "train_text.phn"
    phone_text.write_text("sil dh ah sil\n")
    assert main(["--phone-text", str(phone_text), "--out", str(tmp_path / "c"), "--silence-stats", str(broken)]) == 1
    assert "--silence-stats is for word mode" in capsys.readouterr().err
