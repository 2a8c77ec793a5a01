"""Refining a label-free reading by alternating the decipherment and a CTC student (asr_gan.lab.alternate), and
a GAN generator's reading of every row (asr_gan.lab.row_labels), on the toy task."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asr_gan.features.storage import FeatureSetWriter
from asr_gan.lab import alternate, row_labels
from asr_gan.models.generator import Generator
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.checkpoint import save_checkpoint
from asr_gan.train.ctc_data import read_phone_labels, write_phone_labels
from asr_gan.train.ctc_outputs import per_on_common
from tests.fixtures.toy_phones import make_toy_task


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_task(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def starts(toy, tmp_path_factory):
    """A close reading (three phones read as each other on 80% of their rows) and one at random."""
    out = tmp_path_factory.mktemp("starts")
    truth = read_phone_labels(toy["train_segments"])
    phones = PhoneInventory.load(toy["phones"]).symbols
    rng = np.random.default_rng(0)
    cycle = dict(zip(phones[1:4], phones[2:4] + phones[1:2]))
    close = {u: [cycle.get(p, p) if rng.random() < 0.8 else p for p in row] for u, row in truth.items()}
    random = {u: [str(p) for p in rng.choice(phones, size=len(row))] for u, row in truth.items()}
    write_phone_labels(out / "random.segments", random)
    write_phone_labels(out / "close.segments", close)
    (out / "gan.yaml").write_text("generator:\n  kernel_size: 3\n")
    return out


def config(toy, starts, out, **changes) -> alternate.AlternateConfig:
    settings = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]),
                    gan_config=str(starts / "gan.yaml"),
                    start_labels=[str(starts / "random.segments"), str(starts / "close.segments")], out=str(out),
                    clusters=20, iterations=30, rounds=2, student_epochs=20, labels=str(toy["train_labels"]),
                    progress=False)
    settings.update(changes)
    return alternate.AlternateConfig(**settings)


def test_alternate_keeps_the_most_likely_start_and_round_and_reads_the_toy(toy, starts, tmp_path):
    out = tmp_path / "alt"
    report = alternate.run(config(toy, starts, out))
    likelihoods = [s["log_likelihood"] for s in report["starts"]]
    assert report["selected_start"] == int(np.argmax(likelihoods)) == 1  # the close start, chosen without labels
    assert 1 <= len(report["rounds"]) <= 2
    stages = [("start1", report["starts"][1]["log_likelihood"])]
    stages += [(f"round{s['round']}/decipher", s["log_likelihood"]) for s in report["rounds"]]
    kept = max(stages, key=lambda s: s[1])[0]
    assert report["kept"] == kept
    # The loop stops at the first round that is not more likely than the best before it.
    for earlier, stage in zip(stages, stages[1:-1]):
        assert stage[1] > earlier[1]
    for stage in report["rounds"]:
        assert (out / f"round{stage['round']}" / "rows.segments").is_file()
        assert 0.0 <= stage["student"]["per"] and stage["student"]["aligned"] > 0
    kept_phones = read_phone_labels(out / "train.phn")
    assert kept_phones == read_phone_labels(out / kept / "train.phn")
    assert (out / "train.segments").read_text() == (out / kept / "train.segments").read_text()
    # Learning: the kept labels read the toy far better than the random start's run, and than chance.
    inventory = PhoneInventory.load(toy["phones"])
    per = per_on_common(read_phone_labels(toy["train_labels"]), kept_phones, inventory.silence)[0]
    assert per == pytest.approx(report["per"], abs=1e-4)
    assert per < 0.1 and report["starts"][0]["per"] > 0.3
    markdown = (out / "report.md").read_text()
    assert "start 1 (selected)" in markdown and f"Kept: `{kept}`" in markdown
    assert json.loads((out / "report.json").read_text()) == report

    # A rerun resumes: every finished stage is read back, nothing is trained again.
    checkpoint = out / "round1" / "student" / "checkpoint_best.pt"
    mtime = checkpoint.stat().st_mtime_ns
    assert alternate.run(config(toy, starts, out)) == report
    assert checkpoint.stat().st_mtime_ns == mtime


def test_alternate_reports_and_skips_a_start_that_does_not_fit_the_rows(toy, starts, tmp_path, capsys):
    short = tmp_path / "short.segments"
    write_phone_labels(short, {u: row[:-1] for u, row in read_phone_labels(starts / "close.segments").items()})
    report = alternate.run(config(toy, starts, tmp_path / "alt", rounds=0,
                                  start_labels=[str(short), str(starts / "close.segments")]))
    assert "labels for" in report["starts"][0]["error"] and report["selected_start"] == 1
    assert "start 0 skipped" in capsys.readouterr().err
    assert "skipped" in (tmp_path / "alt" / "report.md").read_text()
    with pytest.raises(ValueError, match="no start labels fit"):
        alternate.run(config(toy, starts, tmp_path / "none", start_labels=[str(short)]))


def test_alternate_cli_names_a_missing_start(toy, starts, tmp_path, capsys):
    code = alternate.main(["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones",
                           str(toy["phones"]), "--gan-config", str(starts / "gan.yaml"), "--start-labels",
                           str(starts / "close.segments"), str(tmp_path / "absent.segments"),
                           "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    assert "absent.segments: start labels not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any stage ran


def write_generator(path, dim: int, stride: int = 1, **extra) -> tuple[Generator, PhoneInventory]:
    torch.manual_seed(0)
    inventory = PhoneInventory(["a", "b", "c", "<SIL>"])
    kwargs = {"input_dim": dim, "num_phones": len(inventory), "kernel_size": 3, "stride": stride, **extra}
    generator = Generator(**kwargs).eval()
    save_checkpoint(path, {"generator_kwargs": kwargs, "generator": generator.state_dict(),
                           "phones": inventory.symbols, "silence": inventory.silence})
    return generator, inventory


def test_row_labels_write_the_generators_argmax_for_every_row(tmp_path, capsys):
    generator, inventory = write_generator(tmp_path / "gan.pt", dim=5)
    rng = np.random.default_rng(0)
    rows = {"u1": rng.normal(size=(7, 5)).astype(np.float32), "u2": rng.normal(size=(3, 5)).astype(np.float32)}
    with FeatureSetWriter(tmp_path / "feats", dim=5) as writer:
        for utt, x in rows.items():
            writer.add(utt, x)
    assert row_labels.main(["--checkpoint", str(tmp_path / "gan.pt"), "--features", str(tmp_path / "feats"),
                            "--out", str(tmp_path / "rows" / "gan.segments"), "--no-progress"]) == 0
    written = read_phone_labels(tmp_path / "rows" / "gan.segments")
    with torch.no_grad():
        for utt, x in rows.items():
            logits, _ = generator(torch.from_numpy(x)[None], torch.zeros(1, len(x), dtype=torch.bool))
            assert written[utt] == inventory.decode(logits[0].argmax(-1).tolist())
    assert "wrote 2 utterances" in capsys.readouterr().out

    # --pairs: the generator reads adjacent pairs of rows pooled (an odd last row alone), both rows take the phone.
    assert row_labels.main(["--checkpoint", str(tmp_path / "gan.pt"), "--features", str(tmp_path / "feats"),
                            "--out", str(tmp_path / "rows" / "pairs.segments"), "--pairs", "--no-progress"]) == 0
    paired = read_phone_labels(tmp_path / "rows" / "pairs.segments")
    with torch.no_grad():
        for utt, x in rows.items():
            pooled = np.stack([x[i:i + 2].mean(0) for i in range(0, len(x), 2)])
            logits, _ = generator(torch.from_numpy(pooled)[None], torch.zeros(1, len(pooled), dtype=torch.bool))
            phones = inventory.decode(logits[0].argmax(-1).tolist())
            assert paired[utt] == [phones[i // 2] for i in range(len(x))]
    assert paired != written  # the pairs are read, not the rows

    write_generator(tmp_path / "strided.pt", dim=5, stride=2)
    with pytest.raises(ValueError, match="one output per row"):
        row_labels.generator_row_labels(tmp_path / "strided.pt", tmp_path / "feats", progress=False)
    write_generator(tmp_path / "wide.pt", dim=6)
    assert row_labels.main(["--checkpoint", str(tmp_path / "wide.pt"), "--features", str(tmp_path / "feats"),
                            "--out", str(tmp_path / "x.segments"), "--no-progress"]) == 1
    assert "5-dim rows" in capsys.readouterr().err


def test_row_labels_of_a_wav2vec_u_padded_generator_drop_its_extra_last_output(tmp_path):
    generator, inventory = write_generator(tmp_path / "gan.pt", dim=5, kernel_size=4, conv_padding="wav2vec_u")
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    with FeatureSetWriter(tmp_path / "feats", dim=5) as writer:
        writer.add("u1", x)
    assert row_labels.main(["--checkpoint", str(tmp_path / "gan.pt"), "--features", str(tmp_path / "feats"),
                            "--out", str(tmp_path / "rows.segments"), "--no-progress"]) == 0
    with torch.no_grad():
        logits, _ = generator(torch.from_numpy(x)[None], torch.zeros(1, len(x), dtype=torch.bool))
    assert logits.shape[1] == 7  # one output more than rows
    assert read_phone_labels(tmp_path / "rows.segments")["u1"] == inventory.decode(logits[0, :6].argmax(-1).tolist())


def test_alternate_with_a_bilstm_student_needs_no_gan_config(toy, starts, tmp_path):
    report = alternate.run(config(toy, starts, tmp_path / "alt", gan_config=None, student_model="bilstm",
                                  student_hidden=64, student_epochs=60, rounds=1,
                                  start_labels=[str(starts / "close.segments")]))
    assert report["student_model"] == "bilstm" and len(report["rounds"]) == 1
    assert report["rounds"][0]["student"]["per"] < 0.5  # it learnt the decipherment's reading of the toy
    with pytest.raises(ValueError, match="needs --gan-config"):
        alternate.run(config(toy, starts, tmp_path / "gen", gan_config=None))


def test_alternate_deciphers_with_the_text_trigram_when_asked(toy, starts, tmp_path, capsys):
    out = tmp_path / "alt"
    report = alternate.run(config(toy, starts, out, context="none", order=3, rounds=0, iterations=15,
                                  start_labels=[str(starts / "close.segments")]))
    assert report["order"] == 3
    assert json.loads((out / "start0" / "report.json").read_text())["order"] == 3
    assert report["per"] < 0.1  # the close start is read back as the toy's phones
    with pytest.raises(ValueError, match="order 3 with context next"):
        alternate.run(config(toy, starts, tmp_path / "next", order=3))
    code = alternate.main(["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones",
                           str(toy["phones"]), "--start-labels", str(starts / "close.segments"), "--rounds", "0",
                           "--order", "3", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert code == 1 and "expected order 2, or 3 with --context none" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()  # refused before any stage ran
