"""`python -m asr_gan.train.evaluate`: a GAN checkpoint's greedy PER on any labelled segment set."""

from __future__ import annotations

import json

import numpy as np
import torch

from asr_gan.features.storage import FeatureSetWriter
from asr_gan.models.generator import Generator
from asr_gan.train.checkpoint import save_checkpoint
from asr_gan.train.evaluate import main

PHONES = ["AA", "B", "D", "IY", "<SIL>"]


def _reading_generator(path):
    """A generator that reads its one-hot input: phone k in, phone k out (kernel 1, identity weights)."""
    kwargs = {"input_dim": len(PHONES), "num_phones": len(PHONES), "kernel_size": 1, "input_dropout": 0.0}
    generator = Generator(**kwargs)
    with torch.no_grad():
        generator.output.weight.copy_(10 * torch.eye(len(PHONES)).unsqueeze(-1))
    save_checkpoint(path, {"generator_kwargs": kwargs, "generator": generator.state_dict(), "phones": PHONES,
                           "silence": "<SIL>"})


def test_evaluate_scores_merged_greedy_output_against_references(tmp_path, capsys):
    utterances = {"u1": ["<SIL>", "B", "B", "AA", "D", "D", "<SIL>"], "u2": ["IY", "B", "IY", "IY"]}
    with FeatureSetWriter(tmp_path / "segments", dim=len(PHONES)) as writer:
        for utt, phones in utterances.items():
            writer.add(utt, np.eye(len(PHONES), dtype=np.float32)[[PHONES.index(p) for p in phones]])
    _reading_generator(tmp_path / "gan.pt")
    # u1 read right (runs merged, silence ignored); u2's reference has one phone more than the output.
    (tmp_path / "refs.phn").write_text("u1 B AA D\nu2 IY B IY AA\n")
    hyp = tmp_path / "hyp.phn"
    args = ["--checkpoint", str(tmp_path / "gan.pt"), "--features", str(tmp_path / "segments"),
            "--labels", str(tmp_path / "refs.phn")]
    assert main([*args, "--hyp", str(hyp)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["per"] == round(1 / 7, 5) and result["utterances"] == 2
    assert result["hyp_phones_per_utt"] == 3.0 and result["ref_phones_per_utt"] == 3.5
    assert hyp.read_text() == "u1 B AA D\nu2 IY B IY\n"


def test_evaluate_names_features_of_the_wrong_width(tmp_path, capsys):
    with FeatureSetWriter(tmp_path / "segments", dim=3) as writer:
        writer.add("u1", np.zeros((4, 3), dtype=np.float32))
    _reading_generator(tmp_path / "gan.pt")
    (tmp_path / "refs.phn").write_text("u1 B\n")
    assert main(["--checkpoint", str(tmp_path / "gan.pt"), "--features", str(tmp_path / "segments"),
                 "--labels", str(tmp_path / "refs.phn")]) == 1
    assert "3-dim rows" in capsys.readouterr().err
